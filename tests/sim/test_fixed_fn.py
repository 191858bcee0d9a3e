"""The fixed-point sigmoid and log (einloom.sim.formats.arith.fixed_fn, FixedArith.sigmoid / log): their
definitions (the exp/add/reciprocal composition; the fp32 log datapath on the normalized code), their
error against float64 within the documented bounds, and the special values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from einloom.sim.formats.arith.fixed import FIXED_DTYPE, NEG, POS, FixedArith
from einloom.sim.formats.arith.fixed_fn import LOG_MAX_ULP, SIGMOID_MAX_ERR, fixed_log_code
from einloom.sim.formats.fixed import PRESETS, FixedFormat, FixedParams


def _arith(params: FixedParams) -> FixedArith:
    return FixedArith(FixedFormat(params, head_dim=8, max_keys=64))


def _vals(c, f) -> np.ndarray:
    c, f = np.broadcast_arrays(np.asarray(c, dtype=np.int64), np.asarray(f, dtype=np.int64))
    out = np.empty(c.shape, dtype=FIXED_DTYPE)
    out["c"], out["f"] = c, f
    return out


@pytest.mark.parametrize("preset", ["int8", "int16"])
@pytest.mark.parametrize("f", [4, 8, 16])
def test_sigmoid_error_within_bound(preset, f):
    a = _arith(PRESETS[preset])
    codes = np.arange(-(40 << f), (40 << f) + 1, max(1, (80 << f) // 60000))
    got = a.to_float(a.sigmoid(_vals(codes, f)))
    ref = 1.0 / (1.0 + np.exp(-codes * 2.0 ** -f))
    err = np.abs(got - ref)
    assert err.max() <= SIGMOID_MAX_ERR
    assert err.max() > 1e-5                    # the bound is the exp's LUT step, not a loose check
    assert np.all(np.diff(got) >= -2.0 ** -16)  # monotone up to the reciprocal's rounding


def test_sigmoid_is_the_exp_add_recip_composition_and_its_specials():
    a = _arith(PRESETS["int8"])
    x = _vals([0, 17, -300, POS, NEG, -(40 << 8)], [0, 4, 8, 0, 0, 8])
    want = a.recip(a.add(a.const(1.0), a.exp(x, premul=-1.0)))
    got = a.sigmoid(x)
    assert np.array_equal(got, want)
    v = a.to_float(got)
    assert abs(v[0] - 0.5) <= 2.0 ** -17 and 1 - 2.0 ** -16 <= v[3] < 1.0   # the reciprocal's 2**-16
    assert v[4] == 0.0 and v[5] == 0.0         # -inf and -40 (below the exp's range): 0
    from einloom.einsum import operators
    op = operators.map_operator("sigmoid")
    assert np.array_equal(a.apply_operator("sigmoid", op.function, x), got)     # the operator runs the unit


@pytest.mark.parametrize("prob_bits,bound", [(4, LOG_MAX_ULP), (15, LOG_MAX_ULP), (16, LOG_MAX_ULP), (20, 0.625)])
def test_log_error_within_bound(prob_bits, bound):
    a = _arith(FixedParams(prob_bits=prob_bits, acc_bits=40))
    rng = np.random.default_rng(prob_bits)
    bits = rng.integers(1, 62, 20000)
    c = np.array([int(rng.integers(1, 1 << int(b))) for b in bits], dtype=np.int64)
    f = rng.integers(-20, 60, c.size)
    got = a.log(_vals(c, f))
    assert np.all(got["f"] == prob_bits)
    ref = np.array([math.log(int(ci)) - int(fi) * math.log(2) for ci, fi in zip(c, f)])
    err = np.abs(a.to_float(got) - ref) * 2.0 ** prob_bits
    assert err.max() <= bound and err.max() > 0.45


def test_log_specials_and_exact_points():
    a = _arith(PRESETS["int8"])
    pb = a.p.prob_bits
    got = a.log(_vals([0, -1, -128, NEG, POS, 1 << 15, 1, 1 << 20], [0, 0, 4, 0, 0, 15, 0, 20]))
    assert list(got["c"][:5]) == [NEG, NEG, NEG, NEG, POS]      # x <= 0 -> -inf; +inf stays
    assert list(got["c"][5:]) == [0, 0, 0]                       # log 1 = 0 at any scale
    two = a.log(_vals([2], [0]))["c"][0]
    assert two == round(math.log(2) * 2 ** pb)
    # the truncation to 24 significant bits: a 62-bit code's log matches its top 24 bits' log
    big = (1 << 61) + (1 << 38) - 1
    assert fixed_log_code(np.array([big]), np.array([0]), pb)[0] == fixed_log_code(
        np.array([big >> 38]), np.array([-38]), pb)[0]
