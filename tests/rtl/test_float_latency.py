"""Every latency setting of the float units (Amaranth's simulator): same results, delayed by ``latency``.

The attention datapath uses the combinational (``latency=0``) adders, multipliers and converters inside
its PEs; the Verilator tests (test_float_units.py) cover the default, fully pipelined settings.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from einloom.rtl.float import Bf16Mul, Fp32Add, Fp32Exp, Fp32Max, Fp32Mul, Fp32Recip, Fp32ToBf16
from einloom.sim.formats import bf16 as B

RNG = np.random.default_rng(5)
N = 120


def fp32_vectors(n):
    s = RNG.integers(0, 2, n, dtype=np.uint32) << 31
    e = RNG.integers(100, 160, n, dtype=np.uint32) << 23
    return s | e | RNG.integers(0, 1 << 23, n, dtype=np.uint32)


CASES = {
    "Fp32Add": (Fp32Add, B.fp32_add, 2, 32),
    "Fp32Mul": (Fp32Mul, B.fp32_mul, 2, 32),
    "Bf16Mul": (Bf16Mul, B.bf16_mul, 2, 16),
    "Fp32ToBf16": (Fp32ToBf16, B.fp32_to_bf16, 1, 32),
    "Fp32Max": (Fp32Max, B.fp32_max, 2, 32),
    "Fp32Exp": (Fp32Exp, B.fp32_exp, 1, 32),
    "Fp32Recip": (Fp32Recip, B.fp32_recip, 1, 32),
}


def run(unit, ins):
    got = []
    lat = unit.latency
    ports = [unit.a] + ([unit.b] if len(ins) == 2 else [])

    async def bench(ctx):
        for i in range(len(ins[0]) + lat):
            if i < len(ins[0]):
                for p, col in zip(ports, ins):
                    ctx.set(p, int(col[i]))
            if lat == 0:
                await ctx.delay(1e-9)
                got.append(ctx.get(unit.result))
            else:
                await ctx.tick()
                if i >= lat - 1 and len(got) < len(ins[0]):
                    got.append(ctx.get(unit.result))

    sim = Simulator(unit)
    if lat:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got[:len(ins[0])], dtype=np.int64)


@pytest.mark.parametrize("name", list(CASES))
def test_every_latency_matches_golden(name):
    cls, golden, n_in, bits = CASES[name]
    ins = [fp32_vectors(N) for _ in range(n_in)]
    if bits == 16:
        ins = [B.fp32_to_bf16(x) for x in ins]
    want = np.asarray(golden(*ins)).astype(np.int64)
    lats = sorted({0, 1, cls.BOUNDARIES // 2, cls.BOUNDARIES})
    for lat in lats:
        unit = cls(latency=lat)
        assert unit.latency == lat
        np.testing.assert_array_equal(run(unit, ins), want, err_msg=f"{name} latency {lat}")


@pytest.mark.parametrize("name", ["Fp32Exp", "Fp32Recip"])
def test_split_multiplies_match_golden_at_every_latency(name):
    """``split=True`` (the attention core's exp and reciprocal): the wide multiplies as registered
    partial products added in the next stage give the same bits at 0, 1, half and all of the
    boundaries (exp 11, reciprocal 10), and ``split`` is what adds the boundaries."""
    cls, golden, _, _ = CASES[name]
    ins = [fp32_vectors(N)]
    want = np.asarray(golden(*ins)).astype(np.int64)
    assert cls.SPLIT_BOUNDARIES > cls.BOUNDARIES
    for lat in (0, 1, cls.SPLIT_BOUNDARIES // 2, cls.SPLIT_BOUNDARIES):
        unit = cls(latency=lat, split=True)
        assert unit.latency == lat
        np.testing.assert_array_equal(run(unit, ins), want, err_msg=f"{name} split, latency {lat}")
    with pytest.raises(ValueError, match=rf"latency must be 0\.\.{cls.BOUNDARIES}, not {cls.SPLIT_BOUNDARIES}"):
        cls(latency=cls.SPLIT_BOUNDARIES)


def edge_vectors(n):
    """fp32 patterns at the edges of the range and of rounding: exponents 0, 1, 2, 24, 25, 253, 254,
    255 and random ones, fractions 0, 1, all ones, all ones but one and random, random signs."""
    exps = np.array([0, 1, 2, 24, 25, 126, 127, 253, 254, 255], dtype=np.uint32)
    fracs = np.array([0, 1, 0x7FFFFF, 0x7FFFFE, 0x400000], dtype=np.uint32)
    e = np.where(RNG.random(n) < 0.8, RNG.choice(exps, n), RNG.integers(1, 255, n, dtype=np.uint32))
    f = np.where(RNG.random(n) < 0.7, RNG.choice(fracs, n), RNG.integers(0, 1 << 23, n, dtype=np.uint32))
    return (RNG.integers(0, 2, n, dtype=np.uint32) << 31) | (e << 23) | f


@pytest.mark.parametrize("lat", [0, Fp32Add.BOUNDARIES])
def test_fp32_add_rounding_carry_overflow_and_flush_match_golden(lat):
    """The adder's last stage forms the rounding carry beside the carry chain: the all-ones
    significands that round up into the next binade, into infinity (exponent 254), and the sums that
    flush to zero, against the golden ``fp32_add``, with and without registers."""
    n = 600
    a, b = edge_vectors(n), edge_vectors(n)
    # b close to a (cancellation, flush to zero) and just below half an ulp of a (round up, carry)
    b[:100] = a[:100] ^ np.uint32(1 << 31) ^ RNG.integers(0, 4, 100, dtype=np.uint32)
    b[100:200] = (a[100:200] & np.uint32(0x80000000)) | ((((a[100:200] >> 23) & 0xFF) - 24).clip(0) << 23) | 1
    # the largest finite significand of a binade plus just over half an ulp: the carry into the next
    # binade (exponents 1..253) or into infinity (254)
    sign = RNG.integers(0, 2, 100, dtype=np.uint32) << 31
    e = np.where(np.arange(100) < 50, 254, RNG.integers(25, 254, 100)).astype(np.uint32)
    a[200:300] = sign | (e << 23) | 0x7FFFFF
    b[200:300] = sign | ((e - 24) << 23) | 0x000001
    want = np.asarray(B.fp32_add(a, b)).astype(np.int64)
    np.testing.assert_array_equal(run(Fp32Add(latency=lat), [a, b]), want)
    assert ((want[200:250] & 0x7FFFFFFF) == 0x7F800000).all(), "the carry into infinity is not reached"
    assert ((want[250:300] >> 23 & 0xFF) == e[50:] + 1).all() and (want[250:300] & 0x7FFFFF == 0).all()
    assert (want[:100] & 0x7FFFFFFF == 0).sum() > 10, "no sum flushes to zero"


def test_fp32_add_near_the_range_ends_matches_golden():
    """Sums of operands of near exponents at the bottom (1..7) and top (248..254) of the range, a third
    of them cancelling almost exactly: every left shift of the normalization (its last two steps sit
    with the rounding) next to the flush to zero, and the rounding carry next to overflow."""
    n = 1500
    e = RNG.integers(1, 8, n).astype(np.uint32)
    e[n // 2:] = RNG.integers(248, 255, n - n // 2)
    a = (RNG.integers(0, 2, n, dtype=np.uint32) << 31) | (e << 23) | RNG.integers(0, 1 << 23, n, dtype=np.uint32)
    eb = (e.astype(np.int64) + RNG.integers(-3, 4, n)).clip(0, 254).astype(np.uint32)
    b = (RNG.integers(0, 2, n, dtype=np.uint32) << 31) | (eb << 23) | RNG.integers(0, 1 << 23, n, dtype=np.uint32)
    b[::3] = (a[::3] ^ np.uint32(1 << 31)) + RNG.integers(-40, 40, len(a[::3])).astype(np.uint32)
    want = np.asarray(B.fp32_add(a, b)).astype(np.int64)
    np.testing.assert_array_equal(run(Fp32Add(latency=Fp32Add.BOUNDARIES), [a, b]), want)
    assert ((want & 0x7FFFFFFF) == 0).sum() > 50 and ((want & 0x7FFFFFFF) == 0x7F800000).sum() > 10


def test_latency_out_of_range_is_rejected_with_the_range():
    with pytest.raises(ValueError, match=r"latency must be 0\.\.4, not 5"):
        Fp32Add(latency=5)
    with pytest.raises(ValueError, match=r"latency must be 0\.\.8, not -1"):
        Fp32Exp(latency=-1)


@pytest.mark.parametrize("scale", [True, False])
def test_bf16_units_latencies_match_their_components(scale):
    from amaranth.hdl import Fragment

    from einloom.rtl.units import units_for
    units = units_for(B.Bf16Format(head_dim=8, scale=scale))
    exp, recip = units.exp_unit(), units.recip_unit()
    assert (units.exp_latency, units.recip_latency) == (exp.latency, recip.latency) == (18 if scale else 15, 10)
    Fragment.get(exp, None), Fragment.get(recip, None)      # they elaborate
