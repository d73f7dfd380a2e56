"""Rates, clock jumps and the commands: the rate comes from the stream, unsupported rates and
irregular clocks are one line (exit 2), and a time jump is a gap, never an allocation or a wait.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import RawCsvWriter
from dorsimeter.sim import ShankSim
from dorsimeter.store import Store
from dorsimeter.types import ImuBatch


def write_sim_raw(path: Path, rate_hz: float, seconds: float, seed: int = 1,
                  jump_at_s: float | None = None, jump_s: float = 0.0,
                  jitter: float = 0.0) -> ImuBatch:
    """A simulated wall test as a raw CSV at ``rate_hz`` (optionally with a clock jump of
    ``jump_s`` from ``jump_at_s`` on, or a jittered clock: ± ``jitter`` intervals)."""
    b = ShankSim(rate_hz=rate_hz, seed=seed).generate(int(round(seconds * rate_hz)))
    if jump_at_s is not None:
        b.t_s = b.t_s + np.where(b.t_s >= jump_at_s, jump_s, 0.0)
    if jitter:
        rng = np.random.default_rng(seed)
        b.t_s = b.t_s + rng.uniform(-jitter, jitter, len(b)) / rate_hz
    with RawCsvWriter(path) as w:
        for i in range(0, len(b), 50):
            w.write(b.slice(i, i + 50), "left")
    return b


def _one_line_error(capsys, words: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and words in err, err


@pytest.mark.parametrize("rate_hz", [200.0, 25.0])
def test_record_stores_the_holds_at_the_streams_rate(tmp_path, capsys, rate_hz):
    """A 200 Hz session's 2.2 s holds were stored as 4.4 s (results assumed 100 Hz)."""
    src = tmp_path / "src.csv"
    write_sim_raw(src, rate_hz, 40.0)
    assert main(["record", "--sensor", f"replay:{src}", "--speed", "0", "--duration", "40",
                 "--out", str(tmp_path / "out.csv"), "--home", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert "attempts 4 (4 scored, 0 heel lift)" in out, out
    with Store.open(tmp_path / "h") as store:
        holds = [t.hold_s for t in store.trials(store.session("latest").id)]
    assert len(holds) == 4 and all(1.9 < h < 2.5 for h in holds), holds


@pytest.mark.parametrize("rate_hz, words", [
    (2000.0, "sample rate 2000 Hz is outside the supported 10–1000 Hz"),
    (8.0, "sample rate 8 Hz is outside the supported 10–1000 Hz"),
])
def test_unsupported_rates_are_refused_with_one_line(tmp_path, capsys, rate_hz, words):
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, rate_hz, 12.0)
    for cmd in (["analyze", str(raw)], ["calibrate", str(raw), "--out", str(tmp_path / "c")],
                ["record", "--sensor", f"replay:{raw}", "--speed", "0", "--duration", "5",
                 "--out", str(tmp_path / "o.csv")]):
        assert main(cmd) == 2
        _one_line_error(capsys, words)


def test_an_irregular_clock_is_refused_with_one_line(tmp_path, capsys):
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 12.0, jitter=0.4)  # host timestamps, not a device clock
    assert main(["analyze", str(raw)]) == 2
    _one_line_error(capsys, "column 't_s': irregular clock")


def test_lost_samples_and_link_gaps_are_not_an_irregular_clock(tmp_path, capsys):
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 40.0, jump_at_s=25.0, jump_s=3.0)
    assert main(["analyze", str(raw)]) == 0
    assert "attempts" in capsys.readouterr().out


def _limited(mb: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
    return limit


@pytest.mark.parametrize("jump_s", [1e6, 1e9])
def test_a_clock_jump_is_a_gap_not_an_allocation(tmp_path, jump_s):
    """1e6 s used to allocate 6.4 GB in ``analyze --offline`` (MemoryError traceback)."""
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 40.0, jump_at_s=25.0, jump_s=jump_s)
    for extra in (["--offline"], []):
        p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "analyze", str(raw), *extra],
                           capture_output=True, text=True, timeout=300,
                           preexec_fn=_limited(2500), env={**os.environ, "PYTHONWARNINGS":
                                                          "error::RuntimeWarning"})
        assert p.returncode == 0, p.stderr
        assert "left: max tibia angle" in p.stdout and "nan" not in p.stdout


