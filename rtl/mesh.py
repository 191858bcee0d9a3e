"""The R x C 2D array: a bare mesh of PEs, and the mesh run as C skewed columns.

Gemmini splits PE -> Tile -> Mesh -> MeshWithDelays; here a tile is a single PE (no combinational PE
groups), so the levels are :class:`~einloom.rtl.pe.ProcessingElement`, :class:`Mesh` and
:class:`SystolicArray`; the input skew lives in the attention core's feeders (each row's and
column's input registers run that many cycles late) rather than in delay registers.

Dataflow (FuseMax's binding, reference/fusemax.md section 4.1): rows are keys of a tile (M0 = R),
columns are queries (P0 = C).  QK is output-stationary with E temporal (K enters from the left, Q from
the top); the finished tile is drained down the columns into the 1D array through the PEs' drain
registers; the probabilities SLN load into the PEs' shadow weights behind the running products and
SLNV is computed weight-stationary, V entering from the left and the sum over the tile's keys
accumulating down each column.  The PE's mode travels with the data (a tag beside each ``a``
operand), so a row switches from one tile's QK to the previous tile's SLNV the cycle its data does:
the two products run back to back with no flush.
"""
from __future__ import annotations

from amaranth.hdl import DomainRenamer, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.kept import reset_region
from einloom.rtl.pe import ProcessingElement, Tag, acc_latency, drain_shape, mac_latency
from einloom.rtl.units.base import DatapathUnits


def _ports(units: DatapathUnits, rows: int, cols: int, shd_shape=None) -> dict:
    u = units
    return {"a_in": In(u.input_shape).array(rows), "tag_in": In(Tag).array(rows),
            "b_in": In(u.input_shape).array(cols), "w_in": In(u.prob_shape).array(cols),
            "shd_out": Out(shd_shape or u.acc_shape).array(cols), "psum_out": Out(u.acc_shape).array(cols),
            "drain": In(1).array(cols), "w_shift": In(1).array(cols)}


