"""CSV export of a stored session: every sample, and one row per trial.

Both files are UTF-8 with a byte-order mark (so spreadsheets detect UTF-8), comma-separated, one
header line, floats written with Python's shortest round-trip repr (reading them back gives the
stored numbers bit for bit), booleans as 1/0, unknown values empty. Created owner-only (0600).
"""

from __future__ import annotations

import bisect
import csv
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np

from dorsimeter.errors import DorsimeterError
from dorsimeter.export.progress import progress_bar
from dorsimeter.io.rawcsv import RawStream
from dorsimeter.paths import atomic_private_text, private_dir
from dorsimeter.store.db import SessionInfo, SessionLeg, Store, Trial, parse_utc, utc_iso
from dorsimeter.store.summary import summarize
from dorsimeter.text import inert_cell

ENCODING = "utf-8-sig"

SAMPLE_COLUMNS = (
    "time_utc_iso8601",   # host UTC clock at the session's first sample + device time elapsed
    "t_s",                # device time, seconds
    "side",               # left | right
    "sensor",             # the name of the sensor that measured this row's leg
    "tibia_angle_deg",    # tibia inclination from vertical, knee forward +
    "knee_track_deg",     # frontal-plane tibia deviation, toward the midline (valgus) +
    "heel_lift_bool",     # 1 heel up, 0 heel down, empty: not checked
    "heel_source",        # switch | foot_imu | shank, empty: none
    "exercise",           # the counted rep's exercise (wall_test, reverse_lunge, …), empty: none
    "set_number",         # its set (wall test: its trial), empty: none
    "rep_number",         # its 1-based rep number per leg and exercise, empty: in no counted rep
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
    "exercise",                 # wall_test, band_mobilisation, clamshell_wall, reverse_lunge,
                                # single_leg_squat, short_skinny_foot
    "side",
    "set_number",               # the set (wall test: the trial; every automatic one its own,
                                # the reps inside a manual trial share its number)
    "rep_number",               # 1-based, per session, leg and exercise
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
    """A text cell: user text (athlete, sensor name) can never run as a spreadsheet formula
    (``inert_cell``)."""
    return "" if v is None else str(inert_cell(str(v)))


class UtcClock:
    """Device time → ISO-8601 UTC through the session's anchor (first sample, host clock)."""

    def __init__(self, info: SessionInfo, leg: SessionLeg | None = None) -> None:
        """``leg``: that leg's own anchor (a leg recorded later, or by another sensor)."""
        anchor = leg if leg is not None and leg.own_clock and leg.t0_s is not None else info
        self.t0_s = anchor.t0_s
        self.t0 = None if anchor.t0_utc is None else parse_utc(anchor.t0_utc)

    def __call__(self, t_s: float | None) -> str:
        if t_s is None or self.t0 is None or self.t0_s is None:
            return ""
        return utc_iso(self.t0 + timedelta(seconds=t_s - self.t0_s))


class RepOfSample:
    """The stored trial (counted rep) each sample belongs to, found by leg and time: the
    samples keep the pipeline's own rep index, the trials the session's numbers. A sample of a
    movement the session did not count (no trial) belongs to none."""

    def __init__(self, trials: list[Trial]) -> None:
        self.by_side: dict[str, list[Trial]] = {}
        self.starts: dict[str, list[float]] = {}
        for start, t in sorted(((s, t) for t in trials if (s := t.t_start_s) is not None),
                               key=lambda st: st[0]):
            self.by_side.setdefault(t.side, []).append(t)
            self.starts.setdefault(t.side, []).append(start)
        self._found: dict[tuple[str, int], Trial | None] = {}

    def __call__(self, side: str, rep: int | None, t_s: float) -> Trial | None:
        if rep is None:
            return None
        key = (side, rep)
        if key not in self._found:
            i = bisect.bisect_right(self.starts.get(side, []), t_s + 1e-9) - 1
            t = self.by_side[side][i] if i >= 0 else None
            self._found[key] = t if t is not None and (
                t.t_end_s is None or t_s < t.t_end_s) else None
        return self._found[key]


class PhaseMarker:
    """Each sample's phase, from its rep's stored trial (``RepOfSample``).

    ``rest`` outside reps; inside a rep ``drive`` until the scored hold starts, ``hold`` during
    it, ``return`` after it. A rep that never held turns from ``drive`` to ``return`` at its peak
    (the first sample at the stored peak angle). A phase stored with the sample wins; a rep
    without a stored trial (not counted, or the session stopped mid-rep) has no phase. The
    hold's end is its start plus its duration (samples × nominal interval), so a sample counts
    as held when it comes more than half an interval before that end.
    """

    def __init__(self, trials: list[Trial], interval_s: float = 0.0) -> None:
        self.rep_of = RepOfSample(trials)
        self.past_peak: set[int] = set()
        self.half_interval_s = interval_s / 2

    def __call__(self, side: str, rep: int | None, t_s: float, angle_deg: float,
                 stored: str | None, trial: Trial | None = None) -> str:
        if stored:
            return stored
        if rep is None:
            return "rest"
        trial = trial or self.rep_of(side, rep, t_s)
        if trial is None:
            return ""
        if trial.hold_start_s is not None and trial.hold_end_s is not None:
            if t_s < trial.hold_start_s:
                return "drive"
            return "hold" if t_s < trial.hold_end_s - self.half_interval_s else "return"
        key = id(trial)
        if key in self.past_peak:
            return "return"
        if angle_deg == trial.peak_deg:
            self.past_peak.add(key)
        return "drive"


class RawLookup:
    """The raw IMU values (and restart marks) of each stored sample, matched by side and exact
    device time in the session's raw recordings (one per sensor; written with 17 significant
    digits, so times compare exactly).

    Streamed: each file is checked first (bounded memory), then read again chunk by chunk
    alongside the stored samples, one cursor per side, as both come in time order. A stored
    sample the raw file does not have (or one out of order) gets empty raw cells."""

    def __init__(self, raw_paths: str | list[str] | None) -> None:
        self.problem: str | None = None
        paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths or [])
        problems = []
        self._streams: list[RawStream] = []
        for raw_path in paths:
            try:
                self._streams.append(RawStream(raw_path))
            except DorsimeterError as e:
                problems.append(str(e))
        self.problem = "; ".join(problems) or None
        self._cursors: dict[str, _RawCursor] = {}

    def __call__(self, side: str, t_s: float) -> list[str]:
        cursor = self._cursors.get(side)
        if cursor is None:
            cursor = self._cursors[side] = _RawCursor(self._streams, side)
        return cursor.find(t_s)


