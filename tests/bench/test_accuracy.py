"""The accuracy table runs at a small size and its figures are the pipelines' real errors."""

import numpy as np

from bench import bench_accuracy as ba
from dorsimeter.sim import EFFECTS


def test_the_table_has_a_row_per_effect_all_together_scripts_rates_and_a_box_calibration():
    names = [r.name for r in ba.rows()]
    assert all(f"{e} alone" in names for e in EFFECTS)
    assert {"all effects (wall)", "all + box calibration", "all: reverse lunges",
            "all: band mobilisation", "all: 200 Hz", "all: 50 Hz"} <= set(names)
    by = {r.name: r for r in ba.rows()}
    assert by["all: 50 Hz"].rate_hz == 50.0 and by["all + box calibration"].box_cal
    assert by["sway alone"].effects.on == ("sway",)


def test_two_athletes_give_every_figure_and_the_targets_are_judged(capsys):
    res = ba.smoke(2, ("ideal rig (no effect)", "all effects (wall)"))
    assert [r.n_athletes for r in res] == [2, 2]
    for r in res:
        assert r.n_failed == 0
        for p in ba.PIPELINES:
            assert len(r.end_deg[p]) >= 2 * 4  # the scored reps of both athletes
            assert np.all(np.isfinite(r.end_deg[p])) and np.all(r.rmse_deg[p] > 0)
    ideal, real = res
    # the ideal rig is easy for every pipeline; real shins are not (for plain VQF either)
    assert ideal.stat("rmse", "VQF live", "median") < 0.3
    # the ideal rig's part samples as real parts do (interval means), so the live reading sits
    # at its timestamp and its whole-trial RMSE is plain VQF's or below (0.05 against 0.06°)
    assert ba.IDEAL_PART.interval_average
    assert ideal.stat("rmse", "live", "mean") <= ideal.stat("rmse", "VQF live", "mean")
    assert real.stat("end", "VQF live", "max") > ideal.stat("end", "VQF live", "max")
    checks = ba.targets(res)
    assert any("live end-range p95 (all effects, wall)" in line for line, _ in checks)
    d = ba.vqf_deltas(real)
    assert len(d) == len(ba.VQF_CHECKS) == 8
    assert d[1] == real.stat("end", "live", "p95") - real.stat("end", "VQF live", "p95")
    # the noise of a comparison: a paired bootstrap over the athletes brackets the difference
    lo, hi = real.delta_interval("live", "end", "mean")
    assert lo <= d[0] <= hi and lo < hi
    ba.print_table(res)
    ba.print_targets(res)
    out = capsys.readouterr().out
    assert "all effects (wall)" in out and "VQF offline" in out
    assert "Never worse than plain VQF" in out


def test_main_prints_the_table_and_the_targets_and_exits_0(capsys):
    assert ba.main(["--athletes", "1", "--rows", "sway alone"]) == 0
    out = capsys.readouterr().out
    assert "sway alone" in out and "Targets (issue 11" in out
    assert "Never worse than plain VQF" in out


def test_each_sensor_family_streams_at_its_rate_range_and_resolution():
    """Issue 15's families: a row each at the family's rate; the stream saturates at the
    family's ranges and comes at its resolution (integer milli-g for Polar's accelerometer,
    int16 counts for MetaMotion, float32 for DOT and Movesense)."""
    from dorsimeter.types import GRAVITY_M_S2, ImuBatch

    by = {r.device.name: r for r in ba.rows() if r.device is not None}
    assert set(by) == {"Movella DOT", "Polar Verity Sense", "Movesense", "MetaMotion"}
    assert {n: r.rate_hz for n, r in by.items()} == {
        "Movella DOT": 60.0, "Polar Verity Sense": 52.0, "Movesense": 104.0, "MetaMotion": 100.0}
    rng = np.random.default_rng(1)
    acc = rng.normal(0.0, 30.0, (200, 3))  # up to ~10 g: some beyond ±8 g
    gyr = rng.normal(0.0, 20.0, (200, 3))  # up to ~60 rad/s: beyond ±2000 °/s
    b = ImuBatch(np.arange(200) / 52.0, acc, gyr)
    polar = by["Polar Verity Sense"].device.stream(b)
    mg = polar.acc_m_s2 / (1e-3 * GRAVITY_M_S2)
    assert np.allclose(mg, np.round(mg)) and np.max(np.abs(mg)) == 8000.0
    assert np.max(np.abs(polar.gyr_rad_s)) == np.radians(2000.0)
    meta = by["MetaMotion"].device.stream(b).acc_m_s2 / (16.0 * GRAVITY_M_S2 / 32768)
    assert np.allclose(meta, np.round(meta))
    dot = by["Movella DOT"].device.stream(b)
    inside = np.abs(acc) < 16 * GRAVITY_M_S2
    assert np.array_equal(dot.acc_m_s2[inside], acc[inside].astype(np.float32))
    assert not np.array_equal(dot.acc_m_s2[inside], acc[inside])
