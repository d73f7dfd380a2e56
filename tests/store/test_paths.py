"""Owner-only, atomic writes, and special files left as they are (``/dev/null`` as an output)."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from dorsimeter.paths import atomic_private, atomic_private_text, open_private_text


def test_an_atomic_write_is_owner_only_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    os.chmod(target, 0o644)
    with atomic_private_text(target) as f:
        f.write("new\r\n")
    assert target.read_bytes() == b"new\r\n"  # no newline translation
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_private(target, "wb") as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("writer", ["atomic", "open"])
def test_a_special_file_is_written_through_never_replaced_or_chmodded(tmp_path, writer):
    """Renaming over ``/dev/null`` as root replaced the device for the whole machine (and a
    chmod to 0600 would lock other users out of it): a special file is written through."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    if writer == "atomic":
        with atomic_private_text(fifo) as f:
            f.write("through")
    else:
        with open_private_text(fifo) as f:
            f.write("through")
    reader.join(timeout=30)
    assert got == [b"through"]
    st = fifo.stat()
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o666
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@pytest.mark.parametrize("where", ["itself", "a folder above it"])
def test_a_file_in_the_way_of_a_private_dir_is_one_line_naming_it(tmp_path, where):
    """Every caller (the data directory, sensors/, an export's folders, the allow-list's):
    it was a bare FileExistsError / NotADirectoryError (exit 1 as an OS error, or a traceback
    outside the CLI's handler)."""
    from dorsimeter.errors import DorsimeterError
    from dorsimeter.paths import private_dir

    blocker = tmp_path / "f"
    blocker.write_text("mine")
    target = blocker if where == "itself" else blocker / "a" / "b"
    with pytest.raises(DorsimeterError) as e:
        private_dir(target)
    msg = str(e.value)
    assert "\n" not in msg and "is a file, not a directory" in msg
    assert msg.startswith(str(target)) and (where == "itself" or f" {blocker} is a file" in msg)
    assert blocker.read_text() == "mine"


def test_sensor_cal_into_a_data_directory_whose_sensors_is_a_file_is_exit_2(tmp_path, capsys):
    from dorsimeter.cli import main
    from dorsimeter.io.rawcsv import RawCsvWriter
    from dorsimeter.sim import SensorErrors
    from dorsimeter.sim.errors import still_pose_recording
    from dorsimeter.types import ImuBatch

    t, acc, gyr = still_pose_recording(SensorErrors.realistic("bmi270", 100.0, seed=3), 100.0,
                                       seed=3, n_random=4, hold_s=2.0)
    poses = tmp_path / "poses.csv"
    with RawCsvWriter(poses) as w:
        w.write(ImuBatch(t, acc, gyr), "left")
    home = tmp_path / "home"
    home.mkdir()
    (home / "sensors").write_text("not a folder")
    assert main(["sensor-cal", str(poses), "--id", "box", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sensors: is a file, not a directory" in err
    assert (home / "sensors").read_text() == "not a folder"
