"""Per-side results of a session: what was done (exercise, set, rep, leg), best valid angle,
asymmetry, the wall.

Reps come from the pipeline's own rep tracker: ``add(readings, events)`` takes its ``rep``
events (one tracker, one rep shape: :class:`~dorsimeter.detect.RepRecord`). Given readings
alone (no events: the stored samples ``recover`` scores, where there is no pipeline to rerun),
the session runs the pipeline's own segmentation on them (:class:`~dorsimeter.detect.reps.
SideReps`, the same settings type). The pipeline's readings of a calibration (stance
and drives) belong to no rep, so calibration drives are never trials.

The session numbers what it counts, 1-based, per leg and per exercise, restarting with every
session (``rep_no``), and gives each rep its set (``set_no``):

- the knee-to-wall test (``exercise`` ``wall_test``, the default): a rep is a *trial* when it held
  its end range for ``hold_s`` or lifted the heel (a quick movement without a hold is not); it is
  *scored* when it held with the heel down. Automatic trials (the default): every trial is its
  own, its set is its trial number. ``start_trial(side)`` (the monitor's ``t``) switches to
  manual trials: the next trial number opens on that leg and the trials ending while it is open
  share it as their set; ``stop_trial`` closes it; outside an open manual trial nothing counts.
  ``set_auto_trials(True)`` goes back;
- a guided exercise (``set_exercise(name, guided=True)``): its protocol runner decides which of
  the pipeline's reps count (with the protocol's hold) and hands each counted rep over
  (``add_counted``) with its set; a pipeline rep that overlaps the guided exercise's time at all
  (it began before the protocol started, or ended after it stopped) is the runner's movement,
  never a wall-test trial as well: a movement is counted once whichever batch the start or stop
  lands in. A guided rep the stop cut short is the pipeline's rep: it ends with it;
- an exercise without a runner (``record --exercise reverse_lunge``, ``sim:lunge``): the
  pipeline's held reps, set 1.

``max_deg`` is the running maximum of the tibia angle while trials count, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np

from dorsimeter.detect.heel_sources import SPOKEN
from dorsimeter.detect.reps import RepRecord, RepSettings, SideReps
from dorsimeter.rate import stream_rate_hz
from dorsimeter.session.asymmetry import MDC_DEG, Asymmetry, asymmetry
from dorsimeter.session.exercise import WALL_TEST, exercise_title
from dorsimeter.session.wall import HAND_WIDTH_M, AthleteGeometry
from dorsimeter.types import SIDES, Readings

if TYPE_CHECKING:  # the pipeline (scipy) stays out of the store summary's start-up
    from dorsimeter.pipeline.pipeline import Event

#: samples of a side whose median interval gives its rate when none was given (robust to a few
#: lost samples among them)
RATE_SAMPLES = 11

BEST_OF = 3  # "mean of the best three"


@dataclass(frozen=True)
class Score:
    """A side's wall-test figures from its attempts (see :func:`score`)."""

    best_deg: float | None  # the best scored angle
    mean_best_deg: float | None  # the mean of the best ``best_of`` (of all there are, if fewer)
    best_of: int
    n_attempts: int
    n_scored: int  # held at end range with the heel down, measured throughout
    n_valid: int  # heel checked and down
    n_invalid: int  # heel lifted: kept, never scored


def score(attempts: Iterable[tuple[float | None, bool, bool | None]], best_of: int = BEST_OF
          ) -> Score:
    """The one scoring rule, from a side's wall-test attempts as ``(angle_deg, counts, valid)``:
    the best and the mean of the best ``best_of`` of the attempts that count, and the counts.
    The session (its ``RepRecord``: ``scored``), the store's summary (history, report, export:
    its ``Trial``: ``counts``) and the monitor (through the session) all use it."""
    attempts = list(attempts)
    best = sorted((float(a) for a, counts, _ in attempts if counts and a is not None),
                  reverse=True)
    return Score(best[0] if best else None,
                 float(np.mean(best[:best_of])) if best else None, best_of, len(attempts),
                 len(best), sum(v is True for _, _, v in attempts),
                 sum(v is False for _, _, v in attempts))