class _RawCursor:
    """One side's raw rows, chunk by chunk, from every raw file that has that side."""

    def __init__(self, streams: list[RawStream], side: str) -> None:
        self._chunks = (c for s in streams if side in s.sides for c in s.chunks())
        self._side = side
        self._t = np.empty(0)
        self._values = np.empty((0, 6))
        self._restart = np.empty(0, dtype=bool)
        self._i = 0

    def _next_chunk(self) -> bool:
        for rec in self._chunks:
            m = np.asarray(rec.side) == self._side
            if not m.any():
                continue
            self._t = rec.t_s[m]
            self._values = np.hstack([rec.acc_m_s2[m], rec.gyr_rad_s[m]])
            self._restart = (np.zeros(len(self._t), dtype=bool) if rec.restart is None
                             else rec.restart[m])
            self._i = 0
            return True
        return False

    def find(self, t_s: float) -> list[str]:
        while True:
            i = self._i + int(np.searchsorted(self._t[self._i:], t_s))
            if i < len(self._t):
                break
            if not self._next_chunk():
                self._t, self._i = np.empty(0), 0
                return RAW_EMPTY
        self._i = i
        if self._t[i] != t_s:
            return RAW_EMPTY
        return [*(repr(v) for v in self._values[i].tolist()), "1" if self._restart[i] else "0"]


def export_paths(out_dir: Path, session_id: int) -> tuple[Path, Path]:
    stem = f"dorsimeter-session-{session_id}"
    return out_dir / f"{stem}-samples.csv", out_dir / f"{stem}-trials.csv"


