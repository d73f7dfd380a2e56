"""Data passed between pipeline stages: batches of IMU samples in, readings out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRAVITY_M_S2 = 9.81
SIDES = ("left", "right")


def repeated(value: object, n: int) -> np.ndarray:
    """An object array of ``n`` references to one value (a side, a heel source): equal to
    ``np.full(n, value, dtype=object)``, which makes a new str per element (ten times slower,
    and ~60 bytes a sample instead of 8)."""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


@dataclass
class ImuBatch:
    """One or more IMU samples as a source delivers them (a BLE notification, a serial frame).

    Times are device time in seconds, unwrapped. ``truth`` carries simulator ground truth
    (per-sample arrays keyed by name, e.g. ``tibia_angle_deg``) and is None for real sensors.
    ``heel_contact`` is the heel switch / FSR load (0 = heel off, 1 = loaded); ``foot_acc_m_s2``
    and ``foot_gyr_rad_s`` come from an optional second IMU on the foot.

    ``restart``: the device restarted (power cycle, reset) just before the first sample of
    this batch, so nothing before it tells the orientation; the pipeline starts its fusion
    afresh there. It marks the first sample only: a slice keeps it only when it starts at 0.
    """

    t_s: np.ndarray
    acc_m_s2: np.ndarray
    gyr_rad_s: np.ndarray
    quat: np.ndarray | None = None
    heel_contact: np.ndarray | None = None
    seq: np.ndarray | None = None
    side: str | None = None
    truth: dict[str, np.ndarray] | None = None
    foot_acc_m_s2: np.ndarray | None = None  # optional second IMU on the foot (same clock)
    foot_gyr_rad_s: np.ndarray | None = None
    restart: bool = False  # the device restarted just before the first sample

    def __post_init__(self) -> None:
        self.t_s = np.asarray(self.t_s, dtype=float).reshape(-1)
        self.acc_m_s2 = np.asarray(self.acc_m_s2, dtype=float).reshape(-1, 3)
        self.gyr_rad_s = np.asarray(self.gyr_rad_s, dtype=float).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.t_s)

    def slice(self, start: int, stop: int) -> ImuBatch:
        """The samples [start, stop) as a batch of their own."""

        def cut(a):
            return None if a is None else a[start:stop]

        truth = None if self.truth is None else {k: v[start:stop] for k, v in self.truth.items()}
        kept = range(len(self.t_s))[start:stop]
        return ImuBatch(
            self.t_s[start:stop], self.acc_m_s2[start:stop], self.gyr_rad_s[start:stop],
            cut(self.quat), cut(self.heel_contact), cut(self.seq), self.side, truth,
            cut(self.foot_acc_m_s2), cut(self.foot_gyr_rad_s),
            restart=self.restart and len(kept) > 0 and kept[0] == 0,
        )


@dataclass
class Readings:
    """Derived per-sample values from the pipeline, all arrays of one length.

    Besides the angles: ``heel_lift`` (True while the heel is judged off the floor),
    ``heel_source`` (which detector judged it: ``heel_switch``, ``foot_imu``, ``shank_imu`` or
    ``none``), ``rep`` (index of the rep the sample belongs to, -1 between reps) and
    ``rep_valid`` (False from the first heel lift of that rep on: the rep's last sample carries
    its verdict). Left empty by a producer, they are filled with "no lift, no rep" defaults.
    ``clip_moved_deg``: how far the clip has moved on the shin since calibration, judged at the
    last standing rest (NaN until one was judged; see ``detect.clipslip``).
    """

    t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    tibia_angle_deg: np.ndarray = field(default_factory=lambda: np.empty(0))
    knee_track_deg: np.ndarray = field(default_factory=lambda: np.empty(0))
    side: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    heel_lift: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    heel_source: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    rep: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    rep_valid: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    clip_moved_deg: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if n and len(self.heel_lift) != n:
            self.heel_lift = np.zeros(n, dtype=bool)
        if n and len(self.heel_source) != n:
            self.heel_source = repeated("none", n)
        if n and len(self.rep) != n:
            self.rep = np.full(n, -1, dtype=int)
        if n and len(self.rep_valid) != n:
            self.rep_valid = np.ones(n, dtype=bool)
        if n and len(self.clip_moved_deg) != n:
            self.clip_moved_deg = np.full(n, np.nan)

    def __len__(self) -> int:
        return len(self.t_s)

    @staticmethod
    def concat(parts: list[Readings]) -> Readings:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Readings()
        return Readings(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("t_s", "tibia_angle_deg", "knee_track_deg", "side",
                                    "heel_lift", "heel_source", "rep", "rep_valid",
                                    "clip_moved_deg")))
