"""Link gaps of 0.2–5 s in every phase of a session: a right number or a refusal, never a wrong one.

Simulated wall tests (``ShankSim`` with its realistic shins, a random clip rotation and height
and a random BMI270 unit per athlete, 100 Hz, 50 ms batches through the real ``Pipeline`` and
``SessionResults``; heel by the shank sensor alone) lose every sample in ``[t0, t0 + gap)``,
with ``t0`` in one of four phases: the still stance (1.0 s in), the calibration drives (the
middle of the second drive), after calibration (a rest, the gap ending 0.3 s before a rep
starts) and mid-hold (0.5 s into the second rep's end-range hold), each athlete's gap up to
``START_JITTER_S`` later (earlier, after calibration) than that point, drawn per athlete. The
row "none" is the same sessions without a gap (one per athlete: without a gap the phase changes
nothing). The 7 s
drives cell ends in the first rep's hold and cuts the second drive, a rep to the tracker when
the calibration was solved before it: neither the rest of that drive nor of the rep is a trial.

Each athlete's session is then one of:
- **right**: every scripted rep is a trial, every heel-down rep scored within
  ``TARGET_DEG`` of its scripted end angle (a rep the gap fell into may go unscored instead:
  that is a refusal of that rep, not a wrong number);
- **refused**: the session gave no numbers (the calibration was refused, or never completed:
  "drive again"); nothing wrong was stored;
- **wrong**: any score off by more than ``TARGET_DEG``, any heel-down rep marked as a heel lift,
  a scripted rep missing outside the gap, or a trial the script did not make.

The summary keeps apart what the gaps add from what is wrong without any gap: a wrong session
with a gap is the gap's when it has a fault (``judge``'s reason, its angle aside) that the same
athlete's session without a gap does not have; an athlete whose reps read off without a gap
(an accuracy fault, bench accuracy's) is listed on its own line.

``python -m bench gaps``; ``DORSIMETER_GAPS_ATHLETES`` (default 5) athletes per cell;
``--gaps 5,7`` runs those rows only (and the row without a gap), ``--hold-cell-only`` the
serial cell into the first hold alone. The fixes
for gaps during calibration and for the detectors after a gap are other branches' (``cal``,
``heel``): this table shows whatever the code it runs on does.

**serial** (after the simulator's table; ``--no-serial`` leaves it out, ``--serial-only`` runs
it alone; ``DORSIMETER_GAPS_SERIAL_ATHLETES``, default 3, athletes per cell): the same athletes
on the real serial path. The node's firmware runs on this host (``firmware_bridge.host.HostRunner``,
what ``python -m firmware_bridge --pty`` runs) writing real frames into a pseudo-terminal; real
pyserial reads it through ``SerialSource``, and the bridge's unplug (what ``kill -USR1`` on the
bridge does) closes the pty when the host has received device time ``t0`` and replugs it as a
new pty behind the same path; the source reopens it with its backoff. The gap is then whatever
the real outage was (the node keeps sampling; the host's reopen backoff adds to it), measured
from the device time either side; the table gives the nominal gap and the measured median.
The bridge runs ``SERIAL_SPEED`` × real time (``DORSIMETER_GAPS_SPEED``), so an outage of
``gap / speed`` wall seconds is ``gap`` of device time. Phases: stance, drives, after calibration.
After the table, one cell the sweep's timing cannot hit twice alike: an unplug in the drives
whose gap ends inside the first rep's hold (``first_hold_case``: at 2× real time, replugged
midway between two of the source's reopen tries, so the gap is the later try's, 6.2 s).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dorsimeter.core.sensor_cal import calibrate_sensor
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import Mount, SensorErrors, ShankSim
from dorsimeter.sim.errors import still_pose_recording
from dorsimeter.types import ImuBatch

RATE_HZ = 100.0
SECONDS = 50.0
#: 0: the same sessions without a gap; 7 s: a drives gap that ends in the first rep's hold,
#: cutting the second drive (a rep to the tracker when the calibration was solved before it)
GAPS_S = (0.0, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0)
PHASES = ("stance", "drives", "after calibration", "mid-hold")
ATHLETES = int(os.environ.get("DORSIMETER_GAPS_ATHLETES", 5))
#: a score further than this from the truth is a wrong number: below the inclinometer's 1.3°
#: standard error of measurement, the clinical reference the test is scored against
TARGET_DEG = 1.0
MODEL = "bmi270"
SERIAL_PHASES = PHASES[:3]
SERIAL_SPEED = float(os.environ.get("DORSIMETER_GAPS_SPEED", 4.0))
SERIAL_ATHLETES = int(os.environ.get("DORSIMETER_GAPS_SERIAL_ATHLETES", 3))


def _athlete(seed: int) -> ShankSim:
    rng = np.random.default_rng(9000 + seed)
    mount = Mount(height_m=float(rng.uniform(0.10, 0.25)),
                  clip_rotation_deg=tuple(float(x) for x in rng.uniform(-20, 20, 2))  # pyright: ignore[reportArgumentType]
                  + (float(rng.uniform(0, 360)),))
    return ShankSim(rate_hz=RATE_HZ, seed=seed, mount=mount,
                    errors=SensorErrors.realistic(MODEL, RATE_HZ, seed=seed))


#: a link drops at any instant, not at one point of a phase: each athlete's gap starts up to
#: this much later than the phase's point (drawn per athlete; the drives' point sits mid-drive
#: with 1.1 s of the drive left, the stance's 1 s into a 3 s stance, the hold's 0.5 s into a 2 s
#: hold), so a table cell samples the phase, not one moment of it
START_JITTER_S = 0.3


def start_jitter_s(seed: int) -> float:
    """The athlete's gap-start offset in ``[0, START_JITTER_S)`` (its own stream of draws)."""
    return float(np.random.default_rng(7000 + seed).uniform(0.0, START_JITTER_S))


