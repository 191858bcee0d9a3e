"""Fp32Add's shortened stages (Amaranth's simulator, against the golden ``bf16.fp32_add``): the
leading-zero tree of the normalization, the sticky bit counted beside the compare, and the single
add/subtract carry chain, at every shift they can take."""
import numpy as np
import pytest
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.sim import Simulator

from einloom.rtl.float import Fp32Add
from einloom.rtl.float.add import leading_zeros
from einloom.sim.formats import bf16 as B

from test_float_latency import run

RNG = np.random.default_rng(14)


def _leading_zeros_of(width, values):
    x = Signal(width)
    m = Module()
    zero, count = leading_zeros(m, x)
    z, c = Signal(), Signal(len(count))
    m.d.comb += [z.eq(zero), c.eq(count)]
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(x, int(v))
            await ctx.delay(1e-9)
            got.append((ctx.get(z), ctx.get(c)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


def test_leading_zeros_tree_counts_every_position():
    """Every 8-bit value, and for 32 bits the leading one at each position over random lower bits:
    the count is the number of leading zeros, the zero flag set only for 0."""
    got = _leading_zeros_of(8, range(256))
    for v, (zero, count) in enumerate(got):
        assert zero == (v == 0)
        if v:
            assert count == 8 - v.bit_length(), v
    values = [(1 << k) | int(RNG.integers(0, 1 << k)) if k else 1 for k in range(32) for _ in range(3)]
    for v, (zero, count) in zip(values, _leading_zeros_of(32, values)):
        assert not zero and count == 32 - v.bit_length(), hex(v)
    assert _leading_zeros_of(32, [0])[0][0] == 1


def test_leading_zeros_refuses_a_width_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="power-of-two width, not 24"):
        leading_zeros(Module(), Signal(24))
    leading_zeros(Module(), Cat(Const(0, 8), Signal(24)))        # padded to 32: accepted


def _fp32(sign, exp, frac):
    return ((np.asarray(sign, dtype=np.uint32) << 31) | (np.asarray(exp, dtype=np.uint32) << 23)
            | np.asarray(frac, dtype=np.uint32)).astype(np.uint32)


@pytest.mark.parametrize("lat", [0, Fp32Add.BOUNDARIES])
def test_fp32_add_cancellation_to_every_leading_zero_count(lat):
    """a - b with b just below a, the difference's leading one at each of the 24 significand positions
    (left shifts 0..23): the count, the left shift and the exponent's subtraction, including
    results that flush to zero at small exponents."""
    a_list, b_list = [], []
    for k in range(27):                      # difference of the significands 2**k .. 2**(k+1) - 1 ulps
        for e in (1, 2, 30, 127, 200, 254):
            frac = int(RNG.integers(1 << 22, 1 << 23))
            delta = (1 << k) | int(RNG.integers(0, 1 << k)) if k else 1
            delta = min(delta, (1 << 23) + frac - 1)
            big = (1 << 23) | frac
            small = big - delta
            if small < (1 << 23):                # below the binade: b one exponent lower, a shift of 1
                a_list.append(_fp32(0, e, frac))
                b_list.append(_fp32(1, e - 1 if e > 1 else 0, (small << 1) & 0x7FFFFF if e > 1 else 0))
            else:
                a_list.append(_fp32(0, e, frac))
                b_list.append(_fp32(1, e, small & 0x7FFFFF))
    a, b = np.array(a_list, dtype=np.uint32), np.array(b_list, dtype=np.uint32)
    sign = RNG.integers(0, 2, len(a), dtype=np.uint32) << 31          # both signs, both orders
    a, b = a ^ sign, b ^ sign
    swap = RNG.random(len(a)) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    want = np.asarray(B.fp32_add(a, b)).astype(np.int64)
    np.testing.assert_array_equal(run(Fp32Add(latency=lat), [a, b]), want)
    exps = (want >> 23) & 0xFF
    larger = np.maximum(a >> 23 & 0xFF, b >> 23 & 0xFF).astype(np.int64)
    assert len(set(larger[exps > 0] - exps[exps > 0])) >= 24, "too few normalization shifts"
    assert ((want & 0x7FFFFFFF) == 0).sum() > 0, "no difference flushes to zero"


@pytest.mark.parametrize("subtract", [False, True])
def test_fp32_add_sticky_bit_at_every_shift_and_trailing_zero_count(subtract):
    """The sticky bit is (smaller significand's trailing zeros + 3 <= alignment shift), formed beside
    the compare: every exponent difference 0..33 against every trailing-zero count 0..23 of the
    smaller operand (the boundary shift = trailing zeros + 3 on both sides), as a + b and a - b."""
    d, t = np.meshgrid(np.arange(34), np.arange(24))
    d, t = d.ravel(), t.ravel()
    n = len(d)
    ea = RNG.integers(40, 200, n)
    fa = RNG.integers(0, 1 << 23, n)
    # b's significand 1.f with exactly t trailing zeros (t = 23: the hidden one alone)
    fb = ((RNG.integers(0, 1 << 23, n) | 1) << t) & 0x7FFFFF
    a = _fp32(RNG.integers(0, 2, n), ea, fa)
    b = _fp32(RNG.integers(0, 2, n), ea - d, fb)
    swap = RNG.random(n) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    golden = B.fp32_sub if subtract else B.fp32_add
    want = np.asarray(golden(a, b)).astype(np.int64)
    np.testing.assert_array_equal(run(Fp32Add(subtract=subtract, latency=Fp32Add.BOUNDARIES), [a, b]), want)


def test_bf16_rescale_first_takes_old_as_zero():
    """``Bf16Rescale.first`` clears only old's sign and exponent (its fraction goes straight into the
    multiply): bit-exact with the golden ``rescale_add(prm, first ? 0 : old, addend)``, also for old
    with any fraction, prm infinite or NaN (0 * inf = NaN) and negative prm (-0 products)."""
    from einloom.rtl.float.bf16 import Bf16Rescale

    n = 400
    fmt = B.Bf16Format(head_dim=8)
    prm = np.where(RNG.random(n) < 0.8, RNG.integers(0x30000000, 0x3F800001, n),
                   RNG.choice([0x7F800000, 0xFF800000, 0x7FC00000, 0x80000000, 0, 0xBF800000], n)).astype(np.uint32)
    old = _fp32(RNG.integers(0, 2, n), RNG.integers(0, 256, n), RNG.integers(0, 1 << 23, n))
    addend = _fp32(RNG.integers(0, 2, n), RNG.integers(100, 140, n), RNG.integers(0, 1 << 23, n))
    first = (RNG.random(n) < 0.5).astype(np.uint32)
    unit = Bf16Rescale()
    got = []

    async def bench(ctx):
        for i in range(n + unit.latency):
            if i < n:
                for port, col in ((unit.prm, prm), (unit.old, old), (unit.addend, addend), (unit.first, first)):
                    ctx.set(port, int(col[i]))
            await ctx.tick()
            if i >= unit.latency - 1 and len(got) < n:
                got.append(ctx.get(unit.y))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = np.asarray(fmt.rescale_add(prm, np.where(first == 1, 0, old), addend)).astype(np.int64) & 0xFFFFFFFF
    np.testing.assert_array_equal(np.array(got, dtype=np.int64), want)
    assert not np.array_equal(want, np.asarray(fmt.rescale_add(prm, old, addend)).astype(np.int64) & 0xFFFFFFFF)
