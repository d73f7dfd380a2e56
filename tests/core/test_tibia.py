"""Tibia angle, knee track and the inclinometer-equivalent (clip) reading."""

import numpy as np
import pytest

from dorsimeter.core.tibia import CLIP_AXES, clip_angles_deg, clip_axis_in_tibia
from dorsimeter.sim import Mount, SensorErrors, ShankSim


def test_clip_reading_is_the_tibia_angle_plus_the_clip_lean_in_the_sagittal_plane():
    theta = np.linspace(-10.0, 50.0, 61)
    for lean_deg in (-12.0, 0.0, 7.5):
        axis = np.array([np.sin(np.radians(lean_deg)), 0.0, np.cos(np.radians(lean_deg))])
        got = clip_angles_deg(theta, np.zeros_like(theta), "left", axis)
        np.testing.assert_allclose(got, theta + lean_deg, atol=1e-9)


@pytest.mark.parametrize("side", ["left", "right"])
def test_clip_reading_matches_the_simulated_clip_axis_with_valgus(side):
    """Truth from the simulator's rotations: the clip's axis in the world, projected onto the
    tibia's sagittal plane, against up; with knee track (valgus) present in the squat script."""
    mount = Mount(clip_rotation_deg=(4.0, 9.0, 130.0))
    sim = ShankSim(rate_hz=100.0, seed=3, side=side, script="squat", mount=mount,
                   errors=SensorErrors())
    b = sim.generate(3000)
    k = sim.kinematics(b.t_s)
    tibia = k["tibia"]
    c_world = k["sensor"].apply(CLIP_AXES["+z"])  # the clip's axis as placed, in the world
    c_t = tibia.inv().apply(c_world)  # in the tibia frame
    c_s = c_t * np.array([1.0, 0.0, 1.0])
    c_s /= np.linalg.norm(c_s, axis=1)[:, None]
    up_t = tibia.inv().apply([0.0, 0.0, 1.0])
    u_s = up_t * np.array([1.0, 0.0, 1.0])
    truth = np.degrees(np.arctan2(c_s[:, 0], c_s[:, 2]) - np.arctan2(u_s[:, 0], u_s[:, 2]))
    assert np.ptp(b.truth["knee_track_deg"]) > 5.0  # the squat really has valgus
    axis = clip_axis_in_tibia(CLIP_AXES["+z"], mount.sensor_to_tibia.as_matrix())
    got = clip_angles_deg(b.truth["tibia_angle_tibia_frame_deg"],
                          b.truth["knee_track_tibia_frame_deg"], side, axis)
    np.testing.assert_allclose(got, truth, atol=1e-6)
    lean = np.degrees(np.arctan2(axis[0], axis[2]))
    assert abs(lean - truth[0] + b.truth["tibia_angle_tibia_frame_deg"][0]) < 1e-6


def test_an_axis_across_the_shin_is_refused():
    m = np.eye(3)  # sensor axes = tibia axes
    for name in ("+x", "+y", "-y"):  # anterior, or the flexion axis
        with pytest.raises(ValueError, match="90° from the shin's long axis"):
            clip_axis_in_tibia(CLIP_AXES[name], m)
    assert clip_axis_in_tibia(CLIP_AXES["-z"], m)[2] == 1.0  # either way along the shin


@pytest.mark.parametrize("frontal_deg", [0.0, 12.0, -15.0])
def test_the_tibia_angle_is_the_inclination_not_the_rotation_about_an_oblique_axis(frontal_deg):
    """A drive of 40° about an ankle axis tilted in the frontal plane: the tibia angle is the
    long axis's inclination in the sagittal plane (what an inclinometer reads), 39.0° at a 12°
    tilt (issue 11), not the 40° of rotation about the axis; the calibration's y axis is the
    drive axis made perpendicular to the long axis, as the mounting calibration builds it."""
    from scipy.spatial.transform import Rotation

    from dorsimeter.core.tibia import tibia_angles_deg

    f = np.radians(frontal_deg)
    axis = np.array([0.0, np.cos(f), np.sin(f)])  # tibia frame = world at the stance
    z = np.array([0.0, 0.0, 1.0])
    y = axis - (axis @ z) * z
    y /= np.linalg.norm(y)
    m = np.array([np.cross(y, z), y, z])  # rows: tibia x, y, z (sensor = tibia at the stance)
    turn = Rotation.from_rotvec(np.radians(40.0) * axis)  # knee forward (x anterior)
    long_axis = turn.apply(z)
    truth = np.degrees(np.arctan2(long_axis[0], long_axis[2]))  # foot's sagittal plane
    up = turn.inv().apply(z)[None]  # world up in the (turned) sensor frame
    angle, _ = tibia_angles_deg(up, m, "left")
    assert abs(angle[0] - truth) < 1e-9
    if frontal_deg == 12.0:
        assert abs(angle[0] - 39.0) < 0.05
    if frontal_deg == 0.0:
        assert abs(angle[0] - 40.0) < 1e-9


def test_the_axial_coupling_turns_up_back_about_the_long_axis():
    """A tibia that turns about its long axis as it flexes turns the clip's frame with it: "up"
    read in that frame has turned by c·θ about z. With the coupling the reading is the one in
    the frame at zero flexion (the long axis's inclination); without it, the sagittal reading is
    off by θ(1 − cos cθ) and the knee track gets θ·sin cθ (4.3° at 40° and c = 0.15)."""
    from scipy.spatial.transform import Rotation

    from dorsimeter.core.tibia import tibia_angles_deg

    theta = np.radians(np.linspace(0.0, 45.0, 46))
    chi = np.radians(np.linspace(0.0, 3.0, 46))  # a valgus in step: knee track to keep
    # world up in the zero-flexion frame: flexion about y, valgus about x
    up0 = (Rotation.from_rotvec(np.column_stack([np.zeros(46), theta, np.zeros(46)]))
           * Rotation.from_rotvec(np.column_stack([chi, np.zeros(46), np.zeros(46)]))
           ).inv().apply([0.0, 0.0, 1.0])
    m = np.eye(3)
    for side in ("left", "right"):
        want = tibia_angles_deg(up0, m, side)
        for c in (0.15, -0.25):
            up = Rotation.from_rotvec(np.outer(c * theta, [0.0, 0.0, 1.0])).apply(up0)
            got = tibia_angles_deg(up, m, side, c)
            assert np.max(np.abs(got[0] - want[0])) < 0.01
            assert np.max(np.abs(got[1] - want[1])) < 0.01
            plain = tibia_angles_deg(up, m, side)
            assert np.max(np.abs(plain[1] - want[1])) > 3.0