class Mesh(wiring.Component):
    """R x C PEs, neighbours connected; the column controls ``drain[c]``, ``w_shift[c]`` go to every PE
    of column c.

    Ports: ``a_in[r]``/``tag_in[r]`` feed row r from the left, ``b_in[c]`` and ``w_in[c]`` feed column c
    from the top (row 0's ``psum_in`` and ``shd_in`` are 0), ``shd_out[c]`` and ``psum_out[c]`` are the
    drain and WS registers of PE(R-1, c).
    Latency: PE(r, c) sees ``a_in[r]`` after c cycles and ``b_in[c]`` after r cycles; each PE enters
    and leaves reset one cycle after the mesh (its own reset flip-flop).
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        super().__init__(_ports(units, rows, cols, drain_shape(units)))

    def elaborate(self, platform):
        m = Module()
        pes = [[ProcessingElement(self.units) for _ in range(self.cols)] for _ in range(self.rows)]
        for r in range(self.rows):
            for c in range(self.cols):
                pe = pes[r][c]
                # each PE takes its reset from a flip-flop of its own (rtl/kept.py, reset_region)
                m.submodules[f"pe_{r}_{c}"] = DomainRenamer(reset_region(m, f"pe_{r}_{c}_reset"))(pe)
                m.d.comb += [pe.drain.eq(self.drain[c]), pe.w_shift.eq(self.w_shift[c])]
                if c == 0:
                    m.d.comb += [pe.a_in.eq(self.a_in[r]), pe.tag_in.eq(self.tag_in[r])]
                else:
                    left = pes[r][c - 1]
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.tag_in.eq(left.tag_out)]
                if r == 0:
                    m.d.comb += [pe.b_in.eq(self.b_in[c]), pe.w_in.eq(self.w_in[c]), pe.psum_in.eq(0),
                                 pe.shd_in.eq(0)]
                else:
                    above = pes[r - 1][c]
                    m.d.comb += [pe.b_in.eq(above.b_out), pe.w_in.eq(above.w_out),
                                 pe.psum_in.eq(above.psum_out), pe.shd_in.eq(above.shd_out)]
        for c in range(self.cols):
            m.d.comb += [self.shd_out[c].eq(pes[self.rows - 1][c].shd_out),
                         self.psum_out[c].eq(pes[self.rows - 1][c].psum_out)]
        return m


class SystolicArray(wiring.Component):
    """The mesh run as C skewed columns: skewed inputs in, bottom drain and WS registers out.

    The caller feeds the inputs skewed: element e of row r (``a_in[r]`` with its tag) at cycle e + r
    and element e of column c (``b_in[c]``) at cycle e + c, so PE(r, c) sees element e at cycle
    e + r + c (a V element of row r, with a pipelined accumulate of latency L: at cycle f + L r, so the
    WS psum of row r meets row r+1's product).  Column c therefore runs c cycles after column 0, and its controls (``drain[c]``,
    ``w_shift[c]``) must be driven c cycles late as well (one register per column, as in Gemmini's
    mesh): every column behaves like column 0 shifted by c cycles, so no output de-skew is needed.

    Latency (column-relative cycles; column c: add c): a QK tile whose K element E-1 enters row 0 at
    cycle t is in row r's drain register from cycle ``t + r + mac_latency + 1``; the bottom row's is
    final last, at ``t + R + mac_latency`` (:meth:`drain_offset` after the first element), and then
    each ``drain`` cycle moves the next row up into ``shd_out`` (rows R-1 .. 0).  V element f entering
    row 0 at cycle t leaves its column sum in ``psum_out`` from cycle ``t + ws_latency``.
    """

    def __init__(self, units: DatapathUnits, rows: int, cols: int):
        self.units, self.rows, self.cols = units, rows, cols
        super().__init__(_ports(units, rows, cols))

    @property
    def acc_latency(self) -> int:
        """L: the PEs' accumulate latency (1: single-cycle)."""
        return acc_latency(self.units)

    @property
    def combine_latency(self) -> int:
        """Cycles the bottom row's L partial sums take through the column's combine (0 for L = 1)."""
        lat = self.acc_latency
        return 0 if lat == 1 else (lat - 1) * lat

    def drain_offset(self, depth: int) -> int:
        """Cycles from K element 0 entering row 0 to the bottom row's finished dot product in ``shd_out``
        (with L > 1: the partials L cycles later, copied from the adder's output register, then the
        combine)."""
        lat = self.acc_latency
        return depth - 1 + self.rows + mac_latency(self.units) + (lat if lat > 1 else 0) + self.combine_latency

    @property
    def ws_latency(self) -> int:
        """Cycles from V element f entering row 0 to its column sum in ``psum_out`` (V skewed L per row)."""
        return self.acc_latency * self.rows + mac_latency(self.units)

    def elaborate(self, platform):
        m = Module()
        mesh = m.submodules.mesh = Mesh(self.units, self.rows, self.cols)
        for r in range(self.rows):
            m.d.comb += [mesh.a_in[r].eq(self.a_in[r]), mesh.tag_in[r].eq(self.tag_in[r])]
        for c in range(self.cols):
            m.d.comb += [mesh.b_in[c].eq(self.b_in[c]), mesh.w_in[c].eq(self.w_in[c]),
                         mesh.drain[c].eq(self.drain[c]), mesh.w_shift[c].eq(self.w_shift[c]),
                         self.psum_out[c].eq(mesh.psum_out[c])]
            if self.acc_latency == 1:
                m.d.comb += self.shd_out[c].eq(mesh.shd_out[c])
            else:                         # the column's partial sums, combined in the golden order
                combine = self.units.partial_sum()
                assert combine.latency == self.combine_latency
                m.submodules[f"combine{c}"] = combine
                m.d.comb += [combine.parts.eq(mesh.shd_out[c]), self.shd_out[c].eq(combine.sum)]
        return m
