"""Multipliers: bf16 x bf16 -> fp32 (exact) and fp32 x fp32 -> fp32 (round to nearest even)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_NAN, fields32, finish, signed_inf, signed_zero
from einloom.rtl.float.pipeline import PIECE, Pipeline, check_latency, partial_products

__all__ = ["Bf16Mul", "Fp32Mul"]


class Bf16Mul(wiring.Component):
    """Exact product of two bf16 numbers, as fp32 (golden model: ``bf16.bf16_mul``).

    An 8x8-bit significand product fits fp32's 24 bits, so nothing is rounded: ``Fp32Add(acc,
    Bf16Mul(a, b))`` is a fused multiply-add. Products below 2**-126 become signed zeros (flush to
    zero), above the fp32 range signed infinities; subnormal inputs read as zeros; 0 * inf and NaN
    inputs give the canonical NaN ``0x7FC00000``.

    Parameters
    ----------
    latency : int
        Registered stage boundaries, 0..2 (default 2: after the multiplier and at the output).

    Members
    -------
    a, b : In(16)
        bf16 bit patterns.
    result : Out(32)
        fp32 bit pattern, ``latency`` cycles after ``a`` and ``b``; one result per cycle.
    """

    a: In(16)
    b: In(16)
    result: Out(32)

    BOUNDARIES = 2

    def __init__(self, *, latency: int = 2):
        check_latency(self, self.BOUNDARIES, latency)
        self._pipe_latency = latency
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from an input to its result."""
        return self._pipe_latency

    def elaborate(self, platform):
        m = Module()
        p = Pipeline(m, self.BOUNDARIES, self._pipe_latency)
        a, b = self.a, self.b
        ea, fa, eb, fb = a[7:15], a[0:7], b[7:15], b[0:7]
        sign = a[15] ^ b[15]
        za, zb = ea == 0, eb == 0
        ia, ib = (ea == 0xFF) & (fa == 0), (eb == 0xFF) & (fb == 0)
        nan = ((ea == 0xFF) & (fa != 0)) | ((eb == 0xFF) & (fb != 0)) | ((ia | ib) & (za | zb))
        special = Mux(nan, FP32_NAN, Mux(ia | ib, signed_inf(sign), signed_zero(sign)))
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(ea + eb - 127)
        s0 = p.stage(prod=Cat(fa, 1) * Cat(fb, 1), exp=exponent, sign=sign,
                     is_special=nan | ia | ib | za | zb, special=special)

        hi = s0.prod[15]
        sig = Mux(hi, Cat(Const(0, 8), s0.prod), Cat(Const(0, 9), s0.prod[0:15]))
        exp1 = Signal(signed(11))
        m.d.comb += exp1.eq(s0.exp + hi)
        out = Mux(s0.is_special, s0.special, finish(s0.sign, exp1, sig))
        s1 = p.stage(result=out)
        m.d.comb += self.result.eq(s1.result)
        return m


def _significand_product(st) -> Value:
    """The 48-bit product of two 24-bit significands from their partial products (17- and 7-bit
    pieces, :func:`~einloom.rtl.float.pipeline.partial_products`): the low and the high partial
    products do not overlap (a concatenation), so the sum is two adds deep, not three."""
    low, high = st.pp0_0, st.pp1_1
    assert len(low) == 2 * PIECE and len(high) == 2 * (24 - PIECE), (len(low), len(high))
    return Cat(low, high) + ((st.pp0_1 + st.pp1_0) << PIECE)


class Fp32Mul(wiring.Component):
    """fp32 product rounded to nearest even (golden model: ``bf16.fp32_mul``).

    IEEE 754 results for normal numbers; results below 2**-126 after rounding become signed zeros
    (flush to zero), subnormal inputs read as zeros; overflow gives a signed infinity; 0 * inf and
    NaN inputs give the canonical NaN ``0x7FC00000``.

    Parameters
    ----------
    latency : int
        Registered stage boundaries, 0..3 (default 3: after the four partial products of the 24x24
        significand multiply, after their sum and the normalization, at the output).

    Resources: one 18 x 18 hard multiplier (the 17 x 17 partial product); the 17 x 7, 7 x 17 and 7 x 7
    partial products are shift-and-add in logic (about 300 LUTs on ECP5).

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

    BOUNDARIES = 3

    def __init__(self, *, latency: int = 3):
        check_latency(self, self.BOUNDARIES, latency)
        self._pipe_latency = latency
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from an input to its result."""
        return self._pipe_latency

    def elaborate(self, platform):
        m = Module()
        p = Pipeline(m, self.BOUNDARIES, self._pipe_latency)
        sa, ea, fa = fields32(self.a)
        sb, eb, fb = fields32(self.b)
        sign = sa ^ sb
        za, zb = ea == 0, eb == 0
        ia, ib = (ea == 0xFF) & (fa == 0), (eb == 0xFF) & (fb == 0)
        nan = ((ea == 0xFF) & (fa != 0)) | ((eb == 0xFF) & (fb != 0)) | ((ia | ib) & (za | zb))
        special = Mux(nan, FP32_NAN, Mux(ia | ib, signed_inf(sign), signed_zero(sign)))
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(ea + eb - 127)
        # the four partial products of the 24-bit significands are stage 0's registers, their sum is
        # stage 1's (the operand register -> the multipliers -> their sum -> the product register, one
        # stage, was the routed 2x2 bf16 core's path: 19.09 ns, 52.41 MHz).  Only the 17 x 17 product
        # takes a hard multiplier: the three with a 7-bit piece are shift-and-add in logic (four
        # MULT18X18D per multiply filled the 85F's 156 with the 4x4 bf16 core's units)
        s0 = p.stage(**partial_products(Cat(fa, 1), Cat(fb, 1), fabric_width=24 - PIECE), exp=exponent, sign=sign,
                     is_special=nan | ia | ib | za | zb, special=special)

        prod = Signal(48)                                # leading one at bit 47 or 46
        m.d.comb += prod.eq(_significand_product(s0))
        hi = prod[47]
        sig = Mux(hi, prod[24:48], prod[23:47])
        guard = Mux(hi, prod[23], prod[22])
        sticky = Mux(hi, prod[0:23] != 0, prod[0:22] != 0)
        exp1 = Signal(signed(11))
        m.d.comb += exp1.eq(s0.exp + hi)
        s1 = p.stage(sig=sig, up=guard & (sticky | sig[0]), exp=exp1, sign=s0.sign,
                     is_special=s0.is_special, special=s0.special)

        rounded = Signal(25)
        m.d.comb += rounded.eq(s1.sig + s1.up)
        carry = rounded[24]
        exp2 = Signal(signed(11))
        m.d.comb += exp2.eq(s1.exp + carry)
        sig2 = Mux(carry, rounded[1:25], rounded[0:24])
        out = Mux(s1.is_special, s1.special, finish(s1.sign, exp2, sig2))
        s2 = p.stage(result=out)
        m.d.comb += self.result.eq(s2.result)
        return m
