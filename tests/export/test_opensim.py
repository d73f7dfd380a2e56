"""OpenSim export: OpenSim's own reader (the ``opensim`` package) takes the orientations and
calibration files, and the tibia angles computed from its quaternions are the stored ones."""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.export.opensim import IMU_COLUMN, from_opensim
from dorsimeter.export.tables import tibia_angles_from_quaternion
from dorsimeter.store import Store
from tests.export.sessions import two_leg_session

osim = pytest.importorskip("opensim")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("opensim")
    home = tmp / "home"
    with Store.open(home) as store:
        sid = two_leg_session(store, tmp / "raw", seconds=30.0)
    out = tmp / "out"
    assert main(["export", str(sid), "--format", "opensim", "--out", str(out),
                 "--home", str(home)]) == 0
    store = Store.open(home)
    yield store, sid, out
    store.close()


def _read(path):
    """Through OpenSim: times, labels and (rows, 4) quaternions per column."""
    table = osim.TimeSeriesTableQuaternion(str(path))
    labels = list(table.getColumnLabels())
    times = np.array(list(table.getIndependentColumn()))
    cols = {k: np.array([[table.getRowAtIndex(i).getElt(0, j).get(c) for c in range(4)]
                         for i in range(table.getNumRows())]) for j, k in enumerate(labels)}
    return table, times, cols


def test_opensims_reader_takes_the_file_and_gives_the_stored_angles(exported):
    store, sid, out = exported
    table, times, cols = _read(out / f"dorsimeter-session-{sid}-orientations.sto")
    assert list(cols) == ["tibia_l_imu", "tibia_r_imu"]
    assert table.getTableMetaDataAsString("DataRate") == "100.000000"
    s = store.samples(sid)
    side_of = np.array(s.side)
    assert np.array_equal(times, np.unique(s.t_s))
    for side, label in IMU_COLUMN.items():
        m = side_of == side
        rows = np.searchsorted(times, s.t_s[m])
        q = cols[label][rows]
        assert not np.isnan(q).any()
        angle, track = tibia_angles_from_quaternion(from_opensim(q), side)
        assert np.max(np.abs(angle - s.tibia_angle_deg[m])) < 1e-9
        assert np.max(np.abs(track - s.knee_track_deg[m])) < 1e-9
        # OpenSim's own rotation: the tibia's long axis (body Y) leans forward (+X) by the angle
        for k in np.linspace(0, len(q) - 1, 25).astype(int):
            rot = osim.Rotation(osim.Quaternion(*q[k]))
            y = rot.multiply(osim.Vec3(0, 1, 0))
            lean = np.degrees(np.arctan2(y.get(0), y.get(1)))
            assert abs(lean - s.tibia_angle_deg[m][k]) < 1e-9
    # rows between a leg's own samples are slerped; none is missing inside both recordings
    both = (times >= max(s.t_s[side_of == k][0] for k in IMU_COLUMN)) & (
        times <= min(s.t_s[side_of == k][-1] for k in IMU_COLUMN))
    assert not any(np.isnan(c[both]).any() for c in cols.values())
    rotations = osim.OpenSenseUtilities.convertQuaternionsToRotations(table)
    assert rotations.getNumRows() == len(times)
    for path in out.iterdir():  # no user text in the files (the athlete's name is a formula)
        assert "HYPERLINK" not in path.read_text(encoding="utf-8")


def test_the_calibration_pose_is_the_stance_before_calibration(exported):
    store, sid, out = exported
    _, times, cols = _read(out / f"dorsimeter-session-{sid}-calibration.sto")
    assert len(times) == 1 and list(cols) == ["tibia_l_imu", "tibia_r_imu"]
    defined = {side: cal["t_defined_s"] for side, _, cal in store.calibrations(sid)}
    assert set(defined) == {"left", "right"}
    s = store.samples(sid)
    for side, label in IMU_COLUMN.items():
        m = np.array(s.side) == side
        angle, _ = tibia_angles_from_quaternion(from_opensim(cols[label]), side)
        before = s.tibia_angle_deg[m][s.t_s[m] < defined[side]]
        assert np.min(np.abs(before - angle[0])) < 1e-9  # a stored sample of the stance
        assert abs(angle[0]) < 1.0 < np.max(before)  # near vertical, unlike the drives
    assert times[0] <= min(defined.values())
