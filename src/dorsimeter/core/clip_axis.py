"""The inclinometer-equivalent reading: which sensor axis runs up the clip, and what it reads.

An inclinometer laid on the clip reads the inclination of the clip's long side in the sagittal
plane. The clip's long side is one of the sensor's axes, named with its sign as the direction
pointing **up the shin** (toward the knee): ``+x`` for our node mounted as in
``hardware_docs/wiring.md``. The mounting calibration gives every sensor axis in the tibia frame,
so the axis is checked against the shin (within :data:`LIMIT_DEG` of the tibia's long axis,
pointing kneeward) or found automatically (``auto``: the signed axis nearest the shin).

Pure: numpy in, numbers out (the readings, the reps' scores on the clip reading); ``cli.analyze``
prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dorsimeter.core.tibia import CLIP_AXES, clip_angles_deg, clip_axis_in_tibia

#: the documented limit: the clip axis must be within this of the tibia's long axis (kneeward)
LIMIT_DEG = 45.0
AUTO = "auto"


def parse_clip_axis(text: str) -> str:
    """``auto`` or a signed sensor axis as the user types it (``+x``, ``-z``, ``x`` = ``+x``,
    any case); ValueError in our words otherwise."""
    t = str(text).strip().lower()
    if t == AUTO:
        return AUTO
    if len(t) == 1:
        t = "+" + t
    if t not in CLIP_AXES:
        raise ValueError(f"'{text}' is not a sensor axis: expected auto, or the axis pointing up "
                         "the shin along the clip: +x, -x, +y, -y, +z or -z")
    return t


def axis_offsets_deg(sensor_to_tibia: np.ndarray) -> dict[str, float]:
    """Each signed sensor axis's angle (0–180°) from the tibia's long axis pointing to the knee."""
    m = np.asarray(sensor_to_tibia, dtype=float)
    out = {}
    for name, vec in CLIP_AXES.items():
        c = m @ np.asarray(vec)
        out[name] = float(np.degrees(np.arccos(np.clip(c[2] / np.linalg.norm(c), -1.0, 1.0))))
    return out


def nearest_clip_axis(sensor_to_tibia: np.ndarray) -> tuple[str, float]:
    """The signed sensor axis nearest the shin's long axis (pointing to the knee), and its angle
    from it: the clip's long side, for a clip whose sensor sits square in it."""
    offsets = axis_offsets_deg(sensor_to_tibia)
    name = min(offsets, key=offsets.__getitem__)
    return name, offsets[name]


def clip_axis_tibia(name: str, sensor_to_tibia: np.ndarray) -> tuple[str, np.ndarray]:
    """(axis name, its unit sagittal direction in the tibia frame) for ``name`` or ``auto``.

    ValueError in our words, naming the axis that does run up the shin, when the named one is
    beyond :data:`LIMIT_DEG` from it (the opposite sign points down the shin: refused too)."""
    if name == AUTO:
        name, off = nearest_clip_axis(sensor_to_tibia)
    else:
        off = axis_offsets_deg(sensor_to_tibia)[name]
    if off > LIMIT_DEG:
        best, best_off = nearest_clip_axis(sensor_to_tibia)
        where = "points down the shin" if off >= 180.0 - LIMIT_DEG else "runs across the shin"
        hint = (f"the axis up the shin is {best} ({best_off:.0f}° from it): use --clip-axis "
                f"{best} or auto" if best_off <= LIMIT_DEG else
                f"no sensor axis is within {LIMIT_DEG:.0f}° of the shin (nearest {best}, "
                f"{best_off:.0f}°): the clip sits askew")
        raise ValueError(f"{name} {where} ({off:.0f}° from the shin's long axis, limit "
                         f"{LIMIT_DEG:.0f}°); {hint}")
    return name, clip_axis_in_tibia(CLIP_AXES[name], sensor_to_tibia)