def gap_start_s(sim: ShankSim, phase: str, gap_s: float, jitter_s: float = 0.0) -> float:
    """Where the gap starts for ``phase`` (from the script's ground truth), ``jitter_s`` after
    the phase's point (before it, after calibration: the gap still ends before the rep)."""
    drives = [r for r in sim.reps if r.index < 0]
    reps = sim.counted_reps()
    if phase == "stance":
        return 1.0 + jitter_s
    if phase == "drives":
        d = drives[min(1, len(drives) - 1)]
        return 0.5 * (d.t_start_s + d.t_end_s) + jitter_s
    if phase == "after calibration":
        return reps[1].t_start_s - gap_s - 0.3 - jitter_s
    return reps[1].t_hold_s + 0.5 + jitter_s


def _cut(b: ImuBatch, t0: float, gap_s: float) -> ImuBatch:
    keep = np.flatnonzero((b.t_s < t0) | (b.t_s >= t0 + gap_s))
    return ImuBatch(b.t_s[keep], b.acc_m_s2[keep], b.gyr_rad_s[keep], side=b.side,
                    truth={k: v[keep] for k, v in b.truth.items()})  # pyright: ignore[reportOptionalMemberAccess]


def _sensor_cal(sim: ShankSim, seed: int):
    """The athlete's unit's box calibration (six still poses)."""
    _, pa, pg = still_pose_recording(sim.errors, RATE_HZ, seed + 100, n_random=6)  # pyright: ignore[reportArgumentType]
    return calibrate_sensor(pa, pg, RATE_HZ, f"{MODEL}-{seed}")


def held_truth_deg(batch: ImuBatch | None, rep) -> float:
    """The truth a rep's score is judged against: the tibia's inclination from vertical in the
    foot's sagittal plane, what the product measures, averaged over the scripted hold (as
    ``bench_accuracy``). The script's ``end_angle_deg`` is the angle about the ankle's axis,
    which an oblique axis (12-13° frontal tilt) makes 0.8-1.5° larger; without ``batch`` that
    is all there is."""
    if batch is None or batch.truth is None:
        return float(rep.end_angle_deg)
    m = (batch.t_s >= rep.t_hold_s) & (batch.t_s <= rep.t_return_s)
    return float(np.mean(batch.truth["tibia_angle_deg"][m])) if np.any(m) else \
        float(rep.end_angle_deg)


