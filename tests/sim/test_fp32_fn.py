"""The bf16 format's sigmoid and log models (sim/formats/arith/fp32_fn.py): their error against float64
within the documented ulp bounds, their special values, and the format interpreter running the
library's sigmoid on the sigmoid unit (not float64 rounded once)."""
from __future__ import annotations

import numpy as np
import pytest

from einloom.sim.formats.arith.float import Fp32Arith
from einloom.sim.formats.arith.fp32 import fp32_add, fp32_bits, fp32_exp, fp32_recip, fp32_ulp_error, fp32_value
from einloom.sim.formats.arith.fp32_fn import LOG_MAX_ULP, SIGMOID_MAX_ULP, fp32_log, fp32_sigmoid


def _positive_normals(rng, n):
    return np.concatenate([np.arange(0x0080, 0x7F80, dtype=np.uint32) << 16,             # every bf16
                           rng.integers(0x00800000, 0x7F800000, n, dtype=np.int64).astype(np.uint32),
                           np.arange(0x3F7E0000, 0x3F820000, 13, dtype=np.uint32)])       # next to 1


def test_log_error_within_its_bound():
    xs = _positive_normals(np.random.default_rng(5), 50_000)
    exact = np.log(fp32_value(xs).astype(np.float64))
    nz = exact != 0
    err = fp32_ulp_error(fp32_log(xs[nz]), exact[nz])
    assert err.max() <= LOG_MAX_ULP
    assert err.max() > 0.45                       # the bound is tight: measured 0.73
    assert fp32_log(np.uint32(0x3F800000)) == 0   # log(1) = +0


def test_sigmoid_error_within_its_bound():
    rng = np.random.default_rng(6)
    xs = np.concatenate([fp32_bits(rng.uniform(-88, 88, 50_000)), fp32_bits(rng.uniform(-2, 2, 20_000))])
    exact = 1.0 / (1.0 + np.exp(-fp32_value(xs).astype(np.float64)))
    ok = exact > 2.0**-125
    err = fp32_ulp_error(fp32_sigmoid(xs[ok]), exact[ok])
    assert err.max() <= SIGMOID_MAX_ULP and err.max() > 1.0


def test_sigmoid_is_the_three_units_in_series():
    xs = fp32_bits(np.random.default_rng(7).uniform(-30, 30, 1000))
    want = fp32_recip(fp32_add(np.uint32(0x3F800000), fp32_exp(xs ^ np.uint32(0x80000000))))
    assert np.array_equal(fp32_sigmoid(xs), want)


@pytest.mark.parametrize("x,log,sigmoid", [
    (0x00000000, 0xFF800000, 0x3F000000),    # +0: log -inf, sigmoid 0.5
    (0x80000000, 0xFF800000, 0x3F000000),    # -0
    (0x00000001, 0xFF800000, 0x3F000000),    # subnormal: flushed to zero
    (0x7F800000, 0x7F800000, 0x3F800000),    # +inf
    (0xFF800000, 0x7FC00000, 0x00000000),    # -inf: log NaN, sigmoid +0
    (0xBF800000, 0x7FC00000, None),          # log(-1) = NaN
    (0x7FC00000, 0x7FC00000, 0x7FC00000),    # NaN
    (0x40000000, 0x3F317218, None),          # log(2) = ln 2, correctly rounded
    (0x402DF854, 0x3F7FFFFF, None),          # log(fp32(e)) = 1 - 3.04e-8: rounds below 1
])
def test_special_values(x, log, sigmoid):
    assert int(fp32_log(np.uint32(x))) == log
    if sigmoid is not None:
        assert int(fp32_sigmoid(np.uint32(x))) == sigmoid


def test_interpreter_runs_sigmoid_on_the_unit():
    """run_in_format's sigmoid is the unit's (fp32_sigmoid), not float64 rounded once."""
    from einloom.einsum.loader import parse_cascade_text
    from einloom.sim.formats.interpret import run_in_format
    a = Fp32Arith(output="fp32")
    cascade = parse_cascade_text("""
name: s
ranks: {N: 101}
tensors: {X: [N], Y: [N]}
inputs: [X]
outputs: [Y]
einsums:
  - Y[n] = sigmoid(X[n])
""")
    xs = np.linspace(-6, 6, 101)
    codes = (fp32_bits(xs) >> 16).astype(np.int64)          # bf16 input codes
    got = run_in_format(cascade, a, {"X": codes}).codes["Y"].astype(np.uint32)
    want = fp32_sigmoid(a.from_input(codes))
    assert np.array_equal(got, want)
    rounded_once = a.apply_float(lambda x: 1 / (1 + np.exp(-x)), a.from_input(codes))
    assert not np.array_equal(got, rounded_once)           # the two semantics differ somewhere