@dataclass
class SessionSettings:
    """What a coach may configure (defaults from the literature / protocol). The rep
    thresholds are the rep tracker's own settings object (the pipeline's are the same type)."""

    mdc_deg: float = MDC_DEG  # asymmetry beyond this is flagged
    best_of: int = BEST_OF  # "mean of the best three"
    wall_m: float = HAND_WIDTH_M  # the wall in front of the toes (a hand width)
    reps: RepSettings = field(default_factory=RepSettings)  # segmenting a readings file


@dataclass
class SideResults:
    """One side's reps and the figures a coach reads from them."""

    side: str
    reps: list[RepRecord] = field(default_factory=list)

    @property
    def counted(self) -> list[RepRecord]:
        """Every rep the session numbered, all exercises, in the order they ended."""
        return [r for r in self.reps if r.rep_no is not None]

    @property
    def trials(self) -> list[RepRecord]:
        """The knee-to-wall attempts: held at end range, or invalidated by a heel lift.
        (Quick movements without a hold are not trials; calibration drives are no reps.)"""
        return [r for r in self.counted if (r.exercise or WALL_TEST) == WALL_TEST]

    def exercise_reps(self, exercise: str) -> list[RepRecord]:
        """The counted reps of one exercise."""
        return [r for r in self.counted if (r.exercise or WALL_TEST) == exercise]

    @property
    def scored(self) -> list[RepRecord]:
        """Wall-test trials held at end range with the heel down."""
        return [r for r in self.trials if r.scored]

    @property
    def invalid(self) -> list[RepRecord]:
        """Wall-test trials with a heel lift (kept, not scored)."""
        return [r for r in self.trials if not r.valid]

    @property
    def scores_deg(self) -> list[float]:
        # a scored trial ended, so its end range is set
        return [cast(float, r.end_range_deg) for r in self.scored]

    def score(self, best_of: int = BEST_OF) -> Score:
        """The wall-test figures of this side's trials, by the one scoring rule."""
        return score(((r.end_range_deg, r.scored, r.valid) for r in self.trials), best_of)

    @property
    def best_valid_deg(self) -> float | None:
        return self.score().best_deg

    def mean_best_deg(self, n: int = BEST_OF) -> float | None:
        """Mean of the best ``n`` scores (of all there are, when fewer)."""
        return self.score(n).mean_best_deg

    @property
    def peak_valgus_deg(self) -> float | None:
        """Largest knee track toward the midline over all reps (the squat screen's figure)."""
        v = [r.peak_valgus_deg for r in self.counted if np.isfinite(r.peak_valgus_deg)]
        return max(v) if v else None

    @property
    def drift_alerts(self) -> int:
        return sum(r.knee_drift_alert for r in self.counted)


