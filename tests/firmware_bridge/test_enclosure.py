"""The enclosure (``hardware/enclosure.scad``) rendered headless by OpenSCAD (Debian
``openscad``, installed by ``scripts/system-deps.sh``) to STL, and the meshes checked with
trimesh: each part closed and in one piece, every component's documented envelope free of
material and closed in by shell and lid, every opening open (and the wall beside it solid).

The documented sizes here come from the parts' own documentation, independently of the .scad's
defaults, so a .scad edit that shrinks a pocket below a part fails the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import trimesh

SCAD = Path(__file__).resolve().parents[2] / "hardware" / "enclosure.scad"

# envelope (x along the shin, y across, z up), mm: at least these
DOCUMENTED_MM = {
    "xiao": (21.0 + 1.5, 17.8, 4.5),  # Seeed XIAO ESP32S3 wiki: 21 x 17.8 mm; USB-C overhang
    "imu": (25.6, 17.8, 4.6),  # Adafruit 4438 (LSM6DSOX) and 4754 (BNO085): 25.6 x 17.8 x 4.6
    "cell": (30.0, 20.0, 6.0),  # LiPo size code 602030: 6.0 mm x 20 mm x 30 mm
    "switch": (8.6, 4.4, 4.7),  # C&K OS102011MA1QN1 drawing: body 8.6 x 4.4, 4.7 high
    "button": (6.0, 6.0, 5.0),  # 6 x 6 mm tactile switch, 5 mm high
}
# for each opening, a sideways offset at which the same segment must hit the wall
BESIDE_MM = {"usb": (0, 8.5, 0), "fsr": (0, 3.0, 0), "switch": (5.0, 0, 0),
             "button": (4.0, 0, 0), "strap": (0, 3.0, 0)}
ECHO = re.compile(r'ECHO: "(box|hole) (\w+) \[([^\]]*)\] \[([^\]]*)\]"')


def _openscad(args: list[str], cwd: Path) -> str:
    exe = shutil.which("openscad")
    assert exe, "openscad missing: scripts/system-deps.sh installs it (Debian package)"
    p = subprocess.run([exe, *args, str(SCAD)], cwd=cwd, capture_output=True, text=True,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stderr


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    d = tmp_path_factory.mktemp("scad")
    meshes = {}
    for part in ("shell", "lid"):
        _openscad(["-o", str(d / f"{part}.stl"), "-D", f'part="{part}"'], d)
        meshes[part] = trimesh.load(d / f"{part}.stl", force="mesh")
    log = _openscad(["-o", str(d / "layout.stl"), "-D", 'part="layout"'], d)
    boxes, holes = {}, []
    for kind, name, a, b in ECHO.findall(log):
        va, vb = (np.array([float(x) for x in v.split(",")]) for v in (a, b))
        if kind == "box":
            boxes[name] = (va, vb)
        else:
            holes.append((name, va, vb))
    return meshes, boxes, holes


def _grid(p: np.ndarray, size: np.ndarray, n: int = 6) -> np.ndarray:
    """Points filling a box (inset 0.05 mm from its faces)."""
    axes = [np.linspace(p[k] + 0.05, p[k] + size[k] - 0.05, n) for k in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def test_shell_and_lid_are_closed_single_solids(rendered):
    meshes, _, _ = rendered
    for part, m in meshes.items():
        assert m.is_watertight and m.is_volume, part
        assert len(m.split(only_watertight=False)) == 1, part
        assert m.volume > 0
    size = meshes["shell"].extents
    assert (size < [70, 50, 30]).all()  # thumb-sized, as the docs describe it


def test_every_part_fits_in_the_cavity_at_its_documented_size(rendered):
    meshes, boxes, _ = rendered
    assert set(boxes) == set(DOCUMENTED_MM)
    solid = trimesh.util.concatenate([meshes["shell"], meshes["lid"]])
    hull = solid.convex_hull
    for name, (p, size) in boxes.items():
        assert (size >= np.array(DOCUMENTED_MM[name]) - 1e-9).all(), (name, size)
        pts = _grid(p, size)
        assert not meshes["shell"].contains(pts).any(), f"{name} runs into the shell"
        assert not meshes["lid"].contains(pts).any(), f"{name} runs into the lid"
        assert hull.contains(pts).all(), f"{name} sticks out of the enclosure"
    # and no two parts share space
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (pa, sa), (pb, sb) = boxes[a], boxes[b]
            overlap = np.minimum(pa + sa, pb + sb) - np.maximum(pa, pb)
            assert (overlap <= 1e-9).any(), (a, b)


def test_every_opening_is_open_and_its_wall_is_solid(rendered):
    meshes, _, holes = rendered
    assert sorted(h[0] for h in holes) == ["button", "fsr", "strap", "strap", "switch", "usb"]
    for name, a, b in holes:
        seg = a + np.linspace(0, 1, 40)[:, None] * (b - a)
        for m in meshes.values():
            assert not m.contains(seg).any(), f"the {name} opening is blocked"
        beside = seg + np.array(BESIDE_MM[name])
        hits = np.zeros(len(seg), bool)
        for m in meshes.values():
            hits |= m.contains(beside)
        assert hits.any(), f"no wall beside the {name} opening"
