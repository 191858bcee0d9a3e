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

    Computes, per cycle, by ``mode`` (:class:`PEMode`): ``acc += a_in*b_in`` (OS), ``acc = acc_in`` (SHIFT)
    or ``acc = acc_in + a_in*w`` (WS); ``clear`` zeroes ``acc`` (it wins over ``mode``).  ``a`` moves
    right and ``b`` down through one register each; ``w`` (the stationary probability) loads from
    ``w_in`` when ``w_shift`` is high, forming a chain down the column.

    Latency: one cycle per hop for ``a``, ``b``, ``acc`` and ``w`` (``latency = 1``).
    Limits: the arithmetic is the number format's ``mac`` (``units``), combinational within the cycle.
    """

    latency = 1

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
        a = Signal(u.input_shape)
        b = Signal(u.input_shape)
        acc = Signal(u.acc_shape)
        w = Signal(u.prob_shape)
        m.d.sync += [a.eq(self.a_in), b.eq(self.b_in)]
        m.d.comb += [self.a_out.eq(a), self.b_out.eq(b), self.acc_out.eq(acc), self.w_out.eq(w)]
        os_mult = u.input_to_mult(m, self.b_in)
        ws_mult = u.prob_to_mult(m, w)
        operand = Signal(u.mult_shape)
        base = Signal(u.acc_shape)
        with m.If(self.mode == PEMode.WS):
            m.d.comb += [operand.eq(ws_mult), base.eq(self.acc_in)]
        with m.Else():
            m.d.comb += [operand.eq(os_mult), base.eq(acc)]
        result = u.mac(m, base, self.a_in, operand)
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