@dataclass
class SessionResults:
    """Collects readings into per-side reps and results (see the module docstring)."""

    trial_active: bool = True  # trials count now (automatic, or a manual trial is open)
    max_deg: dict[str, float] = field(default_factory=dict)
    last_angle_deg: float | None = None
    last_side: str | None = None
    settings: SessionSettings = field(default_factory=SessionSettings)
    athlete: AthleteGeometry | None = None
    rate_hz: float | None = None  # the stream's rate; None: each side's from its timestamps
    auto_trials: bool = True
    sides: dict[str, SideResults] = field(
        default_factory=lambda: {s: SideResults(s) for s in SIDES})
    heel_source: dict[str, str] = field(default_factory=dict)  # last source used per side
    exercise: str = WALL_TEST  # what the reps ending now are
    guided: bool = False  # a protocol runner hands the reps over (``add_counted``)

    def __post_init__(self) -> None:
        # readings without the pipeline's events: the same segmentation as the pipeline's
        self._reps = SideReps(self.settings.reps, self.rate_hz)
        # readings of a side held until its rate is known (``rate_hz`` None: ``RATE_SAMPLES``)
        self._early: dict[str, list[tuple[np.ndarray, ...]]] = {}
        self._next_rep: dict[tuple[str, str], int] = {}  # (side, exercise) → next rep number
        self._trial_no: dict[str, int] = {}  # side → the last wall-test trial number given
        self._open: dict[str, int] = {}  # side → the manual trial open on it
        self._numbered: dict[tuple[str, int], int] = {}  # (side, pipeline rep index) → rep_no
        self._last_t: dict[str, float] = {}  # side → device time of its last reading
        # side → the guided exercises' spans of device time (end None: still running)
        self._guided_spans: dict[str, list[list[float | None]]] = {}

    # -- what is being done ---------------------------------------------------------------------
    def set_exercise(self, exercise: str | None, guided: bool = False) -> None:
        """The reps that end from now on are ``exercise`` (None: the wall test); ``guided``: a
        protocol runner decides which count (``add_counted``)."""
        was_guided = self.guided
        self.exercise = exercise or WALL_TEST
        self.guided = bool(guided) and self.exercise != WALL_TEST
        for side, t in self._last_t.items():  # the readings seen so far came before the switch
            spans = self._guided_spans.setdefault(side, [])
            if was_guided and spans and spans[-1][1] is None:
                spans[-1][1] = t
            if self.guided:
                spans.append([t, None])

    def _in_guided(self, rep: RepRecord) -> bool:
        """Did the pipeline's ``rep`` overlap a guided exercise's time (the runner's movement)?
        A side first seen while guided is guided from its first reading."""
        if self.guided and rep.side not in self._guided_spans:
            return True
        end = rep.t_end_s if rep.t_end_s is not None else np.inf
        # a span's start is always set (only its end may be open)
        return any(rep.t_start_s < (np.inf if t1 is None else t1) and end > cast(float, t0)
                   for t0, t1 in self._guided_spans.get(rep.side, []))

    @property
    def exercises(self) -> list[str]:
        """The exercises done in this session, in the order they were first counted."""
        reps = sorted((r for v in self.sides.values() for r in v.counted),
                      key=lambda r: r.t_end_s if r.t_end_s is not None else r.t_start_s)
        return list(dict.fromkeys(r.exercise or WALL_TEST for r in reps))

    # -- trials ---------------------------------------------------------------------------------
    @property
    def trials(self) -> dict[str, int]:
        """Wall-test trials per side: the automatic ones (one per attempt) and the manual ones
        started by hand (open or closed, with or without reps yet)."""
        return {s: self._trial_no.get(s, 0) for s in SIDES}

    def start_trial(self, side: str) -> int:
        """Manual override: the next wall-test trial opens on ``side``; the trials ending while
        it is open are its reps (their set). Returns its number."""
        self.auto_trials = False
        n = self._trial_no[side] = self._trial_no.get(side, 0) + 1
        self._open[side] = n
        self.trial_active = True
        return n

    def stop_trial(self, side: str | None = None) -> int | None:
        """Close the manual trial open on ``side`` (None: every one); returns its number."""
        n = None
        for s in [side] if side is not None else list(self._open):
            n = self._open.pop(s, n)
        self.trial_active = self.auto_trials or bool(self._open)
        return n

    def open_trial(self, side: str) -> int | None:
        """The manual trial open on ``side``, if any."""
        return self._open.get(side)

    def set_auto_trials(self, on: bool = True) -> None:
        """Every rep is a trial of its own (the default); ``False`` keeps manual trials."""
        self.auto_trials = on
        if on:
            self._open.clear()
        self.trial_active = on or bool(self._open)

    def _counts_now(self, side: str) -> bool:
        return self.auto_trials or side in self._open

    # -- numbering ------------------------------------------------------------------------------
    def _number(self, rep: RepRecord, exercise: str, set_no: int | None) -> int:
        key = (rep.side, exercise)
        rep.exercise, rep.set_no = exercise, set_no
        rep.rep_no = rep_no = self._next_rep.get(key, 1)
        self._next_rep[key] = rep.rep_no + 1
        self.sides.setdefault(rep.side, SideResults(rep.side)).reps.append(rep)
        return rep_no

    def _take(self, rep: RepRecord) -> bool:
        """A rep the pipeline ended: numbered (and kept) when the session counts it."""
        side = rep.side
        if self._in_guided(rep):  # the protocol runner decides, with its own hold
            return False
        if self.exercise != WALL_TEST:
            if rep.held:
                self._numbered[(side, rep.index)] = self._number(rep, self.exercise, 1)
                return True
            return False
        if not rep.is_trial or not self._counts_now(side):
            return False
        if self.auto_trials:  # a trial of its own
            set_no = self._trial_no[side] = self._trial_no.get(side, 0) + 1
        else:
            set_no = self._open[side]
        self._numbered[(side, rep.index)] = self._number(rep, WALL_TEST, set_no)
        return True

    def add_counted(self, side: str, set_no: int, record: RepRecord) -> RepRecord:
        """A rep a guided exercise's runner counted (its hold reached, heel down) in ``set_no``;
        numbered now, its angle filled in as the rep ends."""
        self._number(record, self.exercise, set_no)
        record.side = side
        return record

    def rep_label(self, side: str, index: int, current: bool = False,
                  t_start_s: float | None = None) -> int | None:
        """The number the session gives the pipeline's rep ``index`` on ``side`` (starting at
        ``t_start_s``): its rep number once counted (a guided rep: the one the runner counted
        that started then); for the rep under way (``current``) the number it will get if it
        counts; None for a movement the session does not count."""
        n = self._numbered.get((side, index))
        if n is None and t_start_s is not None:
            n = next((r.rep_no for r in reversed(self.sides[side].counted)
                      if abs(r.t_start_s - t_start_s) < 1e-6), None) if side in self.sides else None
        if n is not None or not current:
            return n
        if self.guided:
            return self._next_rep.get((side, self.exercise), 1)
        if self.exercise == WALL_TEST and not self._counts_now(side):
            return None
        return self._next_rep.get((side, self.exercise), 1)

    # -- data in --------------------------------------------------------------------------------
    def _cols(self, side: str, cols: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...] | None:
        """The columns to segment (``cols``: t, angle, track, heel lift). Without ``rate_hz``
        a side's rate comes from the median interval of its first ``RATE_SAMPLES`` samples;
        until then its readings wait (None)."""
        if side not in self._reps.trackers:
            rate_hz = self.rate_hz
            if rate_hz is None:
                early = self._early.setdefault(side, [])
                early.append(cols)
                cols = tuple(np.concatenate(c) for c in zip(*early, strict=True))
                if len(cols[0]) < RATE_SAMPLES:
                    return None
                del self._early[side]
                rate_hz = stream_rate_hz(cols[0])
            self._reps.start(side, rate_hz)
        return cols

    def add(self, r: Readings, events: list[Event] | None = None) -> list[RepRecord]:
        """Take the next readings and the pipeline's events for them; returns the reps the
        session counted. Without ``events`` the readings are segmented here."""
        done: list[RepRecord] = []
        if events is not None:
            for e in events:
                if e.kind == "rep" and e.rep is not None and self._take(e.rep):
                    done.append(e.rep)
        if len(r) == 0:
            return done
        self.last_angle_deg = float(r.tibia_angle_deg[-1])
        self.last_side = str(r.side[-1])
        sides = np.asarray(r.side)
        for side in dict.fromkeys(sides.tolist()):
            m = sides == side
            if self.guided and side not in self._guided_spans:  # first seen while guided
                self._guided_spans[side] = [[float(r.t_s[m][0]), None]]
            self._last_t[side] = float(r.t_s[m][-1])
            src = str(r.heel_source[m][-1])
            self.heel_source[side] = src
            if self.trial_active:
                mx = float(np.max(r.tibia_angle_deg[m]))
                if side not in self.max_deg or mx > self.max_deg[side]:
                    self.max_deg[side] = mx
            if events is None:
                cols = self._cols(
                    side, (r.t_s[m], r.tibia_angle_deg[m], r.knee_track_deg[m], r.heel_lift[m]))
                if cols is not None:
                    t, angle, track, lift = cols
                    reps = self._reps.update(side, t, angle, track, lift, src)[2]
                    done += [rep for rep in reps if self._take(rep)]
        return done

    # -- results --------------------------------------------------------------------------------
    @property
    def best_valid_deg(self) -> dict[str, float]:
        """Best scored (held, heel-down) angle per side that has one."""
        return {s: v.best_valid_deg for s, v in self.sides.items()
                if v.best_valid_deg is not None}

    @property
    def mean_best3_deg(self) -> dict[str, float]:
        """Mean of the best three (``settings.best_of``) scores per side."""
        out = {s: v.mean_best_deg(self.settings.best_of) for s, v in self.sides.items()}
        return {s: m for s, m in out.items() if m is not None}

    @property
    def peak_valgus_deg(self) -> dict[str, float]:
        """Single-leg squat screen: peak knee track toward the midline per side."""
        out = {s: v.peak_valgus_deg for s, v in self.sides.items()}
        return {s: m for s, m in out.items() if m is not None}

    @property
    def asymmetry(self) -> Asymmetry | None:
        """Left/right asymmetry of the best valid angles (None until both sides scored)."""
        b = self.best_valid_deg
        if not all(s in b for s in SIDES):
            return None
        return asymmetry(b["left"], b["right"], self.settings.mdc_deg, self.athlete)

    def wall(self, side: str) -> dict | None:
        """The hand-width wall for ``side``'s best valid angle (needs the athlete's lengths):
        ``reaches``, ``knee_to_wall_cm`` (≤ 0: reaches), ``toe_to_wall_cm`` (the test score),
        ``angle_to_reach_deg``."""
        best = self.best_valid_deg.get(side)
        if best is None or self.athlete is None:
            return None
        a, w = self.athlete, self.settings.wall_m
        return {"wall_cm": 100 * w, "reaches": a.reaches(best, w),
                "knee_to_wall_cm": 100 * a.knee_to_wall_m(best, w),
                "toe_to_wall_cm": 100 * a.toe_to_wall_m(best),
                "angle_to_reach_deg": a.angle_to_reach_deg(w)}

    @property
    def counted(self) -> list[RepRecord]:
        """Every counted rep (wall-test trials and exercise reps) with its exercise, set and
        1-based rep number, left then right: what the store keeps of the session (the one rep
        shape, stored by ``store.recorder.trial_from_rep``)."""
        return [r for s in SIDES for r in self.sides[s].counted]

    def summary_lines(self) -> list[str]:
        """Lines for the terminal: per side maximum, best valid, mean of best three, reps;
        then asymmetry and the wall."""
        out = []
        for side in SIDES:
            m = self.max_deg.get(side)
            line = f"{side:>5}: max tibia angle " + ("—" if m is None else f"{m:.2f}°")
            v = self.sides[side]
            if v.trials:
                best, mean3 = v.best_valid_deg, v.mean_best_deg(self.settings.best_of)
                line += (f", best valid {'—' if best is None else f'{best:.1f}°'}"
                         f", mean of best {self.settings.best_of} "
                         f"{'—' if mean3 is None else f'{mean3:.1f}°'}"
                         f", attempts {len(v.trials)} ({len(v.scored)} scored, "
                         f"{len(v.invalid)} heel lift)"
                         f", heel: {SPOKEN.get(self.heel_source.get(side, 'none'), 'none')}")
            out.append(line)
            if v.trials:
                out.append(f"{side:>5}: wall test, trials " + rep_list(v.trials))
            for ex in self.exercises:
                if ex != WALL_TEST and v.exercise_reps(ex):
                    out.append(f"{side:>5}: " + exercise_line(ex, v.exercise_reps(ex)))
        asym = self.asymmetry
        if asym is not None:
            out.append(asym.line())
        elif all(s in self.max_deg for s in SIDES):
            d = self.max_deg["left"] - self.max_deg["right"]
            out.append(f"left − right: {d:+.2f}°")
        for side in SIDES:
            w = self.wall(side)
            if w is not None:
                out.append(f"{side:>5}: {'reaches' if w['reaches'] else 'does not reach'} a "
                           f"{w['wall_cm']:.0f} cm wall (toe to wall {w['toe_to_wall_cm']:.1f} "
                           "cm)")
        return out


