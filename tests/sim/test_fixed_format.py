"""The fixed-point golden model: primitives, and its error against float64 attention."""
import numpy as np
import pytest

from einloom.sim.formats import FixedFormat, FixedParams, golden_attention
from einloom.sim.formats.fixed import PRESETS, random_attention_error


@pytest.mark.parametrize("preset", ["int8", "int16"])
@pytest.mark.parametrize("m,p,causal,tile,sd", [(64, 64, False, 4, 1.0), (61, 50, True, 8, 3.0),
                                                (256, 32, False, 8, 2.0), (7, 9, True, 4, 1.0)])
def test_error_against_float64(preset, m, p, causal, tile, sd):
    fmt = FixedFormat(PRESETS[preset], head_dim=16, max_keys=256)
    err, vmax = random_attention_error(fmt, np.random.default_rng(m * 31 + p), m, p, 16, 16, causal=causal,
                                       tile=tile, sd=sd)
    assert err <= fmt.error_bound(vmax), (err, fmt.error_bound(vmax))


def test_error_bound_can_fail():
    # a 2-bit exp LUT is far too coarse: the documented 8-bit bound must then be exceeded
    coarse = FixedFormat(FixedParams(exp_frac_bits=2), head_dim=16)
    fine = FixedFormat(FixedParams(), head_dim=16)
    err, vmax = random_attention_error(coarse, np.random.default_rng(1), 64, 64, 16, 16, causal=False, tile=4,
                                       sd=2.0)
    assert err > fine.error_bound(vmax)


def test_tiling_does_not_change_fixed_point_results():
    # integer max/exp/rescale are per query; a tile with no new max rescales by exactly 1.0
    fmt = FixedFormat()
    rng = np.random.default_rng(5)
    q, k, v = (fmt.quantize(rng.normal(0, 1, s)) for s in [(16, 20), (16, 37), (16, 37)])
    a4, _ = golden_attention(fmt, q, k, v, tile_m=4)
    a8, _ = golden_attention(fmt, q, k, v, tile_m=8)
    assert a4.shape == (16, 20)
    assert np.abs(a4 - a8).max() <= 4   # not identical in general (floors happen at different rescales)


def test_exp_primitive():
    fmt = FixedFormat()
    assert fmt.exp_diff(np.array([5]), np.array([5]))[0] == 1 << fmt.p.prob_bits
    d = -np.arange(0, 4000, 7)
    got = fmt.exp_diff(d, np.zeros_like(d)) / 2.0 ** fmt.p.prob_bits
    want = np.exp(d * 2.0 ** -(2 * fmt.p.frac_bits) * fmt.scale_value)
    assert np.abs(got - want).max() < 0.003
    assert fmt.exp_diff(np.array([-10**7]), np.array([0]))[0] == 0
    with pytest.raises(ValueError):
        fmt.exp_diff(np.array([1]), np.array([0]))


def test_reciprocal_primitive():
    fmt = FixedFormat()
    x = np.concatenate([np.arange(1, 5000), (1 << np.arange(0, 31)), (1 << np.arange(1, 31)) - 1])
    y, s = fmt.split_recip(fmt.reciprocal(x))
    approx = y * 2.0 ** -(fmt.p.recip_bits + s)
    assert np.abs(approx * x - 1).max() < 2.0 ** -(fmt.p.recip_bits - 2)


def test_output_saturates():
    fmt = FixedFormat()
    recip = fmt.reciprocal(np.array([1 << fmt.p.prob_bits]))
    big = np.array([1 << 30])
    assert fmt.output(big, recip)[0] == (1 << (fmt.p.output_bits - 1)) - 1


def test_invalid_parameters_named():
    with pytest.raises(ValueError, match="acc_bits: must be at least"):
        FixedFormat(FixedParams(acc_bits=20))
    with pytest.raises(ValueError, match="frac_bits"):
        FixedFormat(FixedParams(frac_bits=9))
