"""One processing element of the 2D array (Gemmini's PE level)."""
from __future__ import annotations

import enum

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.units.base import DatapathUnits


class PEMode(enum.IntEnum):
    """What every PE of the array does this cycle (broadcast by the controller)."""

    HOLD = 0    #: keep the accumulator
    OS = 1      #: output-stationary MAC: ``acc += a_in * b_in`` (QK)
    SHIFT = 2   #: drain: ``acc = acc_in`` (the accumulator of the PE above)
    WS = 3      #: weight-stationary MAC with the psum moving down: ``acc = acc_in + a_in * w`` (SLNV)


class ProcessingElement(wiring.Component):
    """A multiply-accumulate PE with an output-stationary and a weight-stationary mode.

    Computes, by ``mode`` (:class:`PEMode`): ``acc += a*b`` (OS), ``acc = acc_in`` (SHIFT) or
    ``acc = acc_in + a*w`` (WS); ``clear`` zeroes ``acc`` (it wins over ``mode``).  ``a`` moves right and
    ``b`` down through one register each; ``w`` (the stationary probability) loads from ``w_in`` when
    ``w_shift`` is high, forming a chain down the column.

    The multiply-accumulate is pipelined (:attr:`MAC_LATENCY` = 2): the multiplier's second operand
    (``b_in`` or ``w``, selected by the mode of the cycle ``a_in``/``b_in`` arrive) is registered next
    to the ``a`` register, their product is registered, and the product reaches ``acc`` two cycles
    after its operands, added under the mode of that cycle.  The multiplier thus runs flip-flop to
    flip-flop and no control decode sits in front of it.  Because every PE delays every product
    alike, the array's results are delayed by exactly ``MAC_LATENCY`` cycles (see
    :class:`~einloom.rtl.mesh.SystolicArray`); the schedule must flush ``a_in`` to zero two cycles
    before a phase change (it does: the feeds end well before).

    Latency: one cycle per hop for ``a``, ``b``, ``acc`` and ``w`` (``latency = 1``); products reach
    ``acc`` ``MAC_LATENCY`` cycles after ``a_in``.  The registers are reset-less (datapath: written
    before they are read; ``clear`` zeroes ``acc``), so the reset does not fan out into the array.
    Limits: the arithmetic is the number format's ``product`` and ``accumulate`` (``units``).
    """

    latency = 1
    MAC_LATENCY = 2

    def __init__(self, units: DatapathUnits):
        self.units = units
        u = units
        super().__init__({
            "a_in": In(u.input_shape), "a_out": Out(u.input_shape),
            "b_in": In(u.input_shape), "b_out": Out(u.input_shape),
            "acc_in": In(u.acc_shape), "acc_out": Out(u.acc_shape),
            "w_in": In(u.prob_shape), "w_out": Out(u.prob_shape),
            "mode": In(2), "clear": In(1), "w_shift": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        u = self.units
        a = Signal(u.input_shape, reset_less=True)
        b = Signal(u.input_shape, reset_less=True)
        acc = Signal(u.acc_shape, reset_less=True)
        w = Signal(u.prob_shape, reset_less=True)
        m.d.sync += [a.eq(self.a_in), b.eq(self.b_in)]
        m.d.comb += [self.a_out.eq(a), self.b_out.eq(b), self.acc_out.eq(acc), self.w_out.eq(w)]
        # stage 1: the second operand, next to the a register
        operand = Signal(u.mult_shape, reset_less=True)
        with m.If(self.mode == PEMode.WS):
            m.d.sync += operand.eq(u.prob_to_mult(m, w))
        with m.Else():
            m.d.sync += operand.eq(u.input_to_mult(m, self.b_in))
        # stage 2: the product
        product = Signal(u.product_shape, reset_less=True)
        m.d.sync += product.eq(u.product(m, a, operand))
        # stage 3: accumulate
        base = Signal(u.acc_shape)
        with m.If(self.mode == PEMode.WS):
            m.d.comb += base.eq(self.acc_in)
        with m.Else():
            m.d.comb += base.eq(acc)
        result = u.accumulate(m, base, product)
        with m.If(self.clear):
            m.d.sync += acc.eq(0)
        with m.Elif(self.mode == PEMode.OS):
            m.d.sync += acc.eq(result)
        with m.Elif(self.mode == PEMode.SHIFT):
            m.d.sync += acc.eq(self.acc_in)
        with m.Elif(self.mode == PEMode.WS):
            m.d.sync += acc.eq(result)
        with m.If(self.w_shift):
            m.d.sync += w.eq(self.w_in)
        return m
