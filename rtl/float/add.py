"""fp32 adder (round to nearest even, flush to zero)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_NAN, fields32, signed_inf, signed_zero
from einloom.rtl.float.pipeline import Pipeline, check_latency

__all__ = ["Fp32Add"]


class Fp32Add(wiring.Component):
    """fp32 sum ``a + b`` (or ``a - b``), rounded to nearest even (golden model: ``bf16.fp32_add``).

    IEEE 754 results for normal numbers. Subnormal inputs read as signed zeros; sums below 2**-126
    become a zero with the sum's sign (flush to zero); an exact zero sum is +0 unless both addends are
    -0; overflow gives a signed infinity; inf - inf and NaN inputs give the canonical NaN
    ``0x7FC00000``. ``-inf + x = -inf`` for finite x, which attention masking relies on.

    Datapath: order by magnitude; align the smaller significand with guard, round and sticky bits;
    add/subtract (28 bits); normalize with a leading-zero count; round; pack.

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
        e_l, e_s = k_l[23:31], k_s[23:31]
        # the alignment shift e_l - e_s (>= 0: k_l >= k_s), clamped to 31: both differences of the raw
        # exponents are formed beside the magnitude compare and the compare only selects one (a flushed
        # key's exponent is its raw exponent, 0), so no subtraction follows the compare's carry chain
        d_ab, d_ba = Signal(8), Signal(8)
        m.d.comb += [d_ab.eq(ea - eb), d_ba.eq(eb - ea)]
        za, zb = ea == 0, eb == 0                        # zero tests beside the compare, selected by it
        s0 = p.stage(sign_l=Mux(swap, sb, sa), sub=sa ^ sb, zero_sign=sa & sb, e_l=e_l,
                     sig_l=Mux(Mux(swap, zb, za), 0, Cat(k_l[0:23], 1)),
                     sig_s=Mux(Mux(swap, za, zb), 0, Cat(k_s[0:23], 1)),
                     shift=Mux(swap, Mux(d_ba >= 31, 31, d_ba[0:5]), Mux(d_ab >= 31, 31, d_ab[0:5])),
                     is_special=nan | ia | ib, special=special)

        # align: 27-bit significands (1.23 + guard, round, sticky); shifted-out bits OR into sticky
        wide = Cat(Const(0, 32), Const(0, 3), s0.sig_s) >> s0.shift
        aligned = Cat(wide[32] | (wide[0:32] != 0), wide[33:59])
        big = Cat(Const(0, 3), s0.sig_l)
        z = Signal(28)
        m.d.comb += z.eq(Mux(s0.sub, big - aligned, big + aligned))
        s1 = p.stage(z=z, e_l=s0.e_l, sign_l=s0.sign_l, zero_sign=s0.zero_sign,
                     is_special=s0.is_special, special=s0.special)

        # normalize: leading one to bit 26 by a 16/8/4/2/1 shifter cascade (the leading-zero count is
        # the sum of the shifts taken; a zero sum takes them all and is flagged separately), or
        # shift right once on a carry into bit 27
        v = s1.z[0:27]
        taken = []
        for k in (16, 8, 4, 2, 1):
            empty = Signal(name=f"lz{k}")
            shifted = Signal(27, name=f"norm{k}")
            m.d.comb += [empty.eq(v[27 - k:27] == 0), shifted.eq(Mux(empty, Cat(Const(0, k), v[0:27 - k]), v))]
            v = shifted
            taken.append(empty)
        left = Cat(*reversed(taken))                     # bit 4 = shifted by 16, ..., bit 0 = by 1
        carry = s1.z[27]
        zn = Mux(carry, Cat(s1.z[1] | s1.z[0], s1.z[2:28]), v)
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