def judge(sim: ShankSim, pipe: Pipeline, results: SessionResults, told: list[str],
          t0: float, t1: float, restarted: bool = False,
          until_s: float = SECONDS - 2.0, batch: ImuBatch | None = None) -> tuple[str, str]:
    """(outcome, why) of a session whose samples in ``[t0, t1)`` were lost: ``sim`` has
    generated the session (its script is the truth). ``restarted``: the user was told the
    calibration restarted ("drive again"), so the reps made before it completed are refused
    (the scripted athlete does not drive again: they were the drives), not missing. The reps
    that ended by ``until_s`` are judged (the session ran a little longer). ``batch``: the
    whole generated session (its truth: ``held_truth_deg``)."""
    trials = results.counted
    truth = sim.counted_reps(until_s=until_s)
    if "left" not in pipe.calibrations:  # no numbers at all
        return "refused", told[-1] if told else "the calibration never completed"
    t_cal = pipe.calibrations["left"].t_defined_s if restarted else -np.inf
    why = []
    for t in truth:
        hit = [f for f in trials if abs(f.t_start_s - t.t_start_s) < 1.5]
        # a rep the outage overlapped (none: no gap excuses a rep, whatever its phase's t0)
        in_gap = (t1 > t0 and t.t_start_s - 1.0 < t1 and t0 < t.t_end_s + 1.0) \
            or t.t_start_s < t_cal
        if not hit:
            if not in_gap:
                why.append(f"rep at {t.t_start_s:.1f} s missing")
            continue
        f = hit[0]
        if t.valid and not f.valid:
            why.append(f"rep at {t.t_start_s:.1f} s marked heel lift")
        elif f.scored and abs(f.angle_deg - held_truth_deg(batch, t)) > TARGET_DEG:  # pyright: ignore[reportOptionalOperand]
            why.append(f"rep at {t.t_start_s:.1f} s: {f.angle_deg:.1f}° for "
                       f"{held_truth_deg(batch, t):.1f}°")
        elif not f.scored and not in_gap and t.valid:
            why.append(f"rep at {t.t_start_s:.1f} s not scored")
    spurious = [f for f in trials
                if all(abs(f.t_start_s - t.t_start_s) >= 1.5 for t in sim.counted_reps())]
    why += [f"trial at {f.t_start_s:.1f} s not scripted" for f in spurious]
    return ("wrong", "; ".join(why)) if why else ("right", "")


def _fault_key(reason: str) -> str:
    """A ``judge`` reason without its measured angle: the same fault in two sessions."""
    return re.sub(r": -?[\d.]+° for -?[\d.]+°$", ": off", reason)


def gap_faults(why: str, why_without_gap: str) -> list[str]:
    """The reasons of a wrong session with a gap that the same athlete's session without a
    gap does not have (a rep wrong in both is the athlete's accuracy, not the gap's)."""
    known = {_fault_key(r) for r in why_without_gap.split("; ") if r}
    return [r for r in why.split("; ") if r and _fault_key(r) not in known]


def run_case(seed: int, phase: str, gap_s: float) -> tuple[str, str]:
    """(outcome, why) for one athlete with one gap: ``right``, ``refused`` or ``wrong``."""
    sim = _athlete(seed)
    sensor_cal = _sensor_cal(sim, seed)
    full = sim.generate(int(SECONDS * RATE_HZ))
    t0 = gap_start_s(sim, phase, gap_s, start_jitter_s(seed))
    b = _cut(full, t0, gap_s)
    pipe = Pipeline(RATE_HZ, sensor_cal=sensor_cal)
    results = SessionResults()
    told = []
    for i in range(0, len(b), 5):
        r, events = pipe.push(b.slice(i, i + 5))
        told += [e.message for e in events if e.kind == "calibration_failed"]
        results.add(r)
    return judge(sim, pipe, results, told, t0, t0 + gap_s, batch=full)


class _BridgeProcess:
    """``python -m firmware_bridge --pty --link PATH --replug-after S`` as its own process;
    ``unplug`` is ``kill -USR1`` on it (the bridge's own shank: seed ``seed``, default unit).
    Waits at most ``start_deadline_s`` for the bridge to print its pty, else ends it."""

    def __init__(self, link: str, seed: int, speed: float, replug_after_s: float,
                 start_deadline_s: float = 30.0) -> None:
        import select
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridge", "--pty", "--link", link, "--seed",
             str(seed), "--speed", f"{speed:g}", "--replug-after", f"{replug_after_s:g}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], start_deadline_s)
            if not ready or not self.proc.stdout.readline():  # the pty's path: the link is there
                raise RuntimeError(f"firmware bridge printed no pty in {start_deadline_s:g} s")
        except BaseException:
            self.stop()
            raise

    def unplug(self, replug_after_s: float | None = None) -> None:
        import signal

        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:  # noqa: BLE001 - it must end, whatever state it is in
            self.proc.kill()
            self.proc.wait()


