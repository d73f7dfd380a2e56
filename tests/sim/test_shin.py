"""What real shins add: each effect has the size and shape it was drawn with, switches are
independent, the truth is the bone's inclination, and everything off is the old ideal rig."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dorsimeter.sim import EFFECTS, Mount, SensorErrors, ShankSim, ShinEffects
from dorsimeter.sim.motion import ScriptSpec
from dorsimeter.types import GRAVITY_M_S2

ROT = (10.0, -15.0, 130.0)
#: wall drives to exactly the end angle, no valgus: the truth at the hold is known in closed form
EXACT = ScriptSpec("mobilisation", reps=(4, 4), angle_sd_deg=0.0, valgus_mean_deg=0.0,
                   valgus_sd_deg=0.0)


def _sim(effects, **kw):
    kw.setdefault("errors", SensorErrors.none())
    return ShankSim(mount=Mount(clip_rotation_deg=ROT), effects=effects, **kw)


def _holds(sim, batch):
    """Sample mask of the scored reps' holds (end range reached, not yet returning)."""
    m = np.zeros(len(batch), bool)
    for r in sim.counted_reps():
        m |= (batch.t_s > r.t_hold_s + 0.05) & (batch.t_s < r.t_return_s - 0.05)
    return m


def test_every_effect_is_on_by_default_and_none_switches_all_off():
    assert ShinEffects().on == EFFECTS
    assert ShinEffects.none().on == ()
    assert ShinEffects.only("sway", "wobble").on == ("sway", "wobble")
    with pytest.raises(ValueError, match="sway"):
        ShinEffects.only("swagger")


def test_all_off_is_the_ideal_rig_hinge_ankle_still_athlete_rigid_clip_low_error_sensor():
    sim = ShankSim(mount=Mount(clip_rotation_deg=ROT), effects=ShinEffects.none(), seed=3)
    assert sim.errors == SensorErrors()  # the old default sensor
    b = ShankSim(mount=Mount(clip_rotation_deg=ROT), effects=ShinEffects.none(), seed=3,
                 errors=SensorErrors.none()).generate(3000)
    # orientation is heading · flexion about the foot's y · valgus about the tibia's x · clip,
    # with the truth angles being exactly those two rotations
    th, vl = np.radians(b.truth["tibia_angle_deg"]), np.radians(b.truth["knee_track_deg"])
    ref = (Rotation.from_euler("z", np.radians(20.0))
           * Rotation.from_euler("YX", np.column_stack([th, vl]))
           * Rotation.from_euler("xyz", ROT, degrees=True))
    got = Rotation.from_quat(b.truth["sensor_quat"], scalar_first=True)
    assert np.degrees((ref.inv() * got).magnitude()).max() < 1e-9
    # the earlier truth (up projected onto the tibia frame) differs by the second-order term
    np.testing.assert_allclose(np.tan(np.radians(b.truth["tibia_angle_tibia_frame_deg"])),
                               np.tan(th) / np.cos(vl), atol=1e-12)
    np.testing.assert_allclose(b.truth["knee_track_tibia_frame_deg"], b.truth["knee_track_deg"],
                               atol=1e-9)
    stance = b.t_s < 3.0
    assert np.abs(b.truth["tibia_angle_deg"][stance]).max() < 1e-12
    np.testing.assert_allclose(b.gyr_rad_s[stance], 0.0, atol=1e-12)
    assert b.truth["tibia_angle_deg"].max() > 15.0


def test_switching_one_effect_leaves_the_others_draws_alone():
    for seed in range(5):
        full, sway = ShinEffects().draw(seed), ShinEffects.only("sway").draw(seed)
        assert sway.sway_amplitude_deg == full.sway_amplitude_deg
        assert sway.axis_frontal_deg == 0.0 and full.axis_frontal_deg > 0.0
        assert ShinEffects.only("wobble").draw(seed).wobble_mm == full.wobble_mm
        # the site's gravity comes with the uncalibrated part, drawn after every other value
        assert ShinEffects.only("consumer_parts").draw(seed).gravity_m_s2 == full.gravity_m_s2
        assert sway.gravity_m_s2 == GRAVITY_M_S2 != full.gravity_m_s2


