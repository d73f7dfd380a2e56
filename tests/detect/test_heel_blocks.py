"""The shank heel detector's fast paths against the block-by-block reference they replaced.

``ReferenceShankLift`` is the detector as it was before its speed-ups (sessions 7 and 11):
every residual built with ``np.column_stack`` and row sums, every block of the error model
filtered, judged and fitted on its own, all six exit conditions of the lift states evaluated.
The detector now guesses runs of blocks (``ShankLiftDetector._run``), takes whole blocks' sums
with stacked matmuls and writes its features in place; these tests require the same velocity,
flags and error model to the last bit, for batches of whole blocks (the guessing path, right and
wrong guesses), live-sized batches, and gaps.
"""

import numpy as np
import pytest
from scipy.signal import lfilter, lfilter_zi, sosfilt, sosfilt_zi

from dorsimeter.detect import bank
from dorsimeter.detect.heel import LOWPASS_WARM_S, ShankLiftDetector, _cross
from dorsimeter.pipeline import Pipeline
from dorsimeter.sim import Mount, ShankSim
from dorsimeter.types import GRAVITY_M_S2

ROT = (10.0, -15.0, 130.0)


def _quadratic_features(up: np.ndarray) -> np.ndarray:
    x, y, z = up.T
    return np.column_stack([x, y, z, x * x, y * y, z * z, x * y, x * z, y * z])


