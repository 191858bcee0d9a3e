"""The bf16/fp32 golden model against ml_dtypes, NumPy float32 and float64.

Where the model's semantics coincide with IEEE (normal numbers, round to nearest even) it must equal
ml_dtypes / NumPy bit for bit; the approximate units (exp, reciprocal) must stay within their
documented ulp bounds; attention must stay close to float64 attention.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from einloom.sim.formats import bf16 as B

RNG = np.random.default_rng(20240601)
MIN_NORMAL = 2.0**-126


def random_fp32(n: int, emin: int = 1, emax: int = 254, rng=RNG) -> np.ndarray:
    """Random fp32 bit patterns with normal exponents in [emin, emax] and random signs."""
    s = rng.integers(0, 2, n, dtype=np.uint32) << 31
    e = rng.integers(emin, emax + 1, n, dtype=np.uint32) << 23
    m = rng.integers(0, 1 << 23, n, dtype=np.uint32)
    return s | e | m


def is_normal(bits: np.ndarray) -> np.ndarray:
    e = (bits >> 23) & 0xFF
    return (e != 0) & (e != 255)


SPECIALS32 = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x00000001,
                       0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000,
                       0xBF800000, 0x3F800001, 0x4B000000, 0x33800000], dtype=np.uint32)


# --- conversions ------------------------------------------------------------------------------

def test_fp32_to_bf16_equals_ml_dtypes_rne():
    bits = np.concatenate([random_fp32(400_000),
                           # ties: low 16 bits exactly 0x8000, both parities of the kept lsb
                           random_fp32(20_000) & np.uint32(0xFFFF0000) | np.uint32(0x8000),
                           np.array([0x7F7FFFFF, 0x7F7F8000, 0x7F7F7FFF, 0, 0x80000000, 0x7F800000,
                                     0xFF800000], dtype=np.uint32)])
    ours = B.fp32_to_bf16(bits)
    ref = B.fp32_value(bits).astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(ours, ref)


def test_fp32_to_bf16_flushes_subnormals_and_canonicalizes_nan():
    assert B.fp32_to_bf16(np.uint32(0x007FFFFF)) == 0x0000
    assert B.fp32_to_bf16(np.uint32(0x807FFFFF)) == 0x8000
    assert B.fp32_to_bf16(np.uint32(0x7F800001)) == B.BF16_NAN
    assert B.fp32_to_bf16(np.uint32(0xFFC12345)) == B.BF16_NAN


def test_bf16_to_fp32_exhaustive():
    b = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    ours = B.bf16_to_fp32(b)
    ref = b.view(ml_dtypes.bfloat16).astype(np.float32).view(np.uint32)
    e = (b >> 7) & 0xFF
    m = b & 0x7F
    normal = (e != 0) & ~((e == 255) & (m != 0))
    np.testing.assert_array_equal(ours[normal], ref[normal])
    np.testing.assert_array_equal(ours[e == 0], (b[e == 0].astype(np.uint32) & 0x8000) << 16)
    assert np.all(ours[(e == 255) & (m != 0)] == B.FP32_NAN)


# --- multiply ---------------------------------------------------------------------------------

def test_bf16_mul_is_exact_float32_product():
    a = B.fp32_to_bf16(random_fp32(300_000, 50, 204))
    b = B.fp32_to_bf16(random_fp32(300_000, 50, 204))
    ours = B.bf16_mul(a, b)
    with np.errstate(over="ignore"):
        ref = (B.bf16_value(a) * B.bf16_value(b)).view(np.uint32)
    normal = is_normal(ref)
    assert normal.mean() > 0.9
    np.testing.assert_array_equal(ours[normal], ref[normal])
    exact = B.bf16_value(a).astype(np.float64) * B.bf16_value(b).astype(np.float64)
    np.testing.assert_array_equal(B.fp32_value(ours)[normal].astype(np.float64), exact[normal])
    # below the normal range: signed zero; above: signed infinity
    tiny = ~normal & (np.abs(exact) < MIN_NORMAL)
    assert tiny.any() and np.all((ours[tiny] & 0x7FFFFFFF) == 0)
    assert np.all((ours[tiny] >> 31) == (ref[tiny] >> 31))
    huge = np.abs(exact) > 3.5e38
    assert huge.any() and np.all((ours[huge] & 0x7FFFFFFF) == 0x7F800000)


def test_fp32_mul_equals_numpy_for_normal_results():
    a = random_fp32(400_000, 40, 214)
    b = random_fp32(400_000, 40, 214)
    ours = B.fp32_mul(a, b)
    with np.errstate(over="ignore"):
        ref = (B.fp32_value(a) * B.fp32_value(b)).view(np.uint32)
    normal = is_normal(ref) & (np.abs(B.fp32_value(ref)) > MIN_NORMAL)
    np.testing.assert_array_equal(ours[normal], ref[normal])
    tiny = (ref & 0x7F800000) == 0
    assert tiny.any() and np.all((ours[tiny] & 0x7FFFFFFF) == 0)


def test_fp32_mul_round_ties_to_even():
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24: the 2**-24 is exactly half an ulp -> tie, even -> down
    x = np.uint32(0x3F800800)
    assert B.fp32_mul(x, x) == 0x3F801000
    # (1 + 3*2**-12)*(1 + 2**-12) = 1 + 2**-10 + 3*2**-24 -> tie (half ulp + ... ) check vs numpy
    y = np.uint32(0x3F801800)
    assert B.fp32_mul(x, y) == (B.fp32_value(x) * B.fp32_value(y)).view(np.uint32)


def test_fp32_mul_specials():
    inf, ninf, nan, one = 0x7F800000, 0xFF800000, B.FP32_NAN, 0x3F800000
    cases = [(inf, 0, nan), (0, ninf, nan), (inf, one, inf), (ninf, one, ninf), (ninf, ninf, inf),
             (nan, one, nan), (0x80000000, one, 0x80000000), (0x00000001, one, 0),
             (0x7F000000, 0x7F000000, inf), (0x00800000, 0x3F000000, 0)]
    for a, b, want in cases:
        assert B.fp32_mul(np.uint32(a), np.uint32(b)) == want, (hex(a), hex(b))


# --- add --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spread", [0, 1, 2, 8, 30, 200])
def test_fp32_add_equals_numpy(spread):
    n = 200_000
    a = random_fp32(n, 1, 254)
    ea = ((a >> 23) & 0xFF).astype(np.int64)
    eb = np.clip(ea + RNG.integers(-spread, spread + 1, n), 1, 254).astype(np.uint32)
    b = (RNG.integers(0, 2, n, dtype=np.uint32) << 31) | (eb << 23) | RNG.integers(0, 1 << 23, n,
                                                                                     dtype=np.uint32)
    with np.errstate(over="ignore"):
        ref = (B.fp32_value(a) + B.fp32_value(b)).view(np.uint32)
    ours = B.fp32_add(a, b)
    normal_or_inf = ((ref & 0x7F800000) != 0)
    np.testing.assert_array_equal(ours[normal_or_inf], ref[normal_or_inf])
    sub = ~normal_or_inf                                   # exact zero or subnormal sum -> signed zero
    np.testing.assert_array_equal(ours[sub] & 0x7FFFFFFF, 0)


def test_fp32_add_cancellation_and_zero_signs():
    a = random_fp32(50_000)
    neg = a ^ np.uint32(0x80000000)
    assert np.all(B.fp32_add(a, neg) == 0)                  # x + (-x) = +0
    assert B.fp32_add(np.uint32(0x80000000), np.uint32(0x80000000)) == 0x80000000
    assert B.fp32_add(np.uint32(0x80000000), np.uint32(0)) == 0
    # the sum of min-normal and -(min-normal + 1 ulp) is subnormal -> -0
    assert B.fp32_add(np.uint32(0x00800000), np.uint32(0x80800001)) == 0x80000000


def test_fp32_add_specials():
    inf, ninf, nan, one = 0x7F800000, 0xFF800000, B.FP32_NAN, 0x3F800000
    cases = [(inf, ninf, nan), (ninf, inf, nan), (inf, inf, inf), (ninf, one, ninf), (one, ninf, ninf),
             (nan, one, nan), (one, 0x7FC12345, nan), (0x7F7FFFFF, 0x7F7FFFFF, inf),
             (0x00000123, one, one), (ninf, 0, ninf)]
    for a, b, want in cases:
        assert B.fp32_add(np.uint32(a), np.uint32(b)) == want, (hex(a), hex(b))
    assert B.fp32_sub(np.uint32(ninf), np.uint32(0x42000000)) == ninf       # masked score - max


# --- max --------------------------------------------------------------------------------------

def test_fp32_max_equals_numpy_and_orders_signed_zero():
    a = np.concatenate([random_fp32(100_000), SPECIALS32])
    b = np.concatenate([random_fp32(100_000), SPECIALS32[::-1]])
    ours = B.fp32_max(a, b)
    ok = is_normal(a) & is_normal(b) | ((a & 0x7FFFFFFF) == 0x7F800000) & is_normal(b)
    ref = np.maximum(B.fp32_value(a), B.fp32_value(b)).view(np.uint32)
    np.testing.assert_array_equal(ours[ok], ref[ok])
    assert B.fp32_max(np.uint32(0x80000000), np.uint32(0)) == 0
    assert B.fp32_max(np.uint32(0), np.uint32(0x80000000)) == 0
    assert B.fp32_max(np.uint32(0xFF800000), np.uint32(0xC2000000)) == 0xC2000000
    assert B.fp32_max(np.uint32(0xFF800000), np.uint32(0xFF800000)) == 0xFF800000
    assert B.fp32_max(np.uint32(0x7FC00000), np.uint32(0xFF800000)) == B.FP32_NAN
    assert B.fp32_max(np.uint32(0x80000001), np.uint32(0x80000000)) == 0x80000000   # subnormal -> -0


# --- exp --------------------------------------------------------------------------------------

def _exp_ulps(x: np.ndarray) -> np.ndarray:
    bits = B.fp32_bits(x)
    exact = np.exp(B.fp32_value(bits).astype(np.float64))
    ok = (exact > MIN_NORMAL * 1.001) & (exact < 3.4e38)
    return B.fp32_ulp_error(B.fp32_exp(bits[ok]), exact[ok])


def test_fp32_exp_error_bound_random():
    x = np.concatenate([RNG.uniform(-88, 88, 500_000),
                        RNG.uniform(-1, 1, 200_000) * 2.0 ** RNG.integers(-30, 7, 200_000)])
    err = _exp_ulps(x.astype(np.float32))
    assert err.max() <= B.EXP_MAX_ULP
    assert err.max() > 0.5          # the bound is tight (not vacuous)


def test_fp32_exp_error_bound_all_bf16_inputs():
    b = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    v = B.bf16_value(b)
    with np.errstate(over="ignore", invalid="ignore"):
        err = _exp_ulps(v[np.isfinite(v) & (np.abs(v) < 89)])
    assert err.max() <= B.EXP_MAX_ULP


def test_fp32_exp_specials_and_range_ends():
    cases = {0xFF800000: 0, 0x7F800000: 0x7F800000, 0x7FC00000: B.FP32_NAN, 0: 0x3F800000,
             0x80000000: 0x3F800000, 0x00000005: 0x3F800000, 0xC3000000: 0, 0x43000000: 0x7F800000,
             0xC2C80000: 0, 0x42C80000: 0x7F800000}          # -128, 128, -100, 100
    for x, want in cases.items():
        assert B.fp32_exp(np.uint32(x)) == want, hex(x)
    # results monotone across the underflow / overflow edges, FTZ below 2**-126
    x = np.linspace(-87.5, -87.2, 5001).astype(np.float32)
    y = B.fp32_value(B.fp32_exp(B.fp32_bits(x)))
    assert np.all(y[1:] >= y[:-1]) and y[0] == 0 and np.all((y == 0) | (y >= MIN_NORMAL))
    x = np.linspace(88.5, 88.9, 5001).astype(np.float32)
    y = B.fp32_value(B.fp32_exp(B.fp32_bits(x)))
    assert np.all(y[1:] >= y[:-1]) and np.isinf(y[-1])


# --- reciprocal -------------------------------------------------------------------------------

def test_fp32_recip_error_bound_every_significand():
    x = np.arange(1 << 23, dtype=np.uint32)[::7] | np.uint32(127 << 23)   # 1.2M significands
    err = B.fp32_ulp_error(B.fp32_recip(x), 1.0 / B.fp32_value(x).astype(np.float64))
    assert err.max() <= B.RECIP_MAX_ULP


def test_fp32_recip_random_exponents_and_signs():
    x = random_fp32(200_000, 2, 252)
    r = B.fp32_recip(x)
    err = B.fp32_ulp_error(r, 1.0 / B.fp32_value(x).astype(np.float64))
    assert err.max() <= B.RECIP_MAX_ULP
    assert np.all((r >> 31) == (x >> 31))


def test_fp32_recip_specials():
    cases = {0: 0x7F800000, 0x80000000: 0xFF800000, 0x00000007: 0x7F800000, 0x7F800000: 0,
             0xFF800000: 0x80000000, 0x7FC00000: B.FP32_NAN, 0x3F800000: 0x3F800000,
             0x40000000: 0x3F000000, 0x7E800000: 0x00800000, 0x7E800001: 0, 0x7F000000: 0, 0xFF7FFFFF: 0x80000000}
    for x, want in cases.items():
        assert B.fp32_recip(np.uint32(x)) == want, hex(x)


# --- attention --------------------------------------------------------------------------------

def attention_f64(Q, K, V, causal, scale):
    s = scale * (K.T @ Q)                                    # [M, P]
    if causal:
        s = np.where(np.arange(K.shape[1])[:, None] <= np.arange(Q.shape[1])[None, :], s, -np.inf)
    w = np.exp(s - s.max(axis=0, keepdims=True))
    return (V @ w) / w.sum(axis=0, keepdims=True)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tile", [4, 16])
def test_attention_close_to_float64(causal, tile):
    E, F, P, M = 16, 8, 32, 32
    rng = np.random.default_rng(7 + tile)
    Q, K, V = (rng.standard_normal(s) * 1.5 for s in [(E, P), (E, M), (F, M)])
    Qb, Kb, Vb = (B.bf16_quantize(t).astype(np.float64) for t in (Q, K, V))
    ref = attention_f64(Qb, Kb, Vb, causal, 1 / np.sqrt(E))
    got32 = B.golden_attention_bf16(Q, K, V, tile=tile, causal=causal, output="fp32")
    got16 = B.golden_attention_bf16(Q, K, V, tile=tile, causal=causal)
    scale = np.abs(ref).max()
    # fp32 datapath with bf16 probabilities: a few bf16 ulps of the output range
    assert np.abs(got32 - ref).max() / scale < 2**-8
    assert np.abs(got16 - ref).max() / scale < 2**-7
    assert np.all(np.abs(got16 - B.bf16_quantize(got32)) <= np.abs(got32) * 2**-8 + 1e-30)


def test_attention_one_tile_row_is_convex_combination():
    # all keys equal -> every weight equal -> output equals V row mean within rounding
    E, F, P, M = 4, 4, 4, 8
    Q = np.ones((E, P))
    K = np.ones((E, M))
    V = np.arange(F * M, dtype=float).reshape(F, M) / 8
    got = B.golden_attention_bf16(Q, K, V, tile=4, output="fp32")
    want = B.bf16_quantize(V).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(got, np.repeat(want[:, None], P, axis=1), rtol=2**-8)


def test_attention_error_is_the_bf16_probabilities():
    # float64 FlashAttention-2 that rounds only the probabilities to bf16 before the PV product:
    # the bf16 golden model must agree with it to fp32-level accuracy (exp, recip, sums ~1e-7)
    E = F = 16
    P, M, tile = 16, 48, 8
    rng = np.random.default_rng(11)
    q, k, v = rng.normal(size=(E, P)), rng.normal(size=(E, M)), rng.normal(size=(F, M))
    qb, kb, vb = (B.bf16_quantize(t).astype(np.float64) for t in (q, k, v))
    s = float(B.fp32_value(B.fp32_bits(1 / np.sqrt(E)))) * (kb.T @ qb)
    rm, rd, rnv = np.full(P, -np.inf), np.zeros(P), np.zeros((F, P))
    for t in range(M // tile):
        st = s[t * tile:(t + 1) * tile]
        new = np.maximum(rm, st.max(0))
        w = np.exp(st - new)
        prm = np.exp(rm - new)
        rd = prm * rd + w.sum(0)
        rnv = prm * rnv + vb[:, t * tile:(t + 1) * tile] @ B.bf16_quantize(w).astype(np.float64)
        rm = new
    fa2 = rnv / rd
    got = B.golden_attention_bf16(q, k, v, tile=tile, output="fp32").astype(np.float64)
    exact = attention_f64(qb, kb, vb, False, 1 / np.sqrt(E))
    assert np.abs(got - fa2).max() / np.abs(fa2).max() < 2e-6
    assert np.abs(got - exact).max() / np.abs(exact).max() > 1e-4      # the bf16 P rounding is visible


# --- property tests over arbitrary bit patterns ---------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

u32 = st.integers(0, 2**32 - 1)


def _ieee_agrees(a, b, ref):
    """True where IEEE and the model must agree: no subnormal input or output, no NaN input."""
    e = lambda x: (x >> 23) & 0xFF  # noqa: E731
    normal_in = (e(a) != 0) & (e(b) != 0) & ~((e(a) == 255) & ((a & 0x7FFFFF) != 0)) & \
        ~((e(b) == 255) & ((b & 0x7FFFFF) != 0))
    return normal_in & (e(ref) != 0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(u32, u32), min_size=1, max_size=64))
def test_add_and_mul_equal_ieee_on_any_bits(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.uint32)
    b = np.array([p[1] for p in pairs], dtype=np.uint32)
    with np.errstate(all="ignore"):
        for ours, ref in ((B.fp32_add(a, b), B.fp32_value(a) + B.fp32_value(b)),
                          (B.fp32_mul(a, b), B.fp32_value(a) * B.fp32_value(b))):
            ref = ref.view(np.uint32)
            agree = _ieee_agrees(a, b, ref)
            nan = np.isnan(B.fp32_value(ref))
            np.testing.assert_array_equal(ours[agree & ~nan], ref[agree & ~nan])
            assert np.all(ours[agree & nan] == B.FP32_NAN)
    np.testing.assert_array_equal(B.fp32_add(a, b), B.fp32_add(b, a))     # commutative, bit for bit
    np.testing.assert_array_equal(B.fp32_mul(a, b), B.fp32_mul(b, a))
