"""Shared fixtures: simulated sessions with ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from dorsimeter.sim import Mount, SensorErrors, ShankSim
from dorsimeter.types import ImuBatch


def simulate(seconds: float, rate_hz: float = 100.0, side: str = "left", seed: int = 0,
             clip_rotation_deg=(0.0, 0.0, 0.0), errors: SensorErrors | None = None) -> ImuBatch:
    """One continuous simulated wall-test stream, as a single batch with truth."""
    sim = ShankSim(rate_hz=rate_hz, side=side, seed=seed,
                   mount=Mount(clip_rotation_deg=tuple(clip_rotation_deg)),
                   errors=errors if errors is not None else SensorErrors())
    return sim.generate(int(round(seconds * rate_hz)))


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own data directory: nothing lands in the real user's history."""
    monkeypatch.setenv("DORSIMETER_HOME", str(tmp_path_factory.mktemp("dorsimeter-home")))


#: test folders whose simulator runs see its real defaults (every shin effect on)
REALISTIC_SHIN_DIRS = ("sim", "bench")


@pytest.fixture(autouse=True, scope="module")
def _ideal_rig_by_default(request):
    """Tests outside tests/sim and tests/bench were written for the ideal rig (a still athlete,
    a hinge ankle, a rigid clip, a low-error sensor): their simulators get no shin effects
    unless a test passes ``effects=`` itself. Set in the environment, so subprocesses follow;
    module-scoped, so module fixtures that simulate see it too."""
    from dorsimeter.sim.shin import EFFECTS_ENV

    parts = request.node.path.relative_to(request.config.rootpath).parts
    with pytest.MonkeyPatch.context() as mp:
        if not (len(parts) > 1 and parts[0] == "tests" and parts[1] in REALISTIC_SHIN_DIRS):
            mp.setenv(EFFECTS_ENV, "none")
        yield


@pytest.fixture
def wall_session() -> ImuBatch:
    return simulate(60.0)


def truth_at(batch: ImuBatch, t_s: np.ndarray, key: str = "tibia_angle_deg") -> np.ndarray:
    idx = np.searchsorted(batch.t_s, t_s)
    assert np.allclose(batch.t_s[idx], t_s)
    return batch.truth[key][idx]