def _lever_features(w: np.ndarray, dw: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The detector's lever-arm features as they were before session 11 wrote them column by
    column (verbatim)."""
    wu = (w * up).sum(axis=1)[:, None]
    ww = (w * w).sum(axis=1)[:, None]
    return _cross(up, dw) + wu * w - ww * up


class ReferenceShankLift(ShankLiftDetector):
    """The detector's residual, block loop, fit and lift states as they were (verbatim)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._blk_ok: list[np.ndarray] = []

    def restart(self, blind: bool = True, settle_s: float = 0.0) -> None:
        super().restart(blind, settle_s)
        self._blk_ok = []

    def residual_vertical(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Vertical specific force not explained by rotation about the ankle, minus g, in the
        bone's band; with the error model's features (quadratic in "up", lever arm), the
        filtered rate and each sample's weight (``wobble_half_weight_power``)."""
        if self._hp_zi is None:  # steady state at the first sample: no step into the filter
            self._hp_zi = sosfilt_zi(self._hp)[:, :, None] * acc[0][None, None, :]
        hf, self._hp_zi = sosfilt(self._hp, acc, axis=0, zi=self._hp_zi)
        x = np.column_stack([gyr - self.bias, ((acc - self.acc_offset) * up).sum(axis=1), up,
                             (hf * hf).sum(axis=1)])
        if self._lp_zi is None:
            self._lp_zi = sosfilt_zi(self._lp)[:, :, None] * x[0][None, None, :]
        x, self._lp_zi = sosfilt(self._lp, x, axis=0, zi=self._lp_zi)
        w, au, u = x[:, :3], x[:, 3], x[:, 4:7]
        weight = self._p_half / (self._p_half + np.maximum(x[:, 7], 0.0))
        prev = w[:1] if self._prev_w is None else self._prev_w
        dw = np.diff(np.vstack([prev, w]), axis=0) * self.rate_hz
        self._prev_w = w[-1:].copy()
        lever = _lever_features(w, dw, u)
        y = au - lever @ self.r - GRAVITY_M_S2
        return y, np.column_stack([_quadratic_features(u), lever]), w, weight

    def _update(self, gyr: np.ndarray, acc: np.ndarray, up: np.ndarray, rest: np.ndarray,
                known: np.ndarray) -> np.ndarray:
        n = len(gyr)
        self.watching = np.ones(n, dtype=bool)
        if n == 0:
            self.velocity_m_s = np.empty(0)
            return np.empty(0, dtype=bool)
        if self._blind:  # after a long gap: nothing flagged or learnt until settled, at rest
            wait = min(n, self._blind_n)
            self._blind_n -= wait
            later = rest[wait:]
            k = wait + (int(np.argmax(later)) if later.any() else len(later))
            self._n += k
            if k == n:
                self.velocity_m_s = np.zeros(n)
                self.watching = np.zeros(n, dtype=bool)
                return np.zeros(n, dtype=bool)
            self.restart(blind=False)
            self.gaps -= 1  # the same gap
            self._warm_n = int(round(LOWPASS_WARM_S * self.rate_hz))  # session 7's warm-up
            flags = np.concatenate([np.zeros(k, dtype=bool),
                                    self._update(gyr[k:], acc[k:], up[k:], rest[k:],
                                                 known[k:])])
            self.velocity_m_s = np.concatenate([np.zeros(k), self.velocity_m_s])
            self.watching = np.concatenate([np.zeros(k, dtype=bool), self.watching])
            return flags
        if self._warm_n:
            return self._warm_up(gyr, acc, up, rest, known)
        y, f, _, weight = self.residual_vertical(gyr, acc, up)
        n = len(y)
        flags = np.empty(n, dtype=bool)
        vel = np.empty(n)
        i = 0
        while i < n:  # chunks end on global block boundaries: the fit changes only there
            j = min(n, i + self.block_n - self._n % self.block_n)
            e = (y[i:j] - f[i:j] @ self._w) * weight[i:j]
            if self._n == 0:  # the very first sample: no model yet, start at its residual
                self._bp_zi = lfilter_zi(*self._bp) * e[0]
            bp, self._bp_zi = lfilter(*self._bp, e, zi=self._bp_zi)
            v, self._int_zi = lfilter(*self._int, bp, zi=self._int_zi)
            vel[i:j] = v
            flags[i:j] = self._states(v, rest[i:j]) & ~known[i:j]
            if known[j - 1]:  # heel down by protocol: no lift carried out of it
                self._state, self._lift_n, self._quiet_n = 0, 0, 0
            self._blk_f.append(f[i:j])
            self._blk_y.append(y[i:j])
            self._blk_ok.append(~flags[i:j])
            self._blk_wt.append(weight[i:j])
            self._n += j - i
            if self._n % self.block_n == 0:
                self._refit()
            i = j
        self.velocity_m_s = vel
        return flags

    def _refit(self) -> None:
        f, y = np.concatenate(self._blk_f), np.concatenate(self._blk_y)
        ok, wt = np.concatenate(self._blk_ok), np.concatenate(self._blk_wt)
        self._blk_f, self._blk_y, self._blk_ok, self._blk_wt = [], [], [], []
        if not ok.all():
            return  # a lift in this block: keep it out of the error model
        fw = f * wt[:, None]  # weighted least squares: each sample by its noise (``weight``)
        self._A = self._decay * self._A + fw.T @ f
        self._c = self._decay * self._c + fw.T @ y
        self._w = np.linalg.solve(self._A + self._ridge, self._c)


    def _states(self, v: np.ndarray, at_rest: np.ndarray) -> np.ndarray:
        """Lift state machine over the velocity; a loop over threshold crossings only.

        The band-pass makes every step of the ankle's height a pair of lobes: the rise is
        ``+`` then ``−`` (undershoot), the return ``−`` then ``+``. States: 0 heel down;
        1 rising (``v > v_on``); 2 undershoot; 3 heel held up; 4 coming down; 5 overshoot;
        then down again, with ``refractory_n`` samples before a new lift can start (the filters
        ring). A lift also ends after ``max_lift_s``, or when the shin is back at rest
        (``at_rest``) once the rise has settled.
        """
        out = np.empty(len(v), dtype=bool)
        on, i, n = self.v_on_m_s, 0, len(v)
        while i < n:
            st = self._state
            if st == 0:
                start = min(n, i + self._quiet_n)
                self._quiet_n -= start - i
                out[i:start] = False
                i = start
                if i >= n:
                    break
            seg = v[i:]
            cond = {0: seg > on, 1: seg < -0.5 * on, 2: seg > -0.2 * on,
                    3: (seg < -on) | at_rest[i:], 4: seg > 0.2 * on, 5: seg < 0.2 * on}[st]
            if st:
                left = max(0, self.max_lift_n - self._lift_n)
                cond = cond.copy()
                if left < len(cond):
                    cond[left] = True
            j = i + int(np.argmax(cond)) if cond.any() else n
            out[i:j] = st != 0
            if st:
                self._lift_n += j - i
            if j < n:
                if st == 0:
                    self._state, self._lift_n = 1, 0
                elif st == 5 or self._lift_n >= self.max_lift_n or (st == 3 and at_rest[j]):
                    self._state, self._quiet_n = 0, self.refractory_n
                else:
                    self._state = st + 1
                out[j] = self._state != 0
                if self._state:
                    self._lift_n += 1
                j += 1
            i = j
        return out


class Recorder(ShankLiftDetector):
    """The detector under test, keeping every call's velocity and how its runs guessed."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.runs = {"right": 0, "wrong": 0}

    def _run(self, c, cuts, *rest):
        nxt = super()._run(c, cuts, *rest)
        self.runs["right" if self._run_n > 4 else "wrong"] += 1  # a wrong guess resets it
        return nxt


def _stream(batches, rate_hz: float, detector: type, monkeypatch) -> dict:
    made: list[ShankLiftDetector] = []

    def make(*a, **kw):
        made.append(detector(*a, **kw))
        return made[-1]

    monkeypatch.setattr(bank, "ShankLiftDetector", make)
    pipe = Pipeline(rate_hz)
    vel, flags, events = [], [], []
    for b in batches:
        r, e = pipe.push(b)
        flags.append(r.heel_lift)
        events += [repr(x) for x in e]
        if made:
            vel.append(made[-1].velocity_m_s.copy())
    monkeypatch.undo()
    assert len(made) == 1
    det = made[0]
    return {"vel": np.concatenate(vel), "flags": np.concatenate(flags), "events": events,
            "model": (det._A, det._c, det._w), "det": det}


@pytest.fixture(scope="module")
def lifting_session():
    spec = ShankSim(script="wall").spec.with_(lift_prob=0.4, lift_range_m=(0.010, 0.030))
    sim = ShankSim(script=spec, seed=5, mount=Mount(clip_rotation_deg=ROT))
    return sim.generate(int(150 * sim.rate_hz)), sim.rate_hz


def _split(b, step: int, drop: tuple[float, float] | None = None):
    out = []
    for i in range(0, len(b), step):
        part = b.slice(i, i + step)
        if drop is not None:
            keep = np.flatnonzero((part.t_s < drop[0]) | (part.t_s >= drop[0] + drop[1]))
            if len(keep) == 0:
                continue
            part = part.slice(int(keep[0]), int(keep[-1]) + 1)
        out.append(part)
    return out


@pytest.mark.parametrize("step,drop", [(3000, None), (1000, None), (777, None), (10, None),
                                       (1000, (80.0, 0.05)), (1000, (90.0, 3.0)),
                                       (2000, (100.0, 12.0))])
def test_fast_paths_give_the_reference_numbers_to_the_last_bit(lifting_session, step, drop,
                                                                monkeypatch):
    b, rate = lifting_session
    batches = _split(b, step, drop)
    ref = _stream(batches, rate, ReferenceShankLift, monkeypatch)
    new = _stream(batches, rate, Recorder, monkeypatch)
    assert ref["flags"].sum() > 500  # the session lifts: flagged blocks stay out of the fit
    np.testing.assert_array_equal(new["vel"], ref["vel"])
    np.testing.assert_array_equal(new["flags"], ref["flags"])
    assert new["events"] == ref["events"]
    for a, r in zip(new["model"], ref["model"], strict=True):
        np.testing.assert_array_equal(a, r)
    if step >= 1000:  # whole blocks: the runs guessed, and some guesses were wrong
        assert new["det"].runs["right"] > 0 and new["det"].runs["wrong"] > 0
