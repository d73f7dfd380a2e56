"""The monitor ends a session on the store thread while its event loop goes on: the store must
read the session as it was when asked, not the live object the loop still changes."""

from __future__ import annotations

import threading

from dorsimeter.detect.reps import RepRecord
from dorsimeter.session.results import SessionResults
from dorsimeter.tui.services import StoreClient


def _rep(index: int, t0: float, angle: float) -> RepRecord:
    return RepRecord(index, "left", t0, t_end_s=t0 + 4.0, peak_deg=angle + 1.0,
                     end_range_deg=angle, hold_s=1.5, hold_reached_s=t0 + 2.0)


def test_finish_recording_stores_the_session_as_it_was_when_asked(tmp_path):
    client = StoreClient(tmp_path / "home")
    try:
        sid = client.start_recording("monitor", None, "sim").result(timeout=30)
        assert sid is not None, client.error
        results = SessionResults(rate_hz=100.0)
        first = results.add_counted("left", 1, _rep(0, 10.0, 34.0))
        gate = threading.Event()
        client.run(lambda _s: gate.wait(30))  # the store thread busy (a slow disk)
        done = client.finish_recording(results)
        # the event loop goes on with the same results: another rep counted, an angle changed
        results.add_counted("left", 1, _rep(1, 20.0, 29.0))
        first.end_range_deg = 20.0
        gate.set()
        assert done.result(timeout=30) == sid
        trials = client.run(lambda s: s.trials(sid)).result(timeout=30)
    finally:
        client.close()
    assert [(t.rep, t.angle_deg) for t in trials] == [(1, 34.0)]