@dataclass
class ClipReading:
    """The inclinometer-equivalent reading of a readings table, per sample, and per side the
    axis used and the clip's lean from the tibia's long axis (positive: its upper end forward)."""

    angle_deg: np.ndarray
    axis: dict[str, str]
    lean_deg: dict[str, float]


def clip_readings(readings, matrices: dict[str, np.ndarray], name: str) -> ClipReading:
    """Per-sample clip angles for ``readings`` with each side's ``sensor_to_tibia`` matrix
    (``MountingCalibration.matrix``). ValueError names the side whose axis is refused."""
    out = np.full(len(readings), np.nan)
    axes, lean = {}, {}
    for side in np.unique(readings.side):
        side = str(side)
        try:
            axes[side], axis = clip_axis_tibia(name, matrices[side])
        except ValueError as e:
            raise ValueError(f"{side} leg: {e}") from None
        sel = readings.side == side
        out[sel] = clip_angles_deg(readings.tibia_angle_deg[sel], readings.knee_track_deg[sel],
                                   side, axis)
        lean[side] = float(np.degrees(np.arctan2(axis[0], axis[2])))
    return ClipReading(out, axes, lean)


def clip_rep_score_deg(rep, t_s: np.ndarray, clip_deg: np.ndarray,
                       tibia_deg: np.ndarray) -> float:
    """One scored rep on the clip reading (one side's samples ``t_s``, clip and tibia angles
    covering the rep): the median over the hold its tibia score came from, else the clip
    reading at the rep's highest tibia sample."""
    hold = next((h for h in rep.holds if h[2] == rep.end_range_deg), None)
    if hold is None:  # scored on its peak: the clip reading at the rep's highest sample
        w = (t_s >= rep.t_start_s) & (t_s <= (rep.t_end_s if rep.t_end_s is not None
                                              else t_s[-1]))
        return float(clip_deg[w][np.argmax(tibia_deg[w])])
    return float(np.median(clip_deg[(t_s >= hold[0]) & (t_s <= hold[1])]))


def clip_scores_deg(readings, clip_deg: np.ndarray, results, side: str) -> list[float]:
    """The scored reps of ``side`` on the clip reading: the same reps and the same hold windows
    as their tibia-angle scores (the clip reading's offset would upset rep detection)."""
    sel = readings.side == side
    t, a, tib = readings.t_s[sel], clip_deg[sel], readings.tibia_angle_deg[sel]
    return [clip_rep_score_deg(rep, t, a, tib)
            for rep in (results.sides[side].scored if side in results.sides else [])]


@dataclass(frozen=True)
class ClipSideScore:
    """One side's scores on the inclinometer-equivalent reading."""

    side: str
    axis: str  # the sensor axis the clip reading follows
    lean_deg: float  # the clip's lean from the tibia's long axis (positive: upper end forward)
    max_deg: float  # the largest clip angle of the side's readings
    scores_deg: tuple[float, ...]  # its scored reps on the clip reading, best first
    best_of: int  # how many best scores the session's mean takes

    @property
    def best_deg(self) -> float | None:
        return self.scores_deg[0] if self.scores_deg else None

    @property
    def mean_best_deg(self) -> float | None:
        """Mean of the best ``best_of`` scores (of what there are)."""
        return float(np.mean(self.scores_deg[:self.best_of])) if self.scores_deg else None

    @property
    def n_best(self) -> int:
        return min(self.best_of, len(self.scores_deg))


def clip_side_scores(readings, clip: ClipReading, results, best_of: int) -> list[ClipSideScore]:
    """Per side (sorted), the clip reading's scores: the session's scored reps on the clip
    reading (``clip_scores_deg``), its best and the mean of the best ``best_of``, beside the
    axis, the clip's lean and the largest clip angle."""
    out = []
    for side in sorted(clip.axis):
        scores = sorted(clip_scores_deg(readings, clip.angle_deg, results, side), reverse=True)
        out.append(ClipSideScore(side, clip.axis[side], clip.lean_deg[side],
                                 float(np.max(clip.angle_deg[readings.side == side])),
                                 tuple(scores), best_of))
    return out
