"""Tibia angle and knee track from the direction of up in the sensor frame and the mounting.

Tibia angle: inclination of the tibial long axis from vertical in the sagittal plane, positive
with the knee forward of the ankle. Knee track: the frontal-plane inclination, positive toward
the midline (valgus) for either leg. Both are projections of "up" onto the tibia frame's planes,
so they are independent of heading.
"""

from __future__ import annotations

import numpy as np


def tibia_angles_deg(
    up_sensor: np.ndarray, sensor_to_tibia: np.ndarray, side: str, axial_coupling: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(tibia_angle_deg, knee_track_deg) for (N,3) up vectors in the sensor frame.

    ``sensor_to_tibia`` is the 3×3 matrix whose rows are the tibia axes x (anterior),
    y (to the athlete's left), z (ankle to knee) expressed in the sensor frame, at zero
    flexion. ``axial_coupling`` c (the mounting calibration's ``axial_coupling``): the clip's
    frame turns with the bone about its long axis as it flexes, so "up" read in it has turned
    by β = c·θ about z; it is turned back before the projections (θ from the reading itself,
    refined once). Element-wise, so any batch split gives the same floats.
    """
    m = sensor_to_tibia  # element-wise products: bit-identical for any batch split (no BLAS)
    ux, uy, uz = (up_sensor[:, 0] * m[i, 0] + up_sensor[:, 1] * m[i, 1] + up_sensor[:, 2] * m[i, 2]
                  for i in range(3))
    if axial_coupling:
        x0, y0 = ux, uy
        for _ in range(2):
            beta = axial_coupling * np.arctan2(-ux, uz)
            c, s = np.cos(beta), np.sin(beta)
            ux, uy = x0 * c + y0 * s, y0 * c - x0 * s
    angle = np.degrees(np.arctan2(-ux, uz))
    lateral = np.degrees(np.arctan2(-uy, uz))  # tilt toward the athlete's left
    return angle, (lateral if side == "right" else -lateral)


#: sensor axes a clip's long side can run along, as the user names them
CLIP_AXES = {"+x": (1.0, 0.0, 0.0), "-x": (-1.0, 0.0, 0.0), "+y": (0.0, 1.0, 0.0),
             "-y": (0.0, -1.0, 0.0), "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0)}


def clip_axis_in_tibia(clip_axis_sensor, sensor_to_tibia: np.ndarray) -> np.ndarray:
    """The clip's long axis in the tibia's sagittal plane, as a unit (x, 0, z) pointing kneeward.

    An inclinometer laid on the shin reads the slope of the surface it sits on; its sagittal
    projection is what it measures. Raises ValueError for an axis more than 45° from the shin's
    long axis: that is not the axis along the clip."""
    c = np.asarray(sensor_to_tibia, dtype=float) @ np.asarray(clip_axis_sensor, dtype=float)
    c = c / np.linalg.norm(c)
    off_deg = float(np.degrees(np.arccos(min(1.0, abs(c[2])))))
    if off_deg > 45.0:
        raise ValueError(f"that sensor axis is {off_deg:.0f}° from the shin's long axis (expected "
                         "the axis along the clip's long side, within 45° of the shin)")
    c = np.array([c[0], 0.0, c[2]]) / np.hypot(c[0], c[2])
    return c if c[2] >= 0 else -c


def clip_angles_deg(tibia_angle_deg: np.ndarray, knee_track_deg: np.ndarray, side: str,
                    clip_axis_tibia: np.ndarray) -> np.ndarray:
    """Inclinometer-equivalent reading: the clip axis's inclination from vertical in the sagittal
    plane, positive with its upper end forward (what an inclinometer on the clip would read).

    Computed from the stance-calibrated readings alone (they fix "up" in the tibia frame), so it
    can be added to any readings file; ``clip_axis_tibia`` comes from :func:`clip_axis_in_tibia`.
    """
    lateral = np.asarray(knee_track_deg, dtype=float) * (1.0 if side == "right" else -1.0)
    up = np.column_stack([-np.tan(np.radians(tibia_angle_deg)), -np.tan(np.radians(lateral)),
                          np.ones(len(lateral))])
    a, _, b = clip_axis_tibia
    # the clip's frame in the sagittal plane: z' along the clip, x' = y × z' (anterior)
    return np.degrees(np.arctan2(-(up[:, 0] * b - up[:, 2] * a), up[:, 0] * a + up[:, 2] * b))