def scored_hold(rep: RepRecord) -> tuple[float, float] | None:
    """The (start, end) device times of the hold whose median is the rep's end-range angle."""
    for t0, t1, median in rep.holds or []:
        if median == rep.end_range_deg and abs((t1 - t0) - rep.hold_s) < 1e-9:
            return float(t0), float(t1)
    return None


def rep_list(reps: list[RepRecord]) -> str:
    """``1 37.3° · 2 37.6°✗`` (✗: heel lifted, not scored; ~: never held)."""
    return " · ".join(
        f"{r.rep_no} {r.end_range_deg:.1f}°" + ("✗" if not r.valid else "" if r.held else "~")
        for r in reps if r.end_range_deg is not None)


def exercise_line(exercise: str, reps: list[RepRecord]) -> str:
    """One exercise's own figures: reps done (per set), holds reached, end range per rep."""
    sets = dict.fromkeys(r.set_no for r in reps)
    per_set = ", ".join(f"set {s}: {sum(r.set_no == s for r in reps)}" for s in sets
                        if s is not None)
    held = sum(r.held and r.valid for r in reps)
    return (f"{exercise_title(exercise)}, {len(reps)} reps" + (f" ({per_set})" if per_set else "")
            + f", holds reached {held}, end range per rep " + rep_list(reps))
