"""The R x C 2D array: a bare mesh of PEs, and the mesh with input skew and output de-skew.

Gemmini splits PE -> Tile -> Mesh -> MeshWithDelays; here a tile is a single PE (no combinational PE
groups), so the levels are :class:`~einloom.rtl.pe.ProcessingElement`, :class:`Mesh` and
:class:`SystolicArray`.

Dataflow (FuseMax's binding, reference/fusemax.md section 4.1): rows are keys of a tile (M0 = R),
columns are queries (P0 = C).  QK is output-stationary with E temporal (K enters from the left, Q from
the top); the result is drained down the columns into the 1D array; the probabilities SLN then load
back into the PEs as stationary weights and SLNV is computed weight-stationary, V entering from the left
and the sum over the tile's keys accumulating down each column.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.pe import ProcessingElement
from einloom.rtl.units.base import DatapathUnits


def _controls() -> dict:
    return {"mode": In(2), "clear": In(1), "w_shift": In(1)}


class Mesh(wiring.Component):
    """R x C PEs, neighbours connected; control signals broadcast to every PE.

    Ports: ``a_in[r]`` feeds row r from the left, ``b_in[c]`` and ``w_in[c]`` feed column c from the
    top (row 0's ``acc_in`` is 0), ``acc_out[c]`` is the accumulator of PE(R-1, c).
    Latency: PE(r, c) sees ``a_in[r]`` after c cycles and ``b_in[c]`` after r cycles.
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        u = units
        super().__init__({
            "a_in": In(u.input_shape).array(rows), "b_in": In(u.input_shape).array(cols),
            "w_in": In(u.prob_shape).array(cols), "acc_out": Out(u.acc_shape).array(cols), **_controls(),
        })

    def elaborate(self, platform):
        m = Module()
        pes = [[ProcessingElement(self.units) for _ in range(self.cols)] for _ in range(self.rows)]
        for r in range(self.rows):
            for c in range(self.cols):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [pe.mode.eq(self.mode), pe.clear.eq(self.clear), pe.w_shift.eq(self.w_shift)]
                m.d.comb += pe.a_in.eq(self.a_in[r] if c == 0 else pes[r][c - 1].a_out)
                if r == 0:
                    m.d.comb += [pe.b_in.eq(self.b_in[c]), pe.w_in.eq(self.w_in[c]), pe.acc_in.eq(0)]
                else:
                    above = pes[r - 1][c]
                    m.d.comb += [pe.b_in.eq(above.b_out), pe.w_in.eq(above.w_out), pe.acc_in.eq(above.acc_out)]
        for c in range(self.cols):
            m.d.comb += self.acc_out[c].eq(pes[self.rows - 1][c].acc_out)
        return m


class SystolicArray(wiring.Component):
    """The mesh with input skew (row r delayed r cycles, column c delayed c) and output de-skew.

    Feed element e of every row (``a_in``) and every column (``b_in``) in the same cycle t = e; PE(r, c)
    then sees it at cycle t + r + c.  ``acc_out[c]`` is the raw bottom accumulator (used to drain QK,
    all columns at once); ``acc_out_deskewed[c]`` delays column c by C-1-c cycles, so in WS mode the
    psum of feed element f leaves every column together at cycle f + R + C - 1.

    Latency (a property tests use): ``os_cycles(E) = E + R + C - 2`` cycles of OS mode complete a QK
    tile; ``ws_latency = R + C - 1`` from feeding element f to its de-skewed sum.
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        u = units
        super().__init__({
            "a_in": In(u.input_shape).array(rows), "b_in": In(u.input_shape).array(cols),
            "w_in": In(u.prob_shape).array(cols), "acc_out": Out(u.acc_shape).array(cols),
            "acc_out_deskewed": Out(u.acc_shape).array(cols), **_controls(),
        })

    def os_cycles(self, depth: int) -> int:
        return depth + self.rows + self.cols - 2

    @property
    def ws_latency(self) -> int:
        return self.rows + self.cols - 1

    @staticmethod
    def _delay(m: Module, value, cycles: int, shape, name: str):
        for i in range(cycles):
            reg = Signal(shape, name=f"{name}_{i}")
            m.d.sync += reg.eq(value)
            value = reg
        return value

    def elaborate(self, platform):
        m = Module()
        u = self.units
        mesh = m.submodules.mesh = Mesh(u, self.rows, self.cols)
        m.d.comb += [mesh.mode.eq(self.mode), mesh.clear.eq(self.clear), mesh.w_shift.eq(self.w_shift)]
        for r in range(self.rows):
            m.d.comb += mesh.a_in[r].eq(self._delay(m, self.a_in[r], r, u.input_shape, f"skew_a{r}"))
        for c in range(self.cols):
            m.d.comb += [mesh.b_in[c].eq(self._delay(m, self.b_in[c], c, u.input_shape, f"skew_b{c}")),
                         mesh.w_in[c].eq(self.w_in[c]),
                         self.acc_out[c].eq(mesh.acc_out[c]),
                         self.acc_out_deskewed[c].eq(self._delay(m, mesh.acc_out[c], self.cols - 1 - c,
                                                                 u.acc_shape, f"deskew{c}"))]
        return m
