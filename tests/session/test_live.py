"""The one live session (``session.live``) on real simulated sources: two shins live at once,
each bound to its side, into one session (reps and asymmetry against the simulator's truth),
raw CSVs and a store sink; the sensors connect one after the other; one leg failing; the
process's signals."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import numpy as np
import pytest

from dorsimeter.errors import DeviceError
from dorsimeter.io.rawcsv import RawCsvWriter, read_raw_csv
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.live import Leg, LiveSession, SignalStop, exit_code
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.sources.sim import SimSource
from tests.detect.simrun import match
from tests.reliability.test_disk import file_size_limit

ENDS = {"left": 39.0, "right": 32.0}  # the simulated athlete's end range per leg


class Rig(SimSource):
    """The simulated rig as a live source (as fast as it goes), with the simulator given;
    ``gate``: it connects once set; ``fail_after``: the link is lost for good after that many
    batches (as a BLE source gives up)."""

    def __init__(self, sim: ShankSim, gate: asyncio.Event | None = None,
                 fail_after: int | None = None) -> None:
        super().__init__(side=sim.side, speed=0.0)
        self.sim, self.gate, self.fail_after = sim, gate, fail_after
        self.sent = 0
        self.closed = False

    async def stream(self):
        if self.gate is not None:
            await self.gate.wait()
        async for batch in super().stream():
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise DeviceError(f"{self.name}: lost (no reconnection in 30 s)")
            self.sent += 1
            yield batch

    async def close(self) -> None:
        self.closed = True


def shins() -> dict[str, ShankSim]:
    """A simulated shin per side: the left with a heel switch (and a lift in its third rep),
    the right with its clip rotated on the shin."""
    return {"left": ShankSim(side="left", seed=1, end_angle_deg=ENDS, heel_switch=True,
                             script=ShankSim().spec.with_(lifts_m=(0.0, 0.0, 0.02))),
            "right": ShankSim(side="right", seed=2, end_angle_deg=ENDS,
                              mount=Mount(clip_rotation_deg=(5.0, -10.0, 200.0)))}


def legs_of(sources: dict[str, Rig], **kw) -> list[Leg]:
    return [Leg(src, Pipeline(100.0, side=side), bound=True, **kw)
            for side, src in sources.items()]


async def test_two_shins_live_give_per_side_reps_raw_files_and_the_asymmetry(tmp_path):
    sims = shins()  # the truth is the streaming simulators' own: they know what they made
    stored: list[tuple[int, list]] = []
    legs = legs_of({s: Rig(sim) for s, sim in sims.items()},
                   sink=lambda r, e: stored.append((len(r), [x.kind for x in e])))
    for leg in legs:
        leg.raw = RawCsvWriter(tmp_path / f"raw-{leg.side}.csv")
    live = LiveSession(legs, SessionResults(rate_hz=100.0), duration_s=90.0)
    steps = []
    await live.run(steps.append)
    for leg in legs:
        assert leg.raw is not None
        leg.raw.close()
    res = live.results
    # each leg ran 90 s of its own device time, every sample through its own pipeline
    for leg in legs:
        assert leg.samples == 9000 and leg.ended and leg.error is None and leg.source.closed
        rec = read_raw_csv(tmp_path / f"raw-{leg.side}.csv")
        assert len(rec.t_s) == 9000 and set(rec.side) == {leg.side}  # bound to its shin
        assert rec.t_s[-1] - rec.t_s[0] == pytest.approx(89.99)
    assert set(live.calibrations) == {"left", "right"}
    assert {e.side for st in steps for e in st.events if e.kind == "calibrated"} == {
        "left", "right"}
    # the store saw every reading and every event, in the order the session numbered them
    assert sum(n for n, _ in stored) == sum(len(st.readings) for st in steps)
    assert sum(k.count("rep") for _, k in stored) == sum(
        1 for st in steps for e in st.events if e.kind == "rep")
    for side, sim in sims.items():
        want = sim.counted_reps(until_s=89.0)
        mine = [r for r in res.sides[side].reps if r.held]
        pairs = match(mine, want)
        assert len(mine) == len(want) >= 10 and all(f is not None for f, _ in pairs)
        assert all(abs(f.end_range_deg - t.end_angle_deg) < 0.5 for f, t in pairs)
        assert [f.valid for f, _ in pairs] == [t.valid for _, t in pairs]
    assert res.heel_source == {"left": "heel_switch", "right": "shank_imu"}
    best = {s: max(t.end_angle_deg for t in sims[s].counted_reps(until_s=89.0) if t.valid)
            for s in sims}
    assert res.asymmetry.diff_deg == pytest.approx(best["left"] - best["right"], abs=0.5)
    assert res.asymmetry.beyond_mdc


async def test_the_sensors_connect_one_after_the_other():
    """Two BLE scans or connects at once on one adapter can miss a sensor: the right one starts
    once the left one streams, or has failed."""
    sims = shins()
    gate = asyncio.Event()
    sources = {"left": Rig(sims["left"], gate=gate), "right": Rig(sims["right"])}
    live = LiveSession(legs_of(sources), SessionResults(rate_hz=100.0), duration_s=3.0)
    task = asyncio.ensure_future(live.run())
    for _ in range(20):
        await asyncio.sleep(0)
    assert sources["left"].sent == sources["right"].sent == 0  # the left one still connects
    gate.set()
    await asyncio.wait_for(task, 60)
    assert [leg.samples for leg in live.legs] == [300, 300]
    # a sensor that fails to connect does not hold the other one back
    sources = {"left": Rig(shins()["left"], fail_after=0), "right": Rig(shins()["right"])}
    live = LiveSession(legs_of(sources), SessionResults(rate_hz=100.0), duration_s=3.0,
                       keep_going=True)
    await asyncio.wait_for(live.run(), 60)
    left, right = live.legs
    assert left.error and left.samples == 0 and right.samples == 300 and right.error is None


async def test_one_leg_lost_leaves_the_other_streaming_or_ends_the_run():
    sims = shins()
    sources = {"left": Rig(sims["left"]), "right": Rig(sims["right"], fail_after=20)}
    live = LiveSession(legs_of(sources), SessionResults(rate_hz=100.0), duration_s=40.0,
                       keep_going=True)
    await asyncio.wait_for(live.run(), 120)
    left, right = live.legs
    assert right.error == f"{sources['right'].name}: lost (no reconnection in 30 s)"
    assert right.ended and sources["right"].closed and right.samples == 20 * 100
    assert left.error is None and left.samples == 4000  # the left went on to its end
    assert live.results.sides["left"].reps  # and its reps were counted
    # without keep_going (record): the loss ends the run, the other leg is stopped and closed
    sims = shins()
    sources = {"left": Rig(sims["left"]), "right": Rig(sims["right"], fail_after=5)}
    live = LiveSession(legs_of(sources), SessionResults(rate_hz=100.0), duration_s=600.0)
    with pytest.raises(DeviceError, match="lost"):
        await asyncio.wait_for(live.run(), 120)
    assert all(src.closed for src in sources.values())
    assert live.legs[0].samples < 60_000


async def test_a_full_disk_stops_only_that_legs_raw_csv(tmp_path):
    sims = shins()
    legs = legs_of({s: Rig(sim) for s, sim in sims.items()})
    paths = {leg.side: tmp_path / f"raw-{leg.side}.csv" for leg in legs}
    for leg in legs:
        leg.raw = RawCsvWriter(paths[leg.side])
    live = LiveSession(legs, SessionResults(rate_hz=100.0), duration_s=20.0, keep_going=True)
    left, right = legs
    for _ in range(2):  # a second of each leg written
        live.step(left, left.source.sim.generate(100))
        live.step(right, right.source.sim.generate(100))
    stopped = []
    with file_size_limit(paths["left"].stat().st_size + 100):
        stopped = [live.step(left, left.source.sim.generate(100)).raw_stopped]
    assert stopped[0].startswith(f"recording stopped: {paths['left']}: File too large")
    assert left.raw is None and right.raw is not None
    await live.run()
    right.raw.close()
    assert left.samples == right.samples == 2000  # the live part went on to the end
    assert len(read_raw_csv(paths["left"]).t_s) == 200  # every whole line before the limit
    assert len(read_raw_csv(paths["right"]).t_s) == 2000
    # without keep_going the disk's error is the run's
    leg = Leg(Rig(shins()["left"]), Pipeline(100.0), raw=RawCsvWriter("/dev/full"))
    with pytest.raises(OSError, match="No space left"):
        await LiveSession([leg], SessionResults(rate_hz=100.0), duration_s=5.0).run()


async def test_signals_stop_the_session_with_128_plus_the_signal_and_a_backstop():
    got: list[int] = []
    stop = SignalStop(got.append, signals=(signal.SIGTERM, signal.SIGHUP))
    stop.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.01)
    finally:
        loop = asyncio.get_running_loop()
        for sig in stop.signals:
            loop.remove_signal_handler(sig)
    assert got == [signal.SIGTERM] and stop.code == 143 == exit_code(signal.SIGTERM)
    # the backstop: called with the exit code when the stop has not ended the process
    stuck = threading.Event()
    codes: list[int] = []
    late = SignalStop(lambda sig: None, stuck=lambda code: (codes.append(code), stuck.set()),
                      stuck_s=0.01)
    late.on_signal(signal.SIGINT)
    assert await asyncio.to_thread(stuck.wait, 30) and codes == [130]


def test_guided_reps_go_to_the_session_and_the_store_from_the_guided_leg_only():
    from dorsimeter.exercises.runner import ProtocolRunner
    from tests.tui.test_screens import held_drives

    sims = shins()  # the guided leg's heel stays down (a lifted rep is not counted)
    sims["left"] = ShankSim(side="left", seed=3, mount=Mount(), end_angle_deg=ENDS)
    stored: list[str] = []
    legs = legs_of({s: Rig(sim) for s, sim in sims.items()},
                   sink=lambda r, e: stored.extend(x.kind for x in e))
    live = LiveSession(legs, SessionResults(rate_hz=100.0))
    live.guided = legs[0]
    live.guide(ProtocolRunner("reverse_lunge", rate_hz=100.0))
    assert live.results.guided
    guided, pipeline_reps, left_truth = [], 0, []
    for _ in range(62):  # 31 s of each leg, interleaved as two radios deliver them
        for leg in legs:
            batch = leg.source.sim.generate(50)
            if leg.side == "left":
                left_truth.append(batch.truth["tibia_angle_deg"])
            step = live.step(leg, batch)
            guided += [e.rep for e in step.guided]
            pipeline_reps += sum(e.kind == "rep" for e in step.events)
    counted = live.protocol.counted
    # the guided leg's held drives, as the truth holds them; none of the right leg's
    want = held_drives(np.concatenate(left_truth), hold_s=live.protocol.protocol.hold_s)
    assert len(counted) == want >= 2 and {c.side for c in counted} == {"left"}
    assert guided and all(r.side == "left" and r.t_end_s is not None for r in guided)
    assert len(guided) == len({id(r) for r in guided}) <= len(counted)  # each rep once
    # the store got them beside the pipeline's own rep events
    assert stored.count("rep") == pipeline_reps + len(guided)


async def test_a_leg_takes_the_rate_its_sensor_streams_at_once_it_streams():
    """A BLE family negotiates its rate at connecting (a DOT streams at 60 Hz without @RATE):
    the pipeline and the session results built before at the nominal 100 Hz take the stream's
    rate at the first batch, and give what they give when built at that rate."""

    async def run(pipeline_hz: float, results_hz: float) -> tuple[Leg, SessionResults]:
        rig = Rig(ShankSim(rate_hz=60.0, side="left", seed=1, end_angle_deg=ENDS))
        rig.rate_hz = 60.0  # what it streams at, known once connected
        leg = Leg(rig, Pipeline(pipeline_hz, side="left"), bound=True)
        live = LiveSession([leg], SessionResults(rate_hz=results_hz), duration_s=60.0)
        await live.run()
        return leg, live.results

    leg, res = await run(100.0, 100.0)
    assert leg.pipeline.rate_hz == 60.0 and res.rate_hz == 60.0 and leg.samples == 3600
    _, want = await run(60.0, 60.0)
    got = [(r.rep_no, r.end_range_deg, r.hold_s, r.valid) for r in res.sides["left"].reps]
    assert len(got) >= 5 and all(h > 1.0 for _, _, h, _ in got if h is not None)
    assert got == [(r.rep_no, r.end_range_deg, r.hold_s, r.valid)
                   for r in want.sides["left"].reps]