#: ``SerialSource``'s reopen backoff after the port fails: it tries at once, then waits 0.1 s,
#: doubling to 2 s between tries (``sources/serial.py``, ``_reader``)
REOPEN_FIRST_WAIT_S, REOPEN_MAX_WAIT_S = 0.1, 2.0


def reopen_after_s(replug_after_s: float) -> float:
    """Wall seconds from the port failing to the source's first reopen try at or after the
    port is back ``replug_after_s`` later: the tries are at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 5.1 …"""
    t, wait = 0.0, REOPEN_FIRST_WAIT_S
    while t < replug_after_s:
        t, wait = t + wait, min(REOPEN_MAX_WAIT_S, 2.0 * wait)
    return t


#: The serial case whose link comes back inside the first rep's end-range hold, after an
#: unplug in the drives: the calibration is solved with the drives before the gap and the rep
#: tracker starts after it, so it must see the gap itself (``t_before_s``) or it counts the rest
#: of the first rep as a trial that starts mid-hold (issue 18; the 5 s drives cells at 4× never
#: ended there twice alike). The port is replugged 2.3 s (wall) after the unplug, midway
#: between the source's reopen tries at 1.5 and 3.1 s, so it reopens at 3.1 s whatever the
#: jitter: at ``HOLD_CASE_SPEED``× that is 6.2 s of device time.
HOLD_CASE_SPEED = 2.0
HOLD_CASE_REPLUG_S = 2.3
#: where in the first hold the link comes back: early enough that the rest of the hold
#: (2 s scripted) still holds ``hold_s`` (1 s) after the tracker's 0.2 s rate window
HOLD_CASE_INTO_HOLD_S = 0.35


def first_hold_case(truth: ShankSim, speed: float = HOLD_CASE_SPEED,
                    replug_after_s: float = HOLD_CASE_REPLUG_S) -> tuple[float, float]:
    """(unplug device time, expected gap s of device time) for the gap from the drives into
    the first rep's hold, from the script and the source's measured backoff."""
    gap_s = reopen_after_s(replug_after_s) * speed
    return truth.counted_reps()[0].t_hold_s + HOLD_CASE_INTO_HOLD_S - gap_s, gap_s


@dataclass
class SerialRun:
    """One serial session: its outcome as ``judge`` gives it, and the gap as measured."""

    outcome: str
    why: str
    gap_before_s: float  # device time of the last sample before the outage (nan: no gap)
    gap_after_s: float  # … and of the first one after it
    restarted: bool  # the user was told the calibration restarted
    truth: ShankSim = field(repr=False)

    @property
    def gap_s(self) -> float:
        """The outage as measured (0: none)."""
        return 0.0 if np.isnan(self.gap_before_s) else self.gap_after_s - self.gap_before_s


def serial_session(seed: int, phase: str, gap_s: float, speed: float = SERIAL_SPEED,
                   process: bool = False, unplug_at_s: float | None = None,
                   replug_after_s: float | None = None, seconds: float = SECONDS) -> SerialRun:
    """One athlete whose serial link is unplugged when the host has device time ``unplug_at_s``
    (default: the phase's start) for ``replug_after_s`` wall seconds (default ``gap_s / speed``:
    ``gap_s`` of device time; ``gap_s`` 0: never unplugged); the reopen's backoff adds to it.
    The host side is what ``record`` runs: ``SerialSource`` → ``Pipeline`` → ``SessionResults``
    taking its reps from the pipeline's events, for ``seconds`` of device time. ``process``:
    the bridge as its own process, unplugged with SIGUSR1 (its own default shank, no box
    calibration), else in this process with the benchmark's athlete. Every process and thread
    it starts is ended before it returns or raises."""
    from dorsimeter.sources.serial import SerialSource
    from firmware_bridge.host import HostRunner

    truth = ShankSim(rate_hz=RATE_HZ, seed=seed, mount=Mount()) if process else _athlete(seed)
    full = truth.generate(int(seconds * RATE_HZ))  # the script (the node's shank: the same)
    t0 = gap_start_s(truth, phase, gap_s) if unplug_at_s is None else unplug_at_s
    replug_s = gap_s / speed if replug_after_s is None else replug_after_s
    sensor_cal = None if process else _sensor_cal(truth, seed)
    pipe = Pipeline(RATE_HZ, sensor_cal=sensor_cal)
    results = SessionResults(rate_hz=RATE_HZ)
    told: list[str] = []
    restarts: list[str] = []  # "link lost during calibration: drive again" and the like
    with tempfile.TemporaryDirectory() as tmp:
        link = str(Path(tmp) / "ttyNODE")
        runner = _BridgeProcess(link, seed, speed, replug_s) if process else \
            HostRunner(rate_hz=RATE_HZ, speed=speed, link_path=link, sim=_athlete(seed)).start()
        try:
            src = SerialSource(link, rate_hz=RATE_HZ, give_up_s=30)

            async def stream() -> None:
                unplugged = False
                try:
                    async for b in src:
                        if replug_s and not unplugged and b.t_s[-1] >= t0:
                            runner.unplug(replug_after_s=replug_s)  # = kill -USR1
                            unplugged = True
                        r, events = pipe.push(b)
                        told.extend(e.message for e in events if e.kind == "calibration_failed")
                        restarts.extend(e.message for e in events
                                        if e.kind == "calibration_restarted")
                        results.add(r, events)
                        if b.t_s[-1] >= seconds:
                            break
                finally:
                    await src.close()

            asyncio.run(asyncio.wait_for(stream(), seconds / speed + 60))
        finally:
            runner.stop()
    gaps = [(g.t_before_s, g.t_after_s) for g in src.gaps
            if g.t_before_s is not None and g.t_after_s is not None]
    g0, g1 = gaps[0] if gaps else (t0, t0)
    outcome, why = judge(truth, pipe, results, told, g0, g1, restarted=bool(restarts),
                         until_s=seconds - 2.0, batch=full)
    nan = float("nan")
    return SerialRun(outcome, why, g0 if gaps else nan, g1 if gaps else nan, bool(restarts),
                     truth)