def write_trials_csv(path: str | os.PathLike, info: SessionInfo, trials: list[Trial],
                     legs: dict[str, SessionLeg] | None = None) -> int:
    """One row per stored trial (counted rep); ``legs``: each leg's own clock anchor."""
    base = UtcClock(info)
    clocks = {side: UtcClock(info, leg) for side, leg in (legs or {}).items()}
    best = {id(s.best_trial) for s in summarize(trials).values() if s.best_trial is not None}
    with atomic_private_text(path, ENCODING) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRIAL_COLUMNS)
        for t in trials:
            w.writerow([
                _num(info.id), _text(info.athlete), _text(t.exercise), t.side, _num(t.set_no),
                _num(t.rep), _num(t.angle_deg), _num(t.peak_deg), _num(t.valid),
                _num(t.counts), _text(t.heel_source),
                _num(t.t_start_s), _num(t.t_end_s), clocks.get(t.side, base)(t.t_start_s),
                clocks.get(t.side, base)(t.t_end_s),
                _num(t.hold_s), _num(t.hold_start_s), _num(t.hold_end_s), _num(id(t) in best),
                _num(t.peak_valgus_deg), _num(info.placement_cm)])
    return len(trials)


def write_samples_csv(path: str | os.PathLike, store: Store, info: SessionInfo,
                      progress: Callable[[int, int], None] | None = None) -> int:
    """Write every sample; ``progress(written, total)`` after each chunk (then instead of the
    terminal bar: the monitor shows it)."""
    clock = UtcClock(info)
    phase = None
    raw_paths, replaced = store.verified_raw_paths(info)  # never another session's IMU data
    raw = RawLookup(raw_paths)
    problem = "; ".join([*replaced, *([raw.problem] if raw.problem else [])])
    if problem:
        print(f"dorsimeter: note: raw columns left empty: {problem}", file=sys.stderr)
    legs = store.legs(info.id)
    sensors = {side: _text(leg.sensor if leg.sensor is not None else info.sensor)
               for side, leg in legs.items()}
    clocks = {side: UtcClock(info, leg) for side, leg in legs.items() if leg.t0_s is not None}
    sensor = _text(info.sensor)
    n = 0
    total = store.count_samples(info.id)
    if progress is not None:
        progress(0, total)
    with atomic_private_text(path, ENCODING) as f, \
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
                _sample_row(t, side, a, k, hl, hs, rep, rv, ph, clocks.get(side, clock),
                            sensors.get(side, sensor), phase, raw)
                for t, side, a, k, hl, hs, rep, rv, ph in zip(
                    chunk.t_s.tolist(), chunk.side, chunk.tibia_angle_deg.tolist(),
                    chunk.knee_track_deg.tolist(), chunk.heel_lift, chunk.heel_source,
                    chunk.rep, chunk.rep_valid, chunk.phase, strict=True))
            n += len(chunk)
            advance(len(chunk))
            if progress is not None:
                progress(n, total)
    return n


def _sample_row(t, side, a, k, hl, hs, rep, rv, ph, clock, sensor, phase, raw) -> list:
    trial = phase.rep_of(side, rep, t)
    return [clock(t), repr(t), side, sensor, repr(a), repr(k), _num(hl), _text(hs),
            "" if trial is None else trial.exercise,
            "" if trial is None else _num(trial.set_no),
            "" if trial is None else _num(trial.rep), _num(rv),
            phase(side, rep, t, a, ph, trial), *raw(side, t)]


def export_session_csv(store: Store, ref: int | str, out_dir: str | os.PathLike,
                       progress: Callable[[int, int], None] | None = None
                       ) -> tuple[Path, Path, int, int]:
    """Write the samples and trials CSVs of session ``ref`` into ``out_dir`` (created 0700);
    ``progress(samples written, total)`` as it goes (see ``write_samples_csv``)."""
    info = store.session(ref)
    out = private_dir(Path(out_dir))
    samples_path, trials_path = export_paths(out, info.id)
    n_samples = write_samples_csv(samples_path, store, info, progress)
    n_trials = write_trials_csv(trials_path, info, store.trials(info.id), store.legs(info.id))
    return samples_path, trials_path, n_samples, n_trials
