"""Recovering an interrupted session (``store.locks`` tells which are): keep everything it
stored (its samples were committed batch by batch; the raw CSV was flushed batch by batch and its
cut-off last line is dropped on reading), re-analyse its raw CSVs when no readings reached the
store, score its trials from the stored samples if none were stored, and mark it ended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dorsimeter.errors import DorsimeterError, InputError
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.pipeline import analyze, calibrate_recording
from dorsimeter.rate import stream_rate_hz
from dorsimeter.session.results import SessionResults
from dorsimeter.store.locks import is_running
from dorsimeter.store.recorder import trials_from_results
from dorsimeter.types import Readings

RECOVERED_NOTE = "recovered after an interruption"


# ------------------------------------------------------------------ recovering
@dataclass
class Recovered:
    session_id: int
    samples: int
    trials_added: int
    raw_path: str | None
    raw_rows: int | None  # rows readable in the raw CSV (None: no raw file)
    raw_problem: str | None = None
    reanalysed: int = 0  # readings re-analysed from the raw CSV (none had reached the store)
    reanalysis_problem: str | None = None  # why the raw CSV could not be re-analysed


def reanalyse_raw(store, session_id: int, raw_paths: list[str]) -> tuple[int, str | None]:
    """Run the session's raw CSVs through the live pipeline and store the readings, for a
    session whose readings never reached the store (killed while the pipeline held them for
    its calibration). Returns (readings stored, why not)."""

    n = 0
    for raw_path in raw_paths:
        try:
            rec = read_raw_csv(raw_path)
            cals = calibrate_recording(rec.batches(), rec.rate_hz)
            readings = analyze(rec, cals)
        except DorsimeterError as e:
            return n, str(e)
        for side, cal in sorted(cals.items()):
            store.add_calibration(session_id, side, cal, origin="live")
        n += store.add_samples(session_id, readings)
    return n, None


def recover_session(store, session_id: int) -> Recovered:
    """Score the trials of an interrupted session from its stored samples and mark it ended."""

    info = store.session(session_id)
    if info.ended:
        raise DorsimeterError(f"session {session_id} ended normally; nothing to recover")
    if is_running(store.path.parent, session_id):
        raise DorsimeterError(f"session {session_id} is still recording")
    added = 0
    n = store.count_samples(session_id)
    reanalysed, why = 0, None
    if n == 0 and info.raw_paths:
        reanalysed, why = reanalyse_raw(store, session_id, info.raw_paths)
        n = store.count_samples(session_id)
    if not store.trials(session_id) and n:
        s = store.samples(session_id)
        r = Readings(s.t_s, s.tibia_angle_deg, s.knee_track_deg, np.array(s.side, dtype=object),
                     np.array([bool(v) for v in s.heel_lift]),
                     np.array([v or "none" for v in s.heel_source], dtype=object),
                     np.array([-1 if v is None else int(v) for v in s.rep]),
                     np.array([v is None or bool(v) for v in s.rep_valid]))
        sides = np.asarray(r.side)
        rates = {stream_rate_hz(r.t_s[sides == x]) for x in np.unique(sides)
                 if np.count_nonzero(sides == x) > 1}
        results = SessionResults(rate_hz=rates.pop() if len(rates) == 1 else None)
        results.add(r)
        spans = {str(x): (float(r.t_s[sides == x][0]), float(r.t_s[sides == x][-1]))
                 for x in np.unique(sides)}
        trials = [t for t in trials_from_results(results, spans)
                  if t.angle_deg is not None and np.isfinite(t.angle_deg)]
        store.add_trials(session_id, trials)  # whole records: scored, peak and hold kept
        added = len(trials)
    rows, problem = None, None
    for raw_path in info.raw_paths:  # one raw CSV per sensor
        try:
            rows = (rows or 0) + len(read_raw_csv(raw_path).t_s)
        except InputError as e:
            problem = str(e) if problem is None else f"{problem}; {e}"
    with store._tx():
        store.db.execute("UPDATE sessions SET notes = trim(coalesce(notes, '') || ' ' || ?) "
                         "WHERE id = ?", (f"[{RECOVERED_NOTE}]", session_id))
    store.end_session(session_id)
    return Recovered(session_id, n, added, ", ".join(info.raw_paths) or None, rows, problem,
                     reanalysed, why)