def run_serial_case(seed: int, phase: str, gap_s: float, speed: float = SERIAL_SPEED,
                    process: bool = False) -> tuple[str, str, float, bool]:
    """(outcome, why, measured gap s, calibration restarted) for one athlete whose serial link
    is unplugged at the phase's ``t0`` for ``gap_s`` of device time (``gap_s / speed`` wall
    seconds; 0: never): ``serial_session``."""
    run = serial_session(seed, phase, gap_s, speed, process)
    return run.outcome, run.why, run.gap_s, run.restarted


def first_hold_cell(athletes: int) -> tuple[str, int]:
    """The serial case into the first hold (``first_hold_case``) for ``athletes`` athletes:
    (the cell's line, wrong sessions)."""
    counts = {"right": 0, "refused": 0, "wrong": 0}
    ends, inside, why = [], 0, []
    for seed in range(athletes):
        truth = _athlete(seed)
        truth.generate(int(SECONDS * RATE_HZ))
        t0, gap_s = first_hold_case(truth)
        run = serial_session(seed, "drives", gap_s, HOLD_CASE_SPEED, unplug_at_s=t0,
                             replug_after_s=HOLD_CASE_REPLUG_S)
        counts[run.outcome] += 1
        hold = truth.counted_reps()[0]
        ends.append(run.gap_after_s)
        inside += bool(hold.t_hold_s <= run.gap_after_s < hold.t_return_s)
        if run.outcome == "wrong":
            why.append(f"athlete {seed}: {run.why}")
    hold = truth.counted_reps()[0]
    line = (f"serial, drives into the first hold ({HOLD_CASE_SPEED:g}× real time, unplugged at "
            f"{t0:.2f} s, replugged {HOLD_CASE_REPLUG_S:g} s later: the source reopens at its "
            f"{reopen_after_s(HOLD_CASE_REPLUG_S):g} s try, {gap_s:.1f} s of device time): "
            f"{counts['right']} / {counts['refused']} / {counts['wrong']}; the link came back at "
            f"{np.median(ends):.2f} s (median), inside the hold ({hold.t_hold_s:.1f}–"
            f"{hold.t_return_s:.1f} s) in {inside} of {athletes}")
    return "\n".join([line, *(f"  e.g. {w}" for w in why)]), counts["wrong"]


