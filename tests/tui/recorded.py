"""Recorded pipeline output for the snapshot tests.

The snapshots check the layout, so they must not change whenever fusion or a detector is
retuned. The real ``Pipeline`` was run once over the scripted simulated sessions below and its
output (readings, events, calibration progress per batch) recorded in ``tests/tui/data``;
``RecordedPipeline`` plays it back batch for batch behind the real app and session.
Re-record after a deliberate change upstream (all sessions, or the ones named), then update
the snapshots:

    .venv/bin/python -m tests.tui.recorded [NAME ...]
    .venv/bin/pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dorsimeter.core.mounting import CalibrationProgress
from dorsimeter.detect.bank import Detectors
from dorsimeter.detect.reps import RepRecord
from dorsimeter.pipeline import Pipeline
from dorsimeter.pipeline.pipeline import Event
from dorsimeter.types import Readings
from tests.tui.rig import sim_batches

DATA = Path(__file__).with_name("data")
COLUMNS = ("t_s", "tibia_angle_deg", "knee_track_deg", "side", "heel_lift", "heel_source", "rep",
           "rep_valid")

SESSIONS = {
    # left leg, then the right; ends 0.6 s after a heel lift on the right
    "both_legs": dict(seconds=39.6, then_right_s=28.2,
                      end_angle_deg={"left": 38.0, "right": 28.0}, heel_off=[(66.9, 67.2)]),
    # one leg, holding the end range of the fourth drive
    "one_leg": dict(seconds=15.5),
    # the first 11 s: stance, calibration drives, calibrated
    "calibration": dict(seconds=11.0),
    # two sensors, one per shin (two athletes' legs of the same session: seeds 3 and 4), the
    # left holding its end range at the end, the right 0.8 s after a heel lift
    "two_left": dict(seconds=22.4, side="left", seed=3,
                     end_angle_deg={"left": 38.0, "right": 28.0}),
    "two_right": dict(seconds=22.4, side="right", seed=4,
                      end_angle_deg={"left": 38.0, "right": 28.0}, heel_off=[(21.0, 21.6)]),
}


def batches_of(name: str):
    return sim_batches(**SESSIONS[name])


def record(name: str) -> None:
    """Run the real pipeline over session ``name`` and write what it returned."""
    batches, _ = batches_of(name)
    pipe = Pipeline(100.0)
    cols: dict[str, list] = {c: [] for c in COLUMNS}
    per_batch = []
    last: dict = {}
    for b in batches:
        r, events = pipe.push(b)
        for c in COLUMNS:
            cols[c].append(np.asarray(getattr(r, c)))
        now = {"progress": asdict(pipe.progress), "side": pipe.side,
               "calibrated": {s: c.summary() for s, c in pipe.calibrations.items()}}
        entry = {"n": len(r), **{k: v for k, v in now.items() if last.get(k) != v}}
        last = now
        events = [{"kind": e.kind, "t_s": e.t_s, "side": e.side, "message": e.message,
                   "rep": None if getattr(e, "rep", None) is None else _rep_fields(e.rep)}
                  for e in events]
        if events:
            entry["events"] = events
        per_batch.append(entry)
    DATA.mkdir(exist_ok=True)
    arrays = {c: np.concatenate(v) for c, v in cols.items()}
    for c in ("t_s", "tibia_angle_deg", "knee_track_deg"):  # plenty for a screen
        arrays[c] = arrays[c].astype(np.float32)
    arrays["rep"] = arrays["rep"].astype(np.int16)
    arrays["side"] = arrays["side"].astype(str)
    arrays["heel_source"] = arrays["heel_source"].astype(str)
    np.savez_compressed(DATA / f"{name}.npz", **arrays)
    (DATA / f"{name}.json").write_text(json.dumps(per_batch, separators=(",", ":")) + "\n")


def _rep_fields(rep: RepRecord) -> dict:
    """A rep as JSON: every field the session reads (infinite peaks as None)."""
    out = {}
    for f in fields(RepRecord):
        v = getattr(rep, f.name)
        if isinstance(v, float) and not np.isfinite(v):
            v = None
        elif isinstance(v, np.bool_ | bool):
            v = bool(v)
        out[f.name] = v
    return out


def _rep_of(d: dict) -> RepRecord:
    d = {k: (-np.inf if v is None and k in ("peak_deg", "peak_valgus_deg") else v)
         for k, v in d.items()}
    d["holds"] = [tuple(h) for h in d.get("holds") or []]
    return RepRecord(**d)


class RecordedPipeline:
    """Plays back recorded pipeline output, one recorded push per pushed batch."""

    def __init__(self, name: str, rate_hz: float = 100.0) -> None:
        z = np.load(DATA / f"{name}.npz")
        self.cols = {c: z[c] for c in COLUMNS}
        for c in ("t_s", "tibia_angle_deg", "knee_track_deg", "rep"):
            self.cols[c] = self.cols[c].astype(float if c != "rep" else int)
        self.cols["side"] = self.cols["side"].astype(object)
        self.cols["heel_source"] = self.cols["heel_source"].astype(object)
        self.per_batch = json.loads((DATA / f"{name}.json").read_text())
        self.rate_hz = rate_hz
        self._i = 0
        self._k = 0
        self.side = self.per_batch[0]["side"]
        self.progress = CalibrationProgress("stance")
        self.calibrations: dict = {}
        self.sensor_cal = None  # no box calibration in the recordings
        # the live session sets the guided hold on the pipeline's rep tracker (the recordings'
        # reps are played back, so it only has to be there)
        self.detectors = Detectors(rate_hz)

    def push(self, batch):
        rec = self.per_batch[self._i]
        self._i += 1
        n = rec["n"]
        r = Readings(*(self.cols[c][self._k:self._k + n] for c in COLUMNS))
        self._k += n
        self.side = rec.get("side", self.side)
        if "progress" in rec:
            self.progress = CalibrationProgress(**rec["progress"])
        if "calibrated" in rec:
            self.calibrations = {s: SimpleNamespace(summary=lambda m=m: m)
                                 for s, m in rec["calibrated"].items()}
        events = [Event(**{**e, "rep": None if e["rep"] is None else _rep_of(e["rep"])})
                  for e in rec.get("events", [])]
        return r, events

    @property
    def status(self) -> str:
        return self.progress.text

    def set_side(self, side: str) -> None:
        self.side = side

    def recalibrate(self) -> None:
        """Playback: the recorded calibration follows regardless."""


if __name__ == "__main__":
    for name in sys.argv[1:] or SESSIONS:
        record(name)
        print(f"recorded {name}")