def test_parameters_are_drawn_per_athlete_within_the_published_ranges():
    fx = ShinEffects()
    drawn = [fx.draw(s) for s in range(40)]
    for p in drawn:
        assert all(0.1 <= a <= 0.6 for a in p.sway_amplitude_deg)
        assert np.all((p.sway_freq_hz >= 0.05) & (p.sway_freq_hz <= 0.6))
        np.testing.assert_allclose(np.sum(p.sway_weight**2, axis=1), 1.0)
        assert 0.0 <= p.axis_frontal_deg <= 15.0 and 0.0 <= p.axis_transverse_deg <= 10.0
        assert 0.05 <= p.rotation_deg_per_deg <= 0.25
        assert 12.0 <= p.wobble_freq_hz <= 25.0
        assert 0.3 <= p.wobble_mm <= 2.0 and 0.2 <= p.wobble_deg <= 1.5
        assert 9.780 <= p.gravity_m_s2 <= 9.832  # equator to pole
    # athletes differ: the draws spread over most of each range
    frontal = [p.axis_frontal_deg for p in drawn]
    assert max(frontal) - min(frontal) > 10.0
    assert drawn[0].summary() != drawn[1].summary()
    assert ShinEffects().draw(7).summary() == ShinEffects().draw(7).summary()  # fixed by seed


def test_consumer_unit_errors_are_within_the_datasheet_limits():
    mg, dps = 1e-3 * GRAVITY_M_S2, np.pi / 180
    units = [ShankSim(seed=s).errors for s in range(20)]
    off = np.array([u.acc_offset_m_s2 for u in units]) / mg
    bias = np.array([u.gyr_bias_rad_s for u in units]) / dps
    assert np.abs(off).max() <= 40.0 and np.abs(off).max() > 30.0
    assert np.abs(bias).max() <= 1.0 and np.abs(bias).max() > 0.8
    for u in units:
        assert np.abs(u.acc_scale).max() <= 0.01 and np.abs(u.gyr_scale).max() <= 0.01
        assert np.abs(u.acc_misalign_rad).max() <= 0.01
        assert u.gyr_bias_walk_rad_s_sqrt_s > 0.0
    # switched off, the sensor is the ideal rig's
    assert ShankSim(seed=1, effects=ShinEffects.only("sway")).errors == SensorErrors()


def test_forty_degrees_about_an_axis_tilted_12_deg_frontal_is_39_deg_of_inclination():
    fx = ShinEffects.only("oblique_axis").with_(axis_frontal_deg=(12.0, 12.0),
                                                axis_transverse_deg=(0.0, 0.0))
    sim = _sim(fx, script=EXACT, end_angle_deg={"left": 40.0, "right": 40.0})
    b = sim.generate(3000)
    hold = _holds(sim, b)
    assert hold.sum() > 100
    a, c = np.radians(12.0), np.cos(np.radians(40.0))
    lz = c + np.sin(a) ** 2 * (1 - c)  # the long axis's vertical component
    assert b.truth["tibia_angle_deg"][hold] == pytest.approx(39.0, abs=0.02)
    assert b.truth["tibia_inclination_total_deg"][hold] == pytest.approx(
        np.degrees(np.arccos(lz)), abs=1e-9)
    # the drive also moves the knee sideways, toward the midline (lateral end of the axis low)
    side = np.degrees(np.arcsin(np.sin(a) * np.cos(a) * (1 - c)))
    assert b.truth["knee_track_deg"][hold] == pytest.approx(side, abs=1e-9)
    assert side > 2.5


def test_the_tibia_turns_inward_with_dorsiflexion_and_its_inclination_does_not_change():
    fx = ShinEffects.only("tibial_rotation").with_(rotation_deg_per_deg=(0.2, 0.2))
    sim = _sim(fx, script=EXACT, end_angle_deg={"left": 38.0, "right": 38.0})
    b = sim.generate(3000)
    kin = sim.kinematics(b.t_s)
    th, vl = np.radians(b.truth["tibia_angle_deg"]), np.radians(b.truth["knee_track_deg"])
    base = (Rotation.from_euler("z", np.radians(20.0))
            * Rotation.from_euler("YX", np.column_stack([th, vl])))
    twist = (base.inv() * kin["tibia"]).as_rotvec()
    np.testing.assert_allclose(twist[:, :2], 0.0, atol=1e-12)  # a pure turn about the long axis
    np.testing.assert_allclose(twist[:, 2], -0.2 * th, atol=1e-12)  # left leg: inward is -z
    assert b.truth["tibia_angle_deg"][_holds(sim, b)] == pytest.approx(38.0, abs=1e-9)
    right = _sim(fx, script=EXACT, side="right", end_angle_deg={"left": 38.0, "right": 38.0})
    kr = right.kinematics(b.t_s)
    base_r = (Rotation.from_euler("z", np.radians(20.0))
              * Rotation.from_euler("YX", np.column_stack([th, -vl])))
    twist_r = (base_r.inv() * kr["tibia"]).as_rotvec()[:, 2]
    np.testing.assert_allclose(twist_r, 0.2 * th, atol=1e-12)


