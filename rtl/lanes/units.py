"""The RTL lane's functional units (bf16 format: fp32 values), one per op class a program uses.

Each unit takes two fp32 operands ``a``, ``b`` and a small ``mode`` and gives ``result`` ``latency``
cycles later, one operation per cycle (the float units of :mod:`einloom.rtl.float`, pipelined):

========  =====================================================  ====================================
class     computes (golden: ``Fp32Arith``)                        latency
========  =====================================================  ====================================
add       ``fp32_add(a, b)``; mode 1: ``a - b`` (b's sign flipped)  ``Fp32Add`` (4)
mul       ``fp32_mul(a, b)``                                      ``Fp32Mul`` (3)
max       ``fp32_max(a, b)``; mode 1: ``min = -max(-a, -b)``       ``Fp32Max`` (1)
exp       mode 1: ``fp32_exp(fp32_mul(a, b))`` (b the folded        ``Fp32Mul`` + ``Fp32Exp`` (3 + 8)
          constant); mode 0: ``fp32_exp(a)`` (the multiply bypassed)
recip     ``fp32_recip(a)``                                       ``Fp32Recip`` (6)
div       ``fp32_mul(a, fp32_recip(b))`` (deferred division)      ``Fp32Recip`` + ``Fp32Mul`` (6 + 3)
log       ``fp32_log(a)`` (table-driven, <= 0.75 ulp)             ``LogUnit`` (6, :mod:`.fn_units`)
========  =====================================================  ====================================

Operator units (``fn #name``, :func:`register_fn_unit`): ``relu`` (:class:`ReluUnit`, 1) and
``sigmoid`` (``fp32_sigmoid``: exp, add and reciprocal in series, :class:`~.fn_units.SigmoidUnit`, 18).
The fixed-point lanes' units are in :mod:`.fixed_units` (``log``: ``FixedLogUnit``; operators
``relu`` and ``sigmoid``: ``FixedReluUnit``, ``FixedSigmoidUnit``).

The lane adds two cycles to each (the operand register after the issue and the register file's
write), which is the latency the program's schedule uses (:func:`schedule_latency`).  Compare,
select/move, int-to-float and coordinate operations are combinational in the lane (2 cycles).
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.float import Fp32Add, Fp32Exp, Fp32Max, Fp32Mul, Fp32Recip
from einloom.rtl.lanes.fixed_units import FixedReluUnit, FixedSigmoidUnit
from einloom.rtl.lanes.fn_units import LogUnit, SigmoidUnit

if TYPE_CHECKING:
    from einloom.sim.formats.fixed import FixedParams

SIGN = 0x80000000


class _Unit(wiring.Component):
    """Two fp32 operands and a mode in, a result ``latency`` cycles later."""

    latency: int = 0

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "mode": In(1), "result": Out(32)})


def _delay(m: Module, x, n: int, name: str):
    for i in range(n):
        s = Signal(x.shape(), name=f"{name}_d{i}", reset_less=True)
        m.d.sync += s.eq(x)
        x = s
    return x


class AddUnit(_Unit):
    """``a + b``, or ``a - b`` in mode 1 (``Fp32Add``)."""

    def __init__(self):
        super().__init__()
        self.add = Fp32Add()
        self.latency = self.add.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.add = add = self.add
        m.d.comb += [add.a.eq(self.a), add.b.eq(self.b ^ Mux(self.mode, SIGN, 0)), self.result.eq(add.result)]
        return m


class MulUnit(_Unit):
    """``a * b`` (``Fp32Mul``)."""

    def __init__(self):
        super().__init__()
        self.mul = Fp32Mul()
        self.latency = self.mul.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = self.mul
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b), self.result.eq(mul.result)]
        return m


class MaxUnit(_Unit):
    """``max(a, b)``, or ``min(a, b) = -max(-a, -b)`` in mode 1 (``Fp32Max``)."""

    def __init__(self):
        super().__init__()
        self.max = Fp32Max()
        self.latency = self.max.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.max = mx = self.max
        flip = Mux(self.mode, SIGN, 0)
        late = _delay(m, self.mode, self.latency, "mode")
        m.d.comb += [mx.a.eq(self.a ^ flip), mx.b.eq(self.b ^ flip),
                     self.result.eq(mx.result ^ Mux(late, SIGN, 0))]
        return m


class ExpUnit(_Unit):
    """``exp(a * b)`` in mode 1 (the folded constant ``b``), ``exp(a)`` in mode 0."""

    def __init__(self):
        super().__init__()
        self.mul, self.exp = Fp32Mul(), Fp32Exp()
        self.latency = self.mul.latency + self.exp.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul, m.submodules.exp = mul, exp = self.mul, self.exp
        late_a = _delay(m, self.a, self.mul.latency, "a")
        late_mode = _delay(m, self.mode, self.mul.latency, "mode")
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b), exp.a.eq(Mux(late_mode, mul.result, late_a)),
                     self.result.eq(exp.result)]
        return m


class RecipUnit(_Unit):
    """``1 / a`` (``Fp32Recip``)."""

    def __init__(self):
        super().__init__()
        self.recip = Fp32Recip()
        self.latency = self.recip.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.recip = r = self.recip
        m.d.comb += [r.a.eq(self.a), self.result.eq(r.result)]
        return m


class DivUnit(_Unit):
    """``a * (1 / b)``: the deferred division (``Fp32Recip`` then ``Fp32Mul``)."""

    def __init__(self):
        super().__init__()
        self.recip, self.mul = Fp32Recip(), Fp32Mul()
        self.latency = self.recip.latency + self.mul.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.recip, m.submodules.mul = r, mul = self.recip, self.mul
        late_a = _delay(m, self.a, self.recip.latency, "a")
        m.d.comb += [r.a.eq(self.b), mul.a.eq(late_a), mul.b.eq(r.result), self.result.eq(mul.result)]
        return m


class ReluUnit(_Unit):
    """``relu(a)`` as the golden model computes it (``max(x, 0)`` in float64, rounded once): a negative
    number (``-0``, ``-inf`` and negative subnormals included) gives ``+0``, anything else (NaN too)
    passes unchanged.  The example of a user operator's unit (:func:`register_fn_unit`)."""

    latency = 1

    def elaborate(self, platform):
        m = Module()
        nan = (self.a[23:31] == 0xFF) & (self.a[:23] != 0)
        m.d.sync += self.result.eq(Mux(self.a[31] & ~nan, 0, self.a))
        return m


