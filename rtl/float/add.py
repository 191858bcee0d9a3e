"""fp32 adder (round to nearest even, flush to zero)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_NAN, fields32, signed_inf, signed_zero
from einloom.rtl.float.pipeline import Pipeline, check_latency

__all__ = ["Fp32Add", "LeadingZeros", "leading_zeros"]


class LeadingZeros(wiring.Component):
    """``zero`` (``x`` is zero) and ``count``, the number of ``x``'s leading zeros (top bit first;
    ``width`` a power of two, ``log2 width`` count bits; the count is meaningless for a zero ``x``),
    combinational.

    A balanced tree: each half's (all zero, count) pair is combined by one select, so the count's
    high bits (the coarse shifts) come out of the tree first.  A submodule of its own, each node its
    own signal: Amaranth's simulator then settles the tree in this small module instead of
    re-evaluating its user's whole combinational logic at every level (or inlining the shared halves at
    every use); the logic is the same."""

    def __init__(self, width: int):
        if width & (width - 1) or width < 2:
            raise ValueError(f"leading_zeros needs a power-of-two width, not {width}")
        self.width = width
        super().__init__({"x": In(width), "zero": Out(1), "count": Out(width.bit_length() - 1)})

    def elaborate(self, platform):
        m = Module()

        def node(zero_value, count_value, width: int, path: str) -> tuple[Signal, Signal]:
            zero, count = Signal(name=f"zero{path}"), Signal(width, name=f"count{path}")
            m.d.comb += [zero.eq(zero_value), count.eq(count_value)]
            return zero, count

        def tree(bits: Value, path: str) -> tuple[Signal, Signal]:
            if len(bits) == 2:
                return node(~(bits[1] | bits[0]), ~bits[1], 1, path)
            half = len(bits) // 2
            zero_hi, count_hi = tree(bits[half:], path + "h")
            zero_lo, count_lo = tree(bits[:half], path + "l")
            return node(zero_hi & zero_lo, Cat(Mux(zero_hi, count_lo, count_hi), zero_hi), len(count_hi) + 1, path)

        zero, count = tree(self.x, "")
        m.d.comb += [self.zero.eq(zero), self.count.eq(count)]
        return m


def leading_zeros(m: Module, x: Value, name: str = "lz") -> tuple[Value, Value]:
    """``(zero, count)`` of ``x`` (:class:`LeadingZeros`, added to ``m`` as submodule ``name``)."""
    x = Value.cast(x)
    lz = LeadingZeros(len(x))
    m.submodules[name] = lz
    m.d.comb += lz.x.eq(x)
    return lz.zero, lz.count


class Fp32Add(wiring.Component):
    """fp32 sum ``a + b`` (or ``a - b``), rounded to nearest even (golden model: ``bf16.fp32_add``).

    IEEE 754 results for normal numbers. Subnormal inputs read as signed zeros; sums below 2**-126
    become a zero with the sum's sign (flush to zero); an exact zero sum is +0 unless both addends are
    -0; overflow gives a signed infinity; inf - inf and NaN inputs give the canonical NaN
    ``0x7FC00000``. ``-inf + x = -inf`` for finite x, which attention masking relies on.

    Datapath: order by magnitude (the sticky bit from the smaller operand's trailing-zero count beside
    the compare); align the smaller significand with guard and round bits; add/subtract in one
    28-bit carry chain; normalize with a leading-zero count tree; round; pack.  Stage depth on ECP5
    (LFE5U-25F alone, seed 1): 11.21 ns, 89.21 MHz (the stage-0 sticky test); the old shifter cascade
    was 12.89 ns alone and 14.83 ns in the 2D array's column combine (rtl/README.md, "bf16 routed").

    Parameters
    ----------
    subtract : bool
        Compute ``a - b`` (b's sign bit is inverted at the input; golden ``bf16.fp32_sub``).
    latency : int
        Registered stage boundaries, 0..4 (default 4: after operand ordering, after the add, after
        normalization, at the output).

    Members
    -------
    a, b : In(32)
        fp32 bit patterns.
    result : Out(32)
        fp32 bit pattern, ``latency`` cycles after ``a`` and ``b``; one result per cycle.
    """

    a: In(32)
    b: In(32)
    result: Out(32)

    BOUNDARIES = 4

    def __init__(self, *, subtract: bool = False, latency: int = 4):
        check_latency(self, self.BOUNDARIES, latency)
        self._pipe_latency = latency
        self.subtract = bool(subtract)
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from an input to its result."""
        return self._pipe_latency

    def elaborate(self, platform):
        m = Module()
        p = Pipeline(m, self.BOUNDARIES, self._pipe_latency)
        a = self.a
        b = Cat(self.b[0:31], ~self.b[31]) if self.subtract else self.b
        sa, ea, fa = fields32(a)
        sb, eb, fb = fields32(b)
        ka = Mux(ea == 0, 0, a[0:31])                    # magnitude keys, subnormals flushed
        kb = Mux(eb == 0, 0, b[0:31])
        ia, ib = (ea == 0xFF) & (fa == 0), (eb == 0xFF) & (fb == 0)
        nan = ((ea == 0xFF) & (fa != 0)) | ((eb == 0xFF) & (fb != 0)) | (ia & ib & (sa != sb))
        special = Mux(nan, FP32_NAN, Mux(ia, signed_inf(sa), signed_inf(sb)))
        # the order compares the raw magnitudes: a flushed subnormal is below every normal either way,
        # and between two (flushed) zeros the choice does not reach the result (a zero sum takes
        # zero_sign); so no flush logic sits in front of the compare's carry chain
        swap = b[0:31] > a[0:31]
        k_l = Mux(swap, kb, ka)
        k_s = Mux(swap, ka, kb)
        e_l = k_l[23:31]
        # the alignment shift e_l - e_s (>= 0: k_l >= k_s), clamped to 31: both differences of the raw
        # exponents are formed beside the magnitude compare and the compare only selects one (a flushed
        # key's exponent is its raw exponent, 0), so no subtraction follows the compare's carry chain
        d_ab, d_ba = Signal(8), Signal(8)
        m.d.comb += [d_ab.eq(ea - eb), d_ba.eq(eb - ea)]
        za, zb = ea == 0, eb == 0                        # zero tests beside the compare, selected by it
        # sticky: some bit of the smaller significand is shifted below the round bit, i.e. its trailing
        # zero count + 3 <= the shift; counted for both orders beside the compare (the hidden one makes
        # each count <= 23, so the shift's clamp at 31 does not matter), so the alignment's shifter
        # feeds the add directly instead of through an OR of the shifted-out bits
        _, tz_a = leading_zeros(m, Cat(Const(0, 8), *reversed(list(Cat(fa, 1)))), "tz_a")
        _, tz_b = leading_zeros(m, Cat(Const(0, 8), *reversed(list(Cat(fb, 1)))), "tz_b")
        sticky_a, sticky_b = Signal(), Signal()          # a (or b) is the smaller one
        m.d.comb += [sticky_a.eq(~za & (d_ba >= tz_a + 3)), sticky_b.eq(~zb & (d_ab >= tz_b + 3))]
        s0 = p.stage(sign_l=Mux(swap, sb, sa), sub=sa ^ sb, zero_sign=sa & sb, e_l=e_l,
                     sig_l=Mux(Mux(swap, zb, za), 0, Cat(k_l[0:23], 1)),
                     sig_s=Mux(Mux(swap, za, zb), 0, Cat(k_s[0:23], 1)),
                     shift=Mux(swap, Mux(d_ba >= 31, 31, d_ba[0:5]), Mux(d_ab >= 31, 31, d_ab[0:5])),
                     sticky=Mux(swap, sticky_a, sticky_b), is_special=nan | ia | ib, special=special)

        # align: 27-bit significands (1.23 + guard, round, sticky); then one carry chain adds or
        # subtracts (big + ~aligned + 1, the carry-in as a low bit of both addends; big >= aligned, so
        # a difference's carry out is dropped)
        aligned = Cat(s0.sticky, (Cat(Const(0, 3), s0.sig_s) >> s0.shift)[1:27])
        big = Cat(Const(0, 3), s0.sig_l)
        total = Signal(29)
        m.d.comb += total.eq(Cat(Const(1, 1), big) + Cat(s0.sub, aligned ^ s0.sub.replicate(27)))
        z = Cat(total[1:28], total[28] & ~s0.sub)
        s1 = p.stage(z=z, e_l=s0.e_l, sign_l=s0.sign_l, zero_sign=s0.zero_sign,
                     is_special=s0.is_special, special=s0.special)

        # normalize: leading one to bit 26, or shift right once on a carry into bit 27.  The leading-zero
        # count is a tree over the sum's bits (not read off a cascade of shifted copies), so each bit
        # of the count is ready after about log2 of its group's width; the 16/8/4/2/1 shifter takes
        # the count's high bit first, and the exponent's subtraction starts from the count alone.
        # A zero sum is flagged separately (its count and exponent are not used)
        v = s1.z[0:27]
        _, left = leading_zeros(m, Cat(Const(0, 5), v), "norm")     # 32 bits, v's top bit first: 0..26 unless zero
        shifted = v
        for k in (16, 8, 4, 2, 1):                       # each step its own signal (read twice by the next)
            step = Signal(27, name=f"norm{k}")
            m.d.comb += step.eq(Mux(left[k.bit_length() - 1], Cat(Const(0, k), shifted[0:27 - k]), shifted))
            shifted = step
        carry = s1.z[27]
        zn = Mux(carry, Cat(s1.z[1] | s1.z[0], s1.z[2:28]), shifted)
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(Mux(carry, s1.e_l + 1, s1.e_l - left))
        s2 = p.stage(zn=zn[0:27], exp=exponent, is_zero=s1.z == 0, sign_l=s1.sign_l,
                     zero_sign=s1.zero_sign, is_special=s1.is_special, special=s1.special)

        # round and pack.  Nothing waits for the rounding's carry chain but the output register: the
        # carry out of the 24-bit significand (all ones, rounded up) is known beside it, and then the
        # packed fraction rounded[0:23] is 0 either way (1.0 after the carry, shifted right once); the
        # exponent, its overflow and underflow tests are formed for both cases and selected by it
        # (one stage with the carry's shift, exponent add and range compares in series was 13.7 ns on ECP5)
        grs = s2.zn[0:3]
        up = (grs > 4) | ((grs == 4) & s2.zn[3])
        rounded = Signal(24)
        m.d.comb += rounded.eq(s2.zn[3:27] + up)
        rcarry = up & (s2.zn[3:27] == 0xFFFFFF)
        exp_up = Signal(signed(11))
        m.d.comb += exp_up.eq(s2.exp + 1)
        over = Mux(rcarry, s2.exp >= 254, s2.exp >= 255)
        under = Mux(rcarry, s2.exp <= -1, s2.exp <= 0)
        packed = Cat(rounded[0:23], Mux(rcarry, exp_up[0:8], s2.exp[0:8]), s2.sign_l)
        out = Mux(s2.is_special, s2.special,
                  Mux(s2.is_zero, signed_zero(s2.zero_sign),
                      Mux(over, signed_inf(s2.sign_l), Mux(under, signed_zero(s2.sign_l), packed))))
        s3 = p.stage(result=out)
        m.d.comb += self.result.eq(s3.result)
        return m
