"""Tibia angle and knee track from the direction of up in the sensor frame and the mounting.

Tibia angle: inclination of the tibial long axis from vertical in the sagittal plane, positive
with the knee forward of the ankle. Knee track: the frontal-plane inclination, positive toward
the midline (valgus) for either leg. Both are projections of "up" onto the tibia frame's planes,
so they are independent of heading.
"""

from __future__ import annotations

import numpy as np


def tibia_angles_deg(
    up_sensor: np.ndarray, sensor_to_tibia: np.ndarray, side: str
) -> tuple[np.ndarray, np.ndarray]:
    """(tibia_angle_deg, knee_track_deg) for (N,3) up vectors in the sensor frame.

    ``sensor_to_tibia`` is the 3×3 matrix whose rows are the tibia axes x (anterior),
    y (to the athlete's left), z (ankle to knee) expressed in the sensor frame.
    """
    m = sensor_to_tibia  # element-wise products: bit-identical for any batch split (no BLAS)
    ux, uy, uz = (up_sensor[:, 0] * m[i, 0] + up_sensor[:, 1] * m[i, 1] + up_sensor[:, 2] * m[i, 2]
                  for i in range(3))
    angle = np.degrees(np.arctan2(-ux, uz))
    lateral = np.degrees(np.arctan2(-uy, uz))  # tilt toward the athlete's left
    return angle, (lateral if side == "right" else -lateral)
