"""The history screen's export runs on the store's thread and shows its progress: a bar and a
line of samples written / total, then the files written; a failure is one line. A real SQLite
store holding a long session (more samples than one read chunk), the real CSV export."""

from __future__ import annotations

import csv

import numpy as np

from dorsimeter.pipeline import Pipeline
from dorsimeter.store import Store
from dorsimeter.tui.app import MonitorApp
from dorsimeter.tui.screens import ExportScreen
from dorsimeter.tui.services import StoreClient
from dorsimeter.types import Readings
from tests.tui.rig import ScriptedSource, frozen_clock, sim_batches, wait_for

N_SAMPLES = 45_000  # 7.5 min at 100 Hz: three 20 000-sample chunks (store.iter_samples)


def _long_session(home) -> int:
    t_s = np.arange(N_SAMPLES) / 100.0
    angle_deg = 20.0 + 15.0 * np.sin(2 * np.pi * t_s / 8.0)
    with Store.open(home) as db:
        sid = db.start_session("monitor", None, "simulated rig")
        for i in range(0, N_SAMPLES, 5_000):
            sl = slice(i, i + 5_000)
            db.add_samples(sid, Readings(t_s[sl], angle_deg[sl], np.zeros(len(t_s[sl])),
                                         np.full(len(t_s[sl]), "left", dtype=object)))
        for rep in range(1, 6):
            db.add_trial(sid, "left", 30.0 + rep, True, "shank_imu", rep * 8.0, rep * 8.0 + 4,
                         rep=rep)
        db.end_session(sid)
    return sid


def status(screen) -> str:
    return str(screen.query_one("#exp-status").render())


async def test_export_shows_progress_then_the_files_and_errors_in_one_line(tmp_path):
    home = tmp_path / "home"
    sid = _long_session(home)
    store = StoreClient(home)
    app = MonitorApp(ScriptedSource(sim_batches(1)[0]), Pipeline(100.0), store=store,
                     record_session=False, clock=frozen_clock)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = ExportScreen(sid)
            await app.push_screen(screen)
            bar = screen.query_one("#exp-bar")
            assert not bar.display  # nothing running yet
            out = tmp_path / "out"
            screen.query_one("#exp-out").value = str(out)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.written)
            # every chunk the store thread wrote was shown, in order, up to the total
            assert screen.shown == [(0, N_SAMPLES), (20_000, N_SAMPLES), (40_000, N_SAMPLES),
                                    (N_SAMPLES, N_SAMPLES)]
            assert bar.display and (bar.progress, bar.total) == (N_SAMPLES, N_SAMPLES)
            samples_csv, trials_csv = screen.written
            text = status(screen)
            assert text.startswith("written (45,000 samples, 5 trials):")
            assert str(samples_csv) in text and str(trials_csv) in text
            with open(samples_csv, encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
            assert len(rows) == N_SAMPLES
            assert float(rows[-1]["t_s"]) == (N_SAMPLES - 1) / 100.0
            with open(trials_csv, encoding="utf-8-sig") as f:
                trials = list(csv.DictReader(f))
            assert [float(r["angle_deg"]) for r in trials] == [31.0, 32.0, 33.0, 34.0, 35.0]
            # the report reads the same samples, with the same progress
            await pilot.press("f2")
            screen.written = []
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.written)
            assert screen.shown[-1] == (N_SAMPLES, N_SAMPLES) and len(screen.shown) == 4
            assert screen.written[0].suffix == ".html" and screen.written[0].stat().st_size
            assert "HTML report" in status(screen)
            # a folder that cannot be made (a file is in the way): one line, the screen stays
            await pilot.press("f2")
            blocker = tmp_path / "blocker"
            blocker.write_text("not a folder")
            screen.written = []
            screen.query_one("#exp-out").value = str(blocker / "out")
            await pilot.press("enter")
            await wait_for(pilot, lambda: "export failed" in status(screen))
            assert status(screen) in (  # names the file in the way, or the folder asked for
                f"export failed: {blocker}: File exists",
                f"export failed: {blocker / 'out'}: File exists",
                f"export failed: {blocker / 'out'}: Not a directory",
                f"export failed: {blocker / 'out'}: {blocker} is a file, not a directory "
                "(move it, or choose another)")
            assert "\n" not in status(screen) and not bar.display
            assert app.screen is screen and not screen.exporting
            # a session that is not stored: the store's own one-line message
            screen.session_ref = 999
            screen.query_one("#exp-out").value = str(out)
            await pilot.press("enter")
            await wait_for(pilot, lambda: "export failed" in status(screen)
                           and "999" in status(screen))
            assert "\n" not in status(screen)
    finally:
        store.close()
