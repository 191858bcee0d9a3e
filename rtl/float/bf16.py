"""The ``bf16`` number format's datapath: the RTL twin of :class:`einloom.sim.formats.bf16.Bf16Format`.

Q, K, V travel as bf16 (16 bits); QK, psums, RM, SLN, PRM, SLD, RD, RNV and the reciprocal are fp32
(32 bits); AV leaves as bf16 (or fp32 with ``output: fp32``). Importing this module registers the
format with :func:`einloom.rtl.units.units_for`.

The 2D PE's ``product`` (bf16 x bf16, exact) and ``accumulate`` (an fp32 add) and the 1D PE's SLD add
are combinational instances of the units (``latency=0``): the PE registers the product, and an
accumulation loops on its add within a cycle.  ``exp_unit``, ``recip_unit`` (one for the whole 1D
array), ``output_unit`` and ``rescale_unit`` (RD, RNV) are fully pipelined.  ``accumulate_unit`` is
the pipelined OS accumulation (``Fp32Accumulator``, the format's ``acc_latency`` interleaved partial sums).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float.accumulate import Fp32Accumulator, Fp32PartialSum
from einloom.rtl.float.add import Fp32Add
from einloom.rtl.float.convert import Fp32ToBf16
from einloom.rtl.float.exp import Fp32Exp
from einloom.rtl.float.mul import Bf16Mul, Fp32Mul
from einloom.rtl.float.recip import Fp32Recip
from einloom.rtl.units import register
from einloom.rtl.units.base import DatapathUnits
from einloom.sim.formats.bf16 import Bf16Format

__all__ = ["Bf16ExpDiff", "Bf16Output", "Bf16Reciprocal", "Bf16Rescale", "Bf16Units", "fp32_greater"]


def fp32_greater(a: Value, b: Value) -> Value:
    """1 when fp32 ``a > b``: subnormals read as signed zeros, ``-0 < +0`` (agrees with ``fp32_max``
    for all non-NaN inputs; NaN is never produced by the attention datapath)."""
    def key(x):
        x = Mux(x[23:31] == 0, Cat(Const(0, 31), x[31]), x)
        return Mux(x[31], Cat(~x[0:31], Const(0, 1)), Cat(x[0:31], Const(1, 1)))
    return key(a) > key(b)


class Bf16ExpDiff(wiring.Component):
    """``y = exp(scale * (x - m))`` in fp32 (golden model: ``Bf16Format.exp_diff``).

    ``Fp32Add`` (subtract) -> ``Fp32Mul`` by the fp32 constant ``scale`` (left out when ``scale_bits``
    is None) -> ``Fp32Exp``, each fully pipelined.

    Parameters
    ----------
    scale_bits : int or None
        fp32 bit pattern of the scale, or None for no scaling.

    Members
    -------
    x, m : In(32)
        fp32 bit patterns (for attention ``x <= m``; any inputs are handled, e.g. ``x = -inf`` gives 0).
    y : Out(32)
        fp32 bit pattern, ``latency`` cycles later (18 with scaling, 15 without); one per cycle.
    """

    x: In(32)
    m: In(32)
    y: Out(32)

    def __init__(self, scale_bits: int | None):
        self.scale_bits = scale_bits
        super().__init__()

    @property
    def latency(self) -> int:
        """Cycles from ``x``, ``m`` to ``y``."""
        mul = Fp32Mul.BOUNDARIES if self.scale_bits is not None else 0
        return Fp32Add.BOUNDARIES + mul + Fp32Exp.SPLIT_BOUNDARIES

    def elaborate(self, platform):
        m = Module()
        m.submodules.subtract = sub = Fp32Add(subtract=True)
        m.submodules.exponential = exp = Fp32Exp(split=True, latency=Fp32Exp.SPLIT_BOUNDARIES)
        m.d.comb += [sub.a.eq(self.x), sub.b.eq(self.m), self.y.eq(exp.result)]
        if self.scale_bits is not None:
            m.submodules.scale = mul = Fp32Mul()
            m.d.comb += [mul.a.eq(sub.result), mul.b.eq(self.scale_bits), exp.a.eq(mul.result)]
        else:
            m.d.comb += exp.a.eq(sub.result)
        return m


class Bf16Reciprocal(wiring.Component):
    """``y = 1/x`` in fp32 (golden model: ``Bf16Format.reciprocal``): :class:`Fp32Recip` with the
    datapath's port names.

    Members
    -------
    x : In(32)
    y : Out(32)
        ``latency`` (10) cycles after ``x``; one per cycle.
    """

    x: In(32)
    y: Out(32)

    @property
    def latency(self) -> int:
        """Cycles from ``x`` to ``y``."""
        return Fp32Recip.SPLIT_BOUNDARIES

    def elaborate(self, platform):
        m = Module()
        m.submodules.reciprocal = r = Fp32Recip(split=True, latency=Fp32Recip.SPLIT_BOUNDARIES)
        m.d.comb += [r.a.eq(self.x), self.y.eq(r.result)]
        return m


class Bf16Output(wiring.Component):
    """``y = RNV * recip`` rounded to the output format (golden model: ``Bf16Format.output``):
    :class:`Fp32Mul`, then :class:`Fp32ToBf16` for a bf16 output, both fully pipelined.

    Parameters
    ----------
    bf16_output : bool
        Round the fp32 product to bf16 (16-bit ``y``) or leave it fp32 (32-bit ``y``).

    Members
    -------
    rnv, recip : In(32)
    y : Out(16 or 32)
        ``latency`` cycles after the inputs (4 for a bf16 output, 3 for fp32); one per cycle.
    """

    def __init__(self, bf16_output: bool = True):
        self.bf16_output = bool(bf16_output)
        super().__init__({"rnv": In(32), "recip": In(32), "y": Out(16 if self.bf16_output else 32)})

    @property
    def latency(self) -> int:
        """Cycles from ``rnv``, ``recip`` to ``y``."""
        return Fp32Mul.BOUNDARIES + (Fp32ToBf16.BOUNDARIES if self.bf16_output else 0)

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiply = mul = Fp32Mul()
        m.d.comb += [mul.a.eq(self.rnv), mul.b.eq(self.recip)]
        if self.bf16_output:
            m.submodules.round = rnd = Fp32ToBf16()
            m.d.comb += [rnd.a.eq(mul.result), self.y.eq(rnd.result)]
        else:
            m.d.comb += self.y.eq(mul.result)
        return m


class Bf16Rescale(wiring.Component):
    """``y = prm * (first ? +0 : old) + addend`` in fp32 (golden model: ``Bf16Format.rescale_add``):
    :class:`Fp32Mul` then :class:`Fp32Add`, both fully pipelined (latency 3 + 4 = 7); ``addend`` waits
    for the add.  (With one register after each, latency 2, the whole multiply and the whole add were
    one stage each, about 25 and 30 ns on ECP5.)

    ``first`` (a block's first tile rescales zero) clears only ``old``'s sign and exponent: a zero
    exponent makes the multiplier's result its special case (a signed zero, or NaN for an infinite
    ``prm``), whatever the fraction, so the fraction goes from ``old``'s register straight into the
    24x24 multiply.  (The caller's ``first ? 0 : old`` in front of the multiply was the routed 2x2
    bf16 core's critical path: ``rd_first`` -> select -> the DSP -> the product register, 16.69 ns.)

    Members
    -------
    prm, old, addend : In(32)
    first : In(1)
        Take ``old`` as +0.
    y : Out(32)
        ``latency`` cycles after the inputs; one per cycle.
    """

    prm: In(32)
    old: In(32)
    addend: In(32)
    first: In(1)
    y: Out(32)

    latency = Fp32Mul.BOUNDARIES + Fp32Add.BOUNDARIES

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiply = mul = Fp32Mul()
        m.submodules.add = add = Fp32Add()
        addend = self.addend
        for i in range(mul.latency):
            delayed = Signal(32, name=f"addend{i}", reset_less=True)
            m.d.sync += delayed.eq(addend)
            addend = delayed
        old = Cat(self.old[0:23], Mux(self.first, 0, self.old[23:32]))
        m.d.comb += [mul.a.eq(self.prm), mul.b.eq(old), add.a.eq(mul.result), add.b.eq(addend),
                     self.y.eq(add.result)]
        return m


def _comb(m: Module, unit: wiring.Component, **inputs: Value) -> Value:
    m.submodules += unit
    m.d.comb += [getattr(unit, k).eq(v) for k, v in inputs.items()]
    return unit.result


class Bf16Units(DatapathUnits):
    """bf16/fp32 arithmetic for the attention datapath (see :class:`Bf16Format` for the semantics)."""

    def __init__(self, fmt: Bf16Format):
        self.fmt = fmt
        self.input_shape = unsigned(16)
        self.mult_shape = unsigned(16)
        self.product_shape = unsigned(32)
        self.acc_shape = unsigned(32)
        self.prob_shape = unsigned(32)
        self.den_shape = unsigned(32)
        self.recip_shape = unsigned(32)
        self.output_shape = unsigned(fmt.output_bits)

    def input_to_mult(self, m, x):
        return x

    def prob_to_mult(self, m, w):
        return _comb(m, Fp32ToBf16(latency=0), a=w)

    def product(self, m, a, b):
        return _comb(m, Bf16Mul(latency=0), a=a, b=b)

    #: the 2D PE's multiply: operand registers, then :class:`Bf16Mul` with its two stages (the 8x8
    #: significand product with the exponent and specials; normalization and packing).  With one
    #: stage for the whole multiply the product was the bf16 array's longest path (15.5 ns on ECP5).
    product_latency = 1 + Bf16Mul.BOUNDARIES

    def registered_product(self, m, a, b, name="mult"):
        a_reg = Signal(16, name=f"{name}_a", reset_less=True)
        b_reg = Signal(16, name=f"{name}_b", reset_less=True)
        m.d.sync += [a_reg.eq(a), b_reg.eq(b)]
        m.submodules[name] = mul = Bf16Mul(latency=Bf16Mul.BOUNDARIES)
        m.d.comb += [mul.a.eq(a_reg), mul.b.eq(b_reg)]
        return mul.result

    def accumulate(self, m, base, prod):
        return _comb(m, Fp32Add(latency=0), a=base, b=prod)

    @property
    def acc_latency(self) -> int:
        """L of :meth:`accumulate_unit` (the format's ``acc_latency``: the QK sum's partial sums)."""
        return self.fmt.acc_latency

    def accumulate_unit(self):
        """:class:`Fp32Accumulator` of latency ``acc_latency`` (bit-exact with ``Bf16Format.dot``)."""
        return Fp32Accumulator(latency=self.fmt.acc_latency)

    def acc_adder(self):
        """:class:`Fp32Add` of latency ``acc_latency`` (the PE's OS loop and WS chain)."""
        return Fp32Add(latency=self.fmt.acc_latency)

    def partial_sum(self):
        """:class:`Fp32PartialSum` of the ``acc_latency`` partial sums (the array's drain)."""
        return Fp32PartialSum(latency=self.fmt.acc_latency)

    def greater(self, m, a, b):
        return fp32_greater(a, b)

    def prob_add(self, m, den, prob):
        return _comb(m, Fp32Add(latency=0), a=den, b=prob)

    @property
    def exp_latency(self) -> int:
        """Latency of :meth:`exp_unit` (18 with the score scale, 15 without)."""
        return Fp32Add.BOUNDARIES + (Fp32Mul.BOUNDARIES if self.fmt.scale else 0) + Fp32Exp.SPLIT_BOUNDARIES

    @property
    def recip_latency(self) -> int:
        """Latency of :meth:`recip_unit` (10)."""
        return Fp32Recip.SPLIT_BOUNDARIES

    @property
    def output_latency(self) -> int:
        """Latency of :meth:`output_unit` (4 with a bf16 output, 3 with fp32)."""
        return Fp32Mul.BOUNDARIES + (Fp32ToBf16.BOUNDARIES if self.fmt.output_kind == "bf16" else 0)

    @property
    def rescale_latency(self) -> int:
        """Latency of :meth:`rescale_unit` (7)."""
        return Bf16Rescale.latency

    def rescale_unit(self, kind):
        return Bf16Rescale()

    def exp_unit(self):
        return Bf16ExpDiff(self.fmt.scale_bits if self.fmt.scale else None)

    def recip_unit(self):
        return Bf16Reciprocal()

    def output_unit(self):
        return Bf16Output(self.fmt.output_kind == "bf16")


register("bf16", Bf16Units)