def test_a_day_long_jump_in_the_stance_does_not_hang_calibrate(tmp_path):
    """It used to loop over 8.6 million bridged samples (over 5 minutes on a 450 kB file)."""
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 40.0, jump_at_s=0.8, jump_s=86400.0)
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "calibrate", str(raw), "--out",
                        str(tmp_path / "c.json")], capture_output=True, text=True, timeout=120,
                       preexec_fn=_limited(2500))
    assert p.returncode in (0, 2) and "Traceback" not in p.stderr, p.stderr


def test_a_replay_plays_a_clock_jump_at_once(tmp_path, capsys):
    """A replay at real-time speed used to sleep through the jump (here a day): the whole file
    plays (``--duration`` is device time, so it spans the day) well within the timeout."""
    raw = tmp_path / "r.csv"
    write_sim_raw(raw, 100.0, 14.0, jump_at_s=12.0, jump_s=86400.0)
    p = subprocess.run([sys.executable, "-m", "dorsimeter.cli", "record", "--sensor",
                        f"replay:{raw}", "--speed", "20", "--duration", "90000", "--out",
                        str(tmp_path / "o.csv"), "--home", str(tmp_path / "h")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "wrote 1400 samples" in p.stdout


def test_streaming_analyze_writes_the_whole_file_readings_bit_for_bit(tmp_path, capsys,
                                                                      monkeypatch):
    """``analyze`` reads and writes chunk by chunk (bounded memory); chunks of 700 rows, with
    a side change and a restart inside them, give the same bytes as the whole file at once."""
    from dorsimeter.io import rawcsv
    from dorsimeter.io.readings import ReadingsCsvWriter
    from dorsimeter.pipeline import analyze, calibrate_recording

    sim = ShankSim(seed=2)
    raw = tmp_path / "r.csv"
    with RawCsvWriter(raw) as w:
        for i in range(0, 6000, 50):
            if i == 3000:
                sim.set_side("right")
            b = sim.generate(50)
            b.restart = i == 4500
            w.write(b, b.side)
    rec = rawcsv.read_raw_csv(raw)
    cals = calibrate_recording(rec.batches(), rec.rate_hz)
    with ReadingsCsvWriter(tmp_path / "whole.csv") as w:
        w.write(analyze(rec, cals))
    monkeypatch.setattr(rawcsv, "CHUNK_ROWS", 700)
    assert main(["analyze", str(raw), "--out", str(tmp_path / "streamed.csv")]) == 0
    out = capsys.readouterr().out
    assert "wrote 6000 readings" in out and "right: max tibia angle" in out
    whole = (tmp_path / "whole.csv").read_bytes()
    streamed = (tmp_path / "streamed.csv").read_bytes()
    assert whole.count(b"\n") == 6001 and streamed == whole


def test_recover_scores_an_interrupted_session_at_its_own_rate(tmp_path, capsys):
    """``recover`` scored stored samples as if they were 100 Hz (a 200 Hz hold counted double)."""
    from dorsimeter.pipeline import Pipeline

    sim = ShankSim(rate_hz=200.0, seed=1)
    with Store.open(tmp_path / "h") as store:
        sid = store.start_session("record", sensor="sim")
        pipe = Pipeline(200.0)
        for _ in range(0, 8000, 10):  # 40 s; killed before its trials were stored
            store.add_samples(sid, pipe.push(sim.generate(10))[0])
    assert main(["recover", "--home", str(tmp_path / "h")]) == 0
    assert "scored/trials left 4/4" in capsys.readouterr().out  # as `history` counts them
    with Store.open(tmp_path / "h") as store:
        holds = [t.hold_s for t in store.trials(sid) if t.scored]
    assert len(holds) == 4 and all(1.9 < h < 2.5 for h in holds), holds
