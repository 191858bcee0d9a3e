"""The R x C 2D array: a bare mesh of PEs, and the mesh run as C skewed columns (per-column controls).

Gemmini splits PE -> Tile -> Mesh -> MeshWithDelays; here a tile is a single PE (no combinational PE
groups), so the levels are :class:`~einloom.rtl.pe.ProcessingElement`, :class:`Mesh` and
:class:`SystolicArray`; the input skew lives in the attention core's feeders (each row's and
column's input registers run that many cycles late) rather than in delay registers.

Dataflow (FuseMax's binding, reference/fusemax.md section 4.1): rows are keys of a tile (M0 = R),
columns are queries (P0 = C).  QK is output-stationary with E temporal (K enters from the left, Q from
the top); the result is drained down the columns into the 1D array; the probabilities SLN then load
back into the PEs as stationary weights and SLNV is computed weight-stationary, V entering from the left
and the sum over the tile's keys accumulating down each column.  Column c runs c cycles after column 0
(its data arrives c cycles later, and so do its controls).
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.pe import ProcessingElement
from einloom.rtl.units.base import DatapathUnits


def _controls(cols: int) -> dict:
    """Per-column controls: column c runs c cycles after column 0 (see :class:`SystolicArray`)."""
    return {"mode": In(2).array(cols), "clear": In(1).array(cols), "w_shift": In(1).array(cols)}


class Mesh(wiring.Component):
    """R x C PEs, neighbours connected; the controls of column c go to every PE of column c.

    Ports: ``a_in[r]`` feeds row r from the left, ``b_in[c]`` and ``w_in[c]`` feed column c from the
    top (row 0's ``acc_in`` is 0), ``acc_out[c]`` is the accumulator of PE(R-1, c).
    Latency: PE(r, c) sees ``a_in[r]`` after c cycles and ``b_in[c]`` after r cycles.
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        u = units
        super().__init__({
            "a_in": In(u.input_shape).array(rows), "b_in": In(u.input_shape).array(cols),
            "w_in": In(u.prob_shape).array(cols), "acc_out": Out(u.acc_shape).array(cols), **_controls(cols),
        })

    def elaborate(self, platform):
        m = Module()
        pes = [[ProcessingElement(self.units) for _ in range(self.cols)] for _ in range(self.rows)]
        for r in range(self.rows):
            for c in range(self.cols):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [pe.mode.eq(self.mode[c]), pe.clear.eq(self.clear[c]), pe.w_shift.eq(self.w_shift[c])]
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
    """The mesh run as C skewed columns: skewed inputs in, bottom accumulators out.

    The caller feeds the inputs skewed: element e of row r (``a_in[r]``) at cycle e + r and element e
    of column c (``b_in[c]``) at cycle e + c (the attention core's feeders do it by running row r's
    and column c's input registers r and c cycles late), so PE(r, c) sees element e at cycle e + r + c.
    Column c therefore runs c cycles after column 0, and its controls (``mode[c]``, ``clear[c]``,
    ``w_shift[c]``) must be driven c cycles late as well: the controls travel with the data, one
    register per column, as in Gemmini's mesh.  Every column then behaves like column 0 shifted by c
    cycles, so no output de-skew is needed and no control net spans the array.  ``acc_out[c]`` is the
    bottom accumulator of column c (drained QK in SHIFT mode, the column sum in WS mode).

    Latency (a property tests use), in column-relative cycles (column c: add c):
    ``os_cycles(E) = E + R - 1 + MAC_LATENCY`` cycles of OS mode complete a QK tile;
    ``ws_latency = R + MAC_LATENCY`` from feeding element f (to row 0) to ``acc_out`` holding its sum
    (``MAC_LATENCY`` = 2, the PE's multiply-accumulate pipeline).
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        u = units
        super().__init__({
            "a_in": In(u.input_shape).array(rows), "b_in": In(u.input_shape).array(cols),
            "w_in": In(u.prob_shape).array(cols), "acc_out": Out(u.acc_shape).array(cols), **_controls(cols),
        })

    def os_cycles(self, depth: int) -> int:
        return depth + self.rows - 1 + ProcessingElement.MAC_LATENCY

    @property
    def ws_latency(self) -> int:
        return self.rows + ProcessingElement.MAC_LATENCY

    def elaborate(self, platform):
        m = Module()
        mesh = m.submodules.mesh = Mesh(self.units, self.rows, self.cols)
        for r in range(self.rows):
            m.d.comb += mesh.a_in[r].eq(self.a_in[r])
        for c in range(self.cols):
            m.d.comb += [mesh.b_in[c].eq(self.b_in[c]), mesh.w_in[c].eq(self.w_in[c]), mesh.mode[c].eq(self.mode[c]),
                         mesh.clear[c].eq(self.clear[c]), mesh.w_shift[c].eq(self.w_shift[c]),
                         self.acc_out[c].eq(mesh.acc_out[c])]
        return m
