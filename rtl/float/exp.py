"""fp32 exponential by base-2 range reduction."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_INF, FP32_NAN, fields32, finish
from einloom.rtl.float.pipeline import Pipeline, check_latency
from einloom.sim.formats.bf16 import EXP_LN2_Q32, EXP_LOG2E_Q31, EXP_TABLE

__all__ = ["Fp32Exp"]


class Fp32Exp(wiring.Component):
    """``e**x`` for fp32 ``x`` (golden model: ``einloom.sim.formats.bf16.fp32_exp``).

    Base-2 range reduction in fixed point: ``|x|`` as 7.25 fixed point (rounded) times log2(e)
    (1.31) gives ``t = n + f`` with 32 fraction bits; ``2**f`` is a 256-entry table of ``2**(i/256)``
    (1.31) times ``1 + a + a*a/2`` with ``a = ln2 * r`` for the low 24 bits ``r`` of f; ``n`` is
    added to the exponent; the 24-bit significand is rounded half up. Error <= 0.81 fp32 ulp
    measured (``bf16.EXP_MAX_ULP`` is the tested bound).

    Specials: ``exp(-inf) = +0`` (masked attention scores), ``exp(+inf) = +inf``, NaN gives
    ``0x7FC00000``; results below 2**-126 are +0 (flush to zero), above the fp32 range +inf;
    zero and subnormal inputs give 1.0.

    Multipliers: 32x32 (log2 e), 24x32 (ln 2), 23x23 (square), 32x32 (table x polynomial).

    Parameters
    ----------
    latency : int
        Registered stage boundaries, 0..8 (default 8: one per multiplier, one after the reduced
        argument's negation, one between the square and the polynomial's add, plus input and
        output); 0..11 with ``split`` (:attr:`SPLIT_BOUNDARIES`).
    split : bool
        The two 32x32 multiplies (log2 e; table x polynomial) as registered 17-bit partial products
        and their sum in the next stage, and the input's shift to fixed point apart from its rounding
        add: three more boundaries (the attention core's bf16 exp, built at 11).

    Members
    -------
    a : In(32)
        fp32 bit pattern of x.
    result : Out(32)
        fp32 bit pattern of e**x, ``latency`` cycles after ``a``; one result per cycle.
    """

    a: In(32)
    result: Out(32)

    BOUNDARIES = 8
    SPLIT_BOUNDARIES = 11

    def __init__(self, *, latency: int = 8, split: bool = False):
        self.split = bool(split)
        self.boundaries = self.SPLIT_BOUNDARIES if self.split else self.BOUNDARIES
        check_latency(self, self.boundaries, latency)
        self._pipe_latency = latency
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from an input to its result."""
        return self._pipe_latency

    def elaborate(self, platform):
        m = Module()
        p = Pipeline(m, self.boundaries, self._pipe_latency)
        s, e, f = fields32(self.a)
        sig = Mux(e == 0, 0, Cat(f, Const(1, 1)))
        # |x| as 7.25 fixed point: sig * 2**(e - 125), rounded half up when shifted right
        lsh = Mux(e >= 133, 8, (e - 125)[0:3])
        rsh = Mux(e <= 94, 31, (125 - e)[0:5])
        left = (sig << lsh)[0:32]
        wide = Cat(Const(0, 32), sig) >> rsh
        flags = dict(sign=s, big=e >= 134, nan=(e == 0xFF) & (f != 0))
        if self.split:
            # the shifts in one stage, the rounding add and the select in the next (all three in one
            # stage were the split unit's longest path, 14.2 ns on ECP5)
            sh = p.stage(left=left, wide=wide[31:56], up=e >= 125, **flags)
            left, right, up = sh.left, sh.wide[1:25] + sh.wide[0], sh.up
            flags = dict(sign=sh.sign, big=sh.big, nan=sh.nan)
        else:
            right, up = wide[32:56] + wide[31], e >= 125
        mag = Mux(up, left, right)
        s0 = p.stage(mag=mag[0:32], **flags)

        # |x| * log2(e) (with ``split``: the partial products, then their sum; one stage for both was
        # 14.0 ns on ECP5)
        prod, sp = p.product(s0.mag, Const(EXP_LOG2E_Q31, 32), self.split, sign=s0.sign, big=s0.big, nan=s0.nan)
        s1 = p.stage(tmag=prod[24:64], sign=sp.sign, big=sp.big, nan=sp.nan)   # 56 fraction bits

        t = Signal(signed(41))
        m.d.comb += t.eq(Mux(s1.sign, -s1.tmag, s1.tmag))
        # the negation's carry chain and the ln2 multiply were one stage (18.1 ns on ECP5): split
        st = p.stage(t=t, sign=s1.sign, big=s1.big, nan=s1.nan)
        n = st.t[32:41].as_signed()                      # floor(t)
        idx, r = st.t[24:32], st.t[0:24]
        a = (r * Const(EXP_LN2_Q32, 32))[33:56]          # r * ln2 as 0.31
        m.submodules.table = table = memory.Memory(shape=32, depth=256, init=EXP_TABLE)
        rd = table.read_port(domain="comb")              # a ROM: 2**(i/256) as 1.31
        m.d.comb += rd.addr.eq(idx)
        s2 = p.stage(n=n, a=a, two_f=rd.data, sign=st.sign, big=st.big, nan=st.nan)

        a2 = (s2.a * s2.a)[32:46]                        # a*a/2 as 0.31
        # the square's DSP and the three-input add were one stage (16.7 ns on ECP5): split
        sq = p.stage(a=s2.a, a2=a2, n=s2.n, two_f=s2.two_f, sign=s2.sign, big=s2.big, nan=s2.nan)
        q = Const(1 << 31, 32) + sq.a + sq.a2
        s3 = p.stage(q=q[0:32], n=sq.n, two_f=sq.two_f, sign=sq.sign, big=sq.big, nan=sq.nan)

        y, sy = p.product(s3.two_f, s3.q, self.split, n=s3.n, sign=s3.sign, big=s3.big, nan=s3.nan)   # 2.62
        s4 = p.stage(y=y[0:64], n=sy.n, sign=sy.sign, big=sy.big, nan=sy.nan)

        two = s4.y[63]
        r1 = s4.y[40:64] + s4.y[39]                      # round half up: add the first dropped bit
        r0 = s4.y[39:64] + s4.y[38]
        rounded = Mux(two, r1, r0)[0:25]
        over = rounded[24]
        sig24 = Mux(over, rounded[1:25], rounded[0:24])
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(s4.n + two + over + 127)
        out = Mux(s4.nan, FP32_NAN,
                  Mux(s4.big, Mux(s4.sign, 0, FP32_INF), finish(Const(0, 1), exponent, sig24)))
        s5 = p.stage(result=out)
        m.d.comb += self.result.eq(s5.result)
        return m
