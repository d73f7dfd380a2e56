"""Every decoder fuzzed with hypothesis (the ``make test`` profile: a few hundred cases each).

``bench/bench_fuzz.py`` runs the same properties on more than 100,000 generated cases.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability import fuzzing as fz

PROFILE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(fz.SEED, fz.OPS, fz.CUTS)
def test_node_frame_decoder_resyncs_and_counts(seed, ops, cuts):
    fz.check_node(seed, ops, cuts)


@PROFILE
@given(fz.SEED, fz.OPS, fz.CUTS)
def test_witmotion_ble_decoder_accounts_for_every_byte(seed, ops, cuts):
    fz.check_wit_ble(seed, ops, cuts)


@PROFILE
@given(fz.SEED, fz.OPS, fz.CUTS)
def test_witmotion_uart_decoder_resyncs_and_counts(seed, ops, cuts):
    fz.check_wit_uart(seed, ops, cuts)


@PROFILE
@given(st.binary(max_size=2000), fz.CUTS)
def test_no_decoder_raises_on_any_bytes(data, cuts):
    fz.check_random(data, cuts)
