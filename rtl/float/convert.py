"""bf16 <-> fp32 conversion units."""

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.common import BF16_NAN, FP32_NAN
from einloom.rtl.float.pipeline import Pipeline, check_latency

__all__ = ["Bf16ToFp32", "Fp32ToBf16"]


class Bf16ToFp32(wiring.Component):
    """Widen bf16 to fp32 (golden model: ``einloom.sim.formats.bf16.bf16_to_fp32``).

    Exact for normal numbers, zeros and infinities; a subnormal becomes a signed zero; a NaN becomes
    the canonical NaN ``0x7FC00000``.

    Parameters
    ----------
    latency : int
        0 (combinational) or 1 (registered output, the default).

    Members
    -------
    a : In(16)
        bf16 bit pattern.
    result : Out(32)
        fp32 bit pattern, ``latency`` cycles after ``a``; one result per cycle.
    """

    a: In(16)
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
        a = self.a
        e, f = a[7:15], a[0:7]
        out = Mux(e == 0, Cat(Const(0, 31), a[15]),
                  Mux((e == 0xFF) & (f != 0), FP32_NAN, Cat(Const(0, 16), a)))
        s = p.stage(result=out)
        m.d.comb += self.result.eq(s.result)
        return m


class Fp32ToBf16(wiring.Component):
    """Round fp32 to bf16, nearest-even (golden model: ``bf16.fp32_to_bf16``).

    Overflow rounds to a signed infinity; a subnormal input becomes a signed zero; a NaN becomes
    ``0x7FC0``. Equals ml_dtypes' float32 -> bfloat16 cast for all other inputs.

    Parameters
    ----------
    latency : int
        0 (combinational) or 1 (registered output, the default).

    Members
    -------
    a : In(32)
        fp32 bit pattern.
    result : Out(16)
        bf16 bit pattern, ``latency`` cycles after ``a``; one result per cycle.
    """

    a: In(32)
    result: Out(16)

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
        a = self.a
        e, f = a[23:31], a[0:23]
        rounded = (a + 0x7FFF + a[16])[16:32]
        out = Mux(e == 0, Cat(Const(0, 15), a[31]),
                  Mux(e == 0xFF, Mux(f != 0, BF16_NAN, a[16:32]), rounded))
        s = p.stage(result=out)
        m.d.comb += self.result.eq(s.result)
        return m