def test_sway_is_in_the_truth_with_the_drawn_amplitude_and_band():
    spec = ScriptSpec(stance_s=400.0)  # a long quiet stance
    for seed in (0, 1, 2):
        sim = _sim(ShinEffects.only("sway"), script=spec, seed=seed)
        b = sim.generate(30_000)  # 300 s at 100 Hz, all stance
        amp = sim.shin.sway_amplitude_deg
        for k, key in enumerate(("tibia_angle_deg", "knee_track_deg")):
            x = b.truth[key]
            rms = np.sqrt(np.mean(x**2))
            # amplitude = √2 · RMS (three sinusoids; a 300 s window averages their cross terms)
            assert rms * np.sqrt(2) == pytest.approx(amp[k], rel=0.15)
            assert np.abs(x).max() <= amp[k] * np.sqrt(3) + 1e-9
            spec_p = np.abs(np.fft.rfft(x)) ** 2
            f = np.fft.rfftfreq(len(x), 1 / sim.rate_hz)
            band = (f >= 0.045) & (f <= 0.65)
            assert spec_p[band].sum() > 0.95 * spec_p[1:].sum()
        # the stance is not zero, and the accelerometer sees it (it tilts with the shin)
        assert np.abs(b.truth["tibia_angle_deg"]).max() > 0.1
        assert np.abs(b.gyr_rad_s).max() > 1e-4


def test_the_clip_wobbles_after_a_jolt_at_the_drawn_frequency_and_size_then_settles():
    fx = ShinEffects.only("wobble")
    for seed in (0, 3):
        sim = _sim(fx, seed=seed, rate_hz=1000.0)
        p = sim.shin
        rep = sim.reps[0]  # the first (calibration) drive: the knee meets its end range
        t = np.arange(rep.t_hold_s - 0.2, rep.t_hold_s + 0.8, 1e-3)
        kin = sim.kinematics(t)
        rigid = kin["tibia"] * sim.mount.sensor_to_tibia
        tilt = np.degrees((rigid.inv() * kin["sensor"]).magnitude())
        before, after = t < rep.t_hold_s, t > rep.t_hold_s
        assert tilt[before].max() < 1e-9  # nothing before the jolt
        assert 0.45 * p.wobble_deg <= tilt.max() <= 1.01 * p.wobble_deg
        shift = kin["pos_m"] - (kin["ankle_m"] + kin["tibia"].apply(sim.mount.lever_arm_m))
        mm = 1e3 * np.linalg.norm(shift, axis=1)
        assert 0.45 * p.wobble_mm <= mm.max() <= 1.01 * p.wobble_mm
        # the oscillation is at the drawn frequency (spectral peak of one translation axis)
        j = np.argmax(np.abs(shift).max(axis=0))
        spec = np.abs(np.fft.rfft(shift[after, j], 16384))
        f = np.fft.rfftfreq(16384, 1e-3)
        assert f[np.argmax(spec)] == pytest.approx(p.wobble_freq_hz, rel=0.1)
        # and it has settled six rise times after the jolt
        late = t > rep.t_hold_s + 6 * p.wobble_rise_cycles / p.wobble_freq_hz
        assert late.any() and mm[late].max() < 1e-3
        # the gyro sees the wobble: it differs from the tibia's own rate
        dw = np.linalg.norm(kin["omega_w"] - kin["tibia_omega_w"], axis=1)
        assert dw[after].max() > np.radians(5.0)


@pytest.mark.parametrize("effect", EFFECTS[:4])
def test_each_effect_alone_keeps_the_physics_exact(effect):
    sim = _sim(ShinEffects.only(effect), seed=5, rate_hz=1000.0)
    b = sim.generate(12_000)
    q_true = Rotation.from_quat(b.truth["sensor_quat"], scalar_first=True)
    steps = Rotation.from_rotvec(0.5 * (b.gyr_rad_s[:-1] + b.gyr_rad_s[1:]) / sim.rate_hz)
    q, worst = q_true[0], 0.0
    for k in range(len(steps)):
        q = q * steps[k]
        if k % 50 == 0:
            worst = max(worst, (q.inv() * q_true[k + 1]).magnitude())
    assert np.degrees(worst) < 0.01
    h = 2e-5
    t = np.arange(3.5, 5.5, h)  # the first drive's end range and its jolt
    acc, _, kin = sim.ideal(t)
    acc_num = (kin["pos_m"][2:] - 2 * kin["pos_m"][1:-1] + kin["pos_m"][:-2]) / h**2
    expected = kin["sensor"][1:-1].inv().apply(acc_num + [0.0, 0.0, sim.shin.gravity_m_s2])
    np.testing.assert_allclose(acc[1:-1], expected, atol=2e-4)
