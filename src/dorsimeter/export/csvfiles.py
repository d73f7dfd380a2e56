"""CSV export of a stored session: every sample, and one row per trial.

Both files are UTF-8 with a byte-order mark (so spreadsheets detect UTF-8), comma-separated, one
header line, floats written with Python's shortest round-trip repr (reading them back gives the
stored numbers bit for bit), booleans as 1/0, unknown values empty. Created owner-only (0600).
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from dorsimeter.errors import DorsimeterError
from dorsimeter.export.progress import progress_bar
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store.db import SessionInfo, Store, Trial, parse_utc, utc_iso
from dorsimeter.store.paths import open_private_text, private_dir
from dorsimeter.store.summary import summarize

ENCODING = "utf-8-sig"

SAMPLE_COLUMNS = (
    "time_utc_iso8601",   # host UTC clock at the session's first sample + device time elapsed
    "t_s",                # device time, seconds
    "side",               # left | right
    "sensor",             # the sensor's name
    "tibia_angle_deg",    # tibia inclination from vertical, knee forward +
    "knee_track_deg",     # frontal-plane tibia deviation, toward the midline (valgus) +
    "heel_lift_bool",     # 1 heel up, 0 heel down, empty: not checked
    "heel_source",        # switch | foot_imu | shank, empty: none
    "rep_number",         # rep the sample belongs to, empty: none
    "rep_valid_bool",     # 1 the rep counts, 0 it does not (heel lift), empty: unknown
    "phase",              # rest | drive | hold | return (see ``PhaseMarker``), empty: unknown
    # the raw IMU sample, from the session's raw recording (empty when it has none or it moved)
    "acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2",
    "gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s",
    "sensor_restart_bool",  # 1 the sensor restarted (power cycle) just before this sample
)
RAW_EMPTY = [""] * 7

TRIAL_COLUMNS = (
    "session_id",
    "athlete",
    "exercise",                 # wall_test, or the guided exercise
    "side",
    "set_number",
    "rep_number",
    "angle_deg",                # end-range (held) tibia angle, else the rep's peak
    "peak_deg",                 # highest tibia angle in the rep, empty: not known
    "valid_bool",               # 1 heel down, 0 heel lifted (not scored), empty: not checked
    "scored_bool",              # 1 counts toward the side's results (held, heel down)
    "heel_source",
    "t_start_s",                # device time
    "t_end_s",
    "time_start_utc_iso8601",
    "time_end_utc_iso8601",
    "hold_s",                   # how long the scored hold lasted
    "hold_start_s",             # device time the scored hold began, empty: no hold
    "hold_end_s",
    "best_of_side_bool",        # 1 on the trial that is the side's best scored angle
    "peak_valgus_deg",          # largest knee track toward the midline in the rep (knee track)
    "placement_cm",             # the session's clip centre below the tibial tuberosity
)


def _num(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _text(v) -> str:
    return "" if v is None else str(v)


class UtcClock:
    """Device time → ISO-8601 UTC through the session's anchor (first sample, host clock)."""

    def __init__(self, info: SessionInfo) -> None:
        self.t0_s = info.t0_s
        self.t0 = None if info.t0_utc is None else parse_utc(info.t0_utc)

    def __call__(self, t_s: float | None) -> str:
        if t_s is None or self.t0 is None or self.t0_s is None:
            return ""
        return utc_iso(self.t0 + timedelta(seconds=t_s - self.t0_s))


class PhaseMarker:
    """Each sample's phase, from its rep and that rep's stored trial.

    ``rest`` outside reps; inside a rep ``drive`` until the scored hold starts, ``hold`` during
    it, ``return`` after it. A rep that never held turns from ``drive`` to ``return`` at its peak
    (the first sample at the stored peak angle). A phase stored with the sample wins; a rep
    without a stored trial (the session stopped mid-rep) has no phase. The hold's end is its
    start plus its duration (samples × nominal interval), so a sample counts as held when it
    comes more than half an interval before that end.
    """

    def __init__(self, trials: list[Trial], interval_s: float = 0.0) -> None:
        self.trials = {(t.side, t.rep): t for t in trials if t.rep is not None}
        self.past_peak: set[tuple[str, int]] = set()
        self.half_interval_s = interval_s / 2

    def __call__(self, side: str, rep: int | None, t_s: float, angle_deg: float,
                 stored: str | None) -> str:
        if stored:
            return stored
        if rep is None:
            return "rest"
        trial = self.trials.get((side, rep))
        if trial is None:
            return ""
        if trial.hold_start_s is not None and trial.hold_end_s is not None:
            if t_s < trial.hold_start_s:
                return "drive"
            return "hold" if t_s < trial.hold_end_s - self.half_interval_s else "return"
        key = (side, rep)
        if key in self.past_peak:
            return "return"
        if angle_deg == trial.peak_deg:
            self.past_peak.add(key)
        return "drive"


