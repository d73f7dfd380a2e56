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
