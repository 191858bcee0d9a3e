"""fp32 reciprocal: table seed + two Newton-Raphson steps."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_NAN, fields32, finish, signed_inf, signed_zero
from einloom.rtl.float.pipeline import Pipeline, check_latency
from einloom.sim.formats.bf16 import RECIP_SEED_TABLE

__all__ = ["Fp32Recip"]


class Fp32Recip(wiring.Component):
    """``1/x`` for fp32 ``x`` (golden model: ``einloom.sim.formats.bf16.fp32_recip``).

    The significand ``m`` (1.23) indexes a 128-entry seed table (12-bit ``1/m`` at the interval
    midpoints, ~2**-8 relative error) by its top 7 fraction bits; two Newton-Raphson steps
    ``y = y * (2 - m*y)`` in 2.30 fixed point (four multipliers, 24x32 and 32x32) give ~30 bits; the
    24-bit significand is rounded half up; the exponent is ``253 - e`` (``254 - e`` when ``m = 1``).
    Error <= 0.515 fp32 ulp measured over every significand (``bf16.RECIP_MAX_ULP`` is the tested
    bound). Meant for one reciprocal per query row (the softmax denominator), not per element.

    Specials: ``±0`` and subnormals give ``±inf``, ``±inf`` gives ``±0``, NaN gives ``0x7FC00000``;
    results below 2**-126 are signed zeros (flush to zero).

    Parameters
    ----------
    latency : int
        Registered stage boundaries, 0..6 (default 6: seed, each of the four multiplies, output);
        0..10 with ``split`` (:attr:`SPLIT_BOUNDARIES`).
    split : bool
        Each multiply as registered 17-bit partial products (one hard multiplier each) and their sum
        in the next stage: four more boundaries (the attention core's bf16 reciprocal, built at 10).

    Members
    -------
    a : In(32)
        fp32 bit pattern of x.
    result : Out(32)
        fp32 bit pattern of 1/x, ``latency`` cycles after ``a``; one result per cycle.
    """

    a: In(32)
    result: Out(32)

    BOUNDARIES = 6
    SPLIT_BOUNDARIES = 10

    def __init__(self, *, latency: int = 6, split: bool = False):
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
        m.submodules.seed_table = table = memory.Memory(shape=12, depth=128, init=RECIP_SEED_TABLE)
        rd = table.read_port(domain="comb")              # a ROM: 1/m at the interval midpoints, 1.11
        m.d.comb += rd.addr.eq(f[16:23])
        seed = rd.data
        special = Mux((e == 0xFF) & (f != 0), FP32_NAN,
                      Mux(e == 0xFF, signed_zero(s), signed_inf(s)))
        st = p.stage(man=Cat(f, Const(1, 1)), y=Cat(Const(0, 19), seed), e=e, sign=s,
                     is_special=(e == 0) | (e == 0xFF), special=special)
        keep = dict(man=st.man, e=st.e, sign=st.sign, is_special=st.is_special, special=st.special)
        y = st.y

        def fields(st):
            return dict(man=st.man, e=st.e, sign=st.sign, is_special=st.is_special, special=st.special)

        for _ in range(2):
            # with ``split`` each multiply's partial products have a stage, their sum the next (a 32x32
            # multiply and its add in one stage were the unit's longest path, 15.3 ns on ECP5)
            prod, st = p.product(keep["man"], y, self.split, y=y, **keep)
            keep = fields(st)
            my = prod[23:56]                              # m*y as 2.30
            err = Signal(32)
            m.d.comb += err.eq(Const(1 << 31, 33) - my)  # 2 - m*y, positive and < 2**31
            st = p.stage(y=st.y, err=err, **keep)
            keep = fields(st)
            prod, st = p.product(st.y, st.err, self.split, **keep)
            keep = fields(st)
            st = p.stage(y=prod[30:63][0:32], **keep)
            keep = fields(st)
            y = st.y

        ge1 = y[30]                                       # y >= 1.0 (only for m = 1)
        rounded = Mux(ge1, (y + 64)[7:33], (y + 32)[6:33])[0:25]
        over = rounded[24]
        sig = Mux(over, rounded[1:25], rounded[0:24])
        exponent = Signal(signed(11))
        m.d.comb += exponent.eq(Mux(ge1, 254 - keep["e"], 253 - keep["e"]) + over)
        out = Mux(keep["is_special"], keep["special"], finish(keep["sign"], exponent, sig))
        so = p.stage(result=out)
        m.d.comb += self.result.eq(so.result)
        return m