class RawLookup:
    """The raw IMU values (and restart marks) of each stored sample, matched by side and exact
    device time in the session's raw recordings (one per sensor; written with 17 significant
    digits, so times compare exactly)."""

    def __init__(self, raw_paths: str | list[str] | None) -> None:
        self.rows: dict[tuple[str, float], list[str]] = {}
        self.problem: str | None = None
        paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths or [])
        problems = []
        for raw_path in paths:
            try:
                rec = read_raw_csv(raw_path)
            except DorsimeterError as e:
                problems.append(str(e))
                continue
            values = np.hstack([rec.acc_m_s2, rec.gyr_rad_s]).tolist()
            restart = (np.zeros(len(rec.t_s), dtype=bool) if rec.restart is None
                       else rec.restart).tolist()
            self.rows.update({(str(s), t): [*(repr(v) for v in row), "1" if r else "0"]
                              for s, t, row, r in zip(rec.side, rec.t_s.tolist(), values,
                                                      restart, strict=True)})
        self.problem = "; ".join(problems) or None

    def __call__(self, side: str, t_s: float) -> list[str]:
        return self.rows.get((side, t_s), RAW_EMPTY)


def export_paths(out_dir: Path, session_id: int) -> tuple[Path, Path]:
    stem = f"dorsimeter-session-{session_id}"
    return out_dir / f"{stem}-samples.csv", out_dir / f"{stem}-trials.csv"


def write_trials_csv(path: str | os.PathLike, info: SessionInfo, trials: list[Trial]) -> int:
    clock = UtcClock(info)
    best = {id(s.best_trial) for s in summarize(trials).values() if s.best_trial is not None}
    with open_private_text(path, ENCODING) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRIAL_COLUMNS)
        for t in trials:
            w.writerow([
                _num(info.id), _text(info.athlete), t.exercise, t.side, _num(t.set_no),
                _num(t.rep), _num(t.angle_deg), _num(t.peak_deg), _num(t.valid),
                _num(t.counts), _text(t.heel_source),
                _num(t.t_start_s), _num(t.t_end_s), clock(t.t_start_s), clock(t.t_end_s),
                _num(t.hold_s), _num(t.hold_start_s), _num(t.hold_end_s), _num(id(t) in best),
                _num(t.peak_valgus_deg), _num(info.placement_cm)])
    return len(trials)


def write_samples_csv(path: str | os.PathLike, store: Store, info: SessionInfo,
                      progress: Callable[[int, int], None] | None = None) -> int:
    """Write every sample; ``progress(written, total)`` after each chunk (then instead of the
    terminal bar: the monitor shows it)."""
    clock = UtcClock(info)
    phase = None
    raw = RawLookup(info.raw_paths)
    if raw.problem:
        print(f"dorsimeter: note: raw columns left empty: {raw.problem}", file=sys.stderr)
    sensor = _text(info.sensor)
    n = 0
    total = store.count_samples(info.id)
    if progress is not None:
        progress(0, total)
    with open_private_text(path, ENCODING) as f, \
            progress_bar(f"exporting session {info.id}", total,
                         None if progress is None else total + 1) as advance:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SAMPLE_COLUMNS)
        for chunk in store.iter_samples(info.id):
            if phase is None:
                dt = np.diff(chunk.t_s[np.asarray(chunk.side) == chunk.side[0]])
                phase = PhaseMarker(store.trials(info.id),
                                    float(np.median(dt)) if len(dt) else 0.0)
            w.writerows(
                [clock(t), repr(t), side, sensor, repr(a), repr(k), _num(hl), _text(hs),
                 _num(rep), _num(rv), phase(side, rep, t, a, ph), *raw(side, t)]
                for t, side, a, k, hl, hs, rep, rv, ph in zip(
                    chunk.t_s.tolist(), chunk.side, chunk.tibia_angle_deg.tolist(),
                    chunk.knee_track_deg.tolist(), chunk.heel_lift, chunk.heel_source,
                    chunk.rep, chunk.rep_valid, chunk.phase, strict=True))
            n += len(chunk)
            advance(len(chunk))
            if progress is not None:
                progress(n, total)
    return n


def export_session_csv(store: Store, ref: int | str, out_dir: str | os.PathLike,
                       progress: Callable[[int, int], None] | None = None
                       ) -> tuple[Path, Path, int, int]:
    """Write the samples and trials CSVs of session ``ref`` into ``out_dir`` (created 0700);
    ``progress(samples written, total)`` as it goes (see ``write_samples_csv``)."""
    info = store.session(ref)
    out = private_dir(Path(out_dir))
    samples_path, trials_path = export_paths(out, info.id)
    n_samples = write_samples_csv(samples_path, store, info, progress)
    n_trials = write_trials_csv(trials_path, info, store.trials(info.id))
    return samples_path, trials_path, n_samples, n_trials