def serial_table(athletes: int, gaps_s=GAPS_S, phases=SERIAL_PHASES) -> int:
    """The serial sweep's table (markdown); returns the wrong sessions with a gap."""
    t_start = time.perf_counter()
    print(f"serial: {athletes} athletes per cell, the node's firmware on a pty at "
          f"{SERIAL_SPEED:g}× real time, real pyserial, real unplug/replug; a cell: right / "
          "refused / wrong (measured gap, median; sessions whose calibration restarted with "
          "the user told, their reps before it completed refused)")
    print("| gap | " + " | ".join(phases) + " |")
    print("|" + " --- |" * (len(phases) + 1))
    wrong, examples = 0, []
    for gap_s in gaps_s:
        cells = []
        for phase in phases:
            counts = {"right": 0, "refused": 0, "wrong": 0}
            measured, told = [], 0
            for seed in range(athletes):
                outcome, why, got_s, restarted = run_serial_case(seed, phase, gap_s)
                counts[outcome] += 1
                measured.append(got_s)
                told += restarted
                if outcome == "wrong":
                    wrong += bool(gap_s)
                    if len(examples) < 12:
                        examples.append(f"{gap_s} s {phase}, athlete {seed}: {why}")
            med = f" ({np.median(measured):.2f} s" + (f", {told} told" if told else "") + ")" \
                if gap_s else ""
            cells.append(f"{counts['right']} / {counts['refused']} / {counts['wrong']}{med}")
        print(f"| {'none' if gap_s == 0 else f'{gap_s} s'} | " + " | ".join(cells) + " |",
              flush=True)
    total = athletes * sum(1 for g in gaps_s if g) * len(phases)
    print(f"serial wrong numbers: {wrong} of {total} sessions with a gap (target 0)")
    for e in examples:
        print(f"  e.g. {e}")
    line, hold_wrong = first_hold_cell(athletes)
    print(line)
    print(f"(serial: {time.perf_counter() - t_start:.0f} s)")
    return wrong + hold_wrong


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--hold-cell-only" in argv:
        print(first_hold_cell(SERIAL_ATHLETES)[0])
        return 0
    if "--serial-only" in argv:
        serial_table(SERIAL_ATHLETES)
        return 0
    gaps = GAPS_S
    if "--gaps" in argv:  # some rows of the simulator's table (the row without a gap is kept)
        asked = argv[argv.index("--gaps") + 1].split(",")
        gaps = tuple(sorted({0.0, *map(float, asked)}))
    t0 = time.perf_counter()
    print(f"{ATHLETES} athletes per cell ({MODEL} units with box calibration, wall test, "
          f"{RATE_HZ:.0f} Hz, heel by the shank sensor); a cell: right / refused / wrong; "
          f"a score off by > {TARGET_DEG}° is wrong")
    print("| gap | " + " | ".join(PHASES) + " |")
    print("|" + " --- |" * (len(PHASES) + 1))
    # without a gap the phase changes nothing (no sample is cut, no rep excused): one session
    # per athlete fills the row
    control = {seed: run_case(seed, PHASES[0], 0.0) for seed in range(ATHLETES)}
    wrong, by_gap, examples = 0, 0, []
    for gap_s in gaps:
        cells = []
        for phase in PHASES:
            counts = {"right": 0, "refused": 0, "wrong": 0}
            for seed in range(ATHLETES):
                outcome, why = run_case(seed, phase, gap_s) if gap_s else control[seed]
                counts[outcome] += 1
                if outcome != "wrong" or not gap_s:
                    continue
                wrong += 1
                new = gap_faults(why, control[seed][1])
                by_gap += bool(new)
                if new and len(examples) < 12:
                    examples.append(f"{gap_s:g} s {phase}, athlete {seed}: {'; '.join(new)}")
            cells.append(f"{counts['right']} / {counts['refused']} / {counts['wrong']}")
        print(f"| {'none' if gap_s == 0 else f'{gap_s:g} s'} | " + " | ".join(cells) + " |",
              flush=True)
    with_gap = ATHLETES * sum(1 for g in gaps if g) * len(PHASES)
    bad_alone = [seed for seed, (outcome, _) in control.items() if outcome == "wrong"]
    print(f"wrong numbers: {by_gap} of {with_gap} sessions with a gap made wrong by it (target "
          f"0; a fault the same athlete's session without a gap does not have); {wrong - by_gap} "
          f"more wrong only as without a gap")
    print(f"wrong without any gap (not the gaps'): {len(bad_alone) * len(PHASES)} of "
          f"{ATHLETES * len(PHASES)} sessions in the row without a gap, athletes "
          f"{', '.join(map(str, bad_alone)) or 'none'} of {ATHLETES}")
    for seed in bad_alone:
        print(f"  athlete {seed} without a gap: {control[seed][1]}")
    for e in examples:
        print(f"  e.g. {e}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if "--no-serial" not in argv:
        serial_table(SERIAL_ATHLETES)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