#: op class -> unit class (the pipelined units; cmp, select, cvt and coord are combinational in the lane)
UNITS = {"add": AddUnit, "mul": MulUnit, "max": MaxUnit, "exp": ExpUnit, "recip": RecipUnit, "div": DivUnit,
         "log": LogUnit}
#: map operator name -> unit class for ``fn #name`` instructions (a user operator's RTL twin)
FN_UNITS: dict[str, type] = {}


#: map operator name -> unit class of a fixed-point lane (72-bit ``(code, f)`` words, :mod:`.fixed_units`)
FIXED_FN_UNITS: dict[str, type] = {}


def register_fn_unit(name: str, cls: type, *, fixed: bool = False) -> None:
    """Give the map operator ``name`` (``einloom.einsum.operators``) an RTL unit: ``cls()`` is a
    component with ``a``, ``b`` (fp32), ``mode`` inputs and ``result`` ``cls.latency`` cycles later,
    bit-exact with ``Fp32Arith.apply_float`` of the operator (what the golden model computes).
    ``fixed=True``: the fixed-point lanes' unit, ``cls(params)`` (the ``FixedParams``) on 72-bit
    ``(code, f)`` words (:func:`~einloom.rtl.lanes.fixed_units.pack_value`), bit-exact with
    ``FixedArith.apply_operator``."""
    (FIXED_FN_UNITS if fixed else FN_UNITS)[name] = cls


register_fn_unit("relu", ReluUnit)
register_fn_unit("relu", FixedReluUnit, fixed=True)
register_fn_unit("sigmoid", SigmoidUnit)
register_fn_unit("sigmoid", FixedSigmoidUnit, fixed=True)
COMB = ("cmp", "select", "cvt", "coord")


def _default_latency(cls) -> int:
    return inspect.signature(cls.__init__).parameters["latency"].default


#: pipeline depth of each unit class (the float units' default latencies)
DEPTH = {"add": _default_latency(Fp32Add), "mul": _default_latency(Fp32Mul), "max": _default_latency(Fp32Max),
         "exp": _default_latency(Fp32Mul) + _default_latency(Fp32Exp), "recip": _default_latency(Fp32Recip),
         "div": _default_latency(Fp32Recip) + _default_latency(Fp32Mul), "log": LogUnit.latency}


#: cycles the lane adds to a unit's depth: the operand register and the register-file write
ISSUE_OVERHEAD = 2


def schedule_latency(fixed: "bool | FixedParams" = False) -> dict[str, int]:
    """Op class -> cycles from issue to a readable result in the RTL lane (the unit's depth + the
    operand register + the write).  ``fixed``: a fixed-point lane's units (:mod:`.fixed_units`) built
    with these ``FixedParams`` (their depth can depend on them, e.g. the reciprocal's Newton steps);
    ``True``: with the default ``FixedParams()`` (the int8 and int16 presets' units)."""
    if fixed is not False and fixed is not None:
        from einloom.rtl.lanes.fixed_units import FIXED_UNITS, unit_latency
        from einloom.sim.formats.fixed import FixedParams
        params = FixedParams() if fixed is True else fixed
        lat = {name: unit_latency(cls, params) + ISSUE_OVERHEAD for name, cls in FIXED_UNITS.items()}
        lat.update({c: ISSUE_OVERHEAD for c in COMB})
        lat.update({f"fn:{name}": unit_latency(cls, params) + ISSUE_OVERHEAD for name, cls in FIXED_FN_UNITS.items()})
        return lat
    lat = {name: DEPTH[name] + ISSUE_OVERHEAD for name in UNITS}
    lat.update({c: ISSUE_OVERHEAD for c in COMB})
    lat.update({f"fn:{name}": cls.latency + ISSUE_OVERHEAD for name, cls in FN_UNITS.items()})
    return lat
