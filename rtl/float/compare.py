"""fp32 maximum."""

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import FP32_NAN
from einloom.rtl.float.pipeline import Pipeline, check_latency

__all__ = ["Fp32Max"]


def _order_key(x):
    """32-bit unsigned key whose integer order is the float order (-0 < +0); x already flushed."""
    return Mux(x[31], Cat(~x[0:31], Const(0, 1)), Cat(x[0:31], Const(1, 1)))


class Fp32Max(wiring.Component):
    """Larger of two fp32 numbers (golden model: ``bf16.fp32_max``).

    Subnormal inputs read as signed zeros; ``-0 < +0``; ``max(-inf, x) = x`` (masked scores never
    win); a NaN input gives the canonical NaN ``0x7FC00000``. The result is otherwise one of the
    inputs, unchanged.

    Parameters
    ----------
    latency : int
        0 (combinational) or 1 (registered output, the default).

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

    BOUNDARIES = 1

    def __init__(self, *, latency: int = 1):
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
        ea, eb = self.a[23:31], self.b[23:31]
        a = Mux(ea == 0, Cat(Const(0, 31), self.a[31]), self.a)
        b = Mux(eb == 0, Cat(Const(0, 31), self.b[31]), self.b)
        nan = ((ea == 0xFF) & (self.a[0:23] != 0)) | ((eb == 0xFF) & (self.b[0:23] != 0))
        out = Mux(nan, FP32_NAN, Mux(_order_key(a) >= _order_key(b), a, b))
        s = p.stage(result=out)
        m.d.comb += self.result.eq(s.result)
        return m
