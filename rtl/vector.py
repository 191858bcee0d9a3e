"""One PE of the 1D array: a query's running state and its softmax arithmetic (max, exp, add, multiply,
reciprocal).  The 1D array is ``C`` of these, one per column of the 2D array (FuseMax: 1D PEs = P0)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.units.base import DatapathUnits


def vector_controls(index_bits: int) -> dict:
    """Control inputs the controller broadcasts to every 1D PE."""
    return {
        "init": In(1),          # block start: RD = RNV = 0, RM invalid
        "tile_start": In(1),    # LM invalid, SLD = 0
        "capture": In(1),       # drain cycle: take acc_in (key ``key_index``) into the QK buffer
        "key_index": In(unsigned(index_bits)),
        "num_keys": In(unsigned(index_bits + 1)),
        "query_base": In(unsigned(index_bits + 1)),
        "causal": In(1),
        "rm_update": In(1),     # RM_prev = RM (or the new max on the first tile); RM = max(RM, LM)
        "issue_sln": In(1),     # exp of the QK buffer's head, shift the buffer
        "issue_prm": In(1),     # exp(RM_prev - RM)
        "slnv": In(1),          # RNV[f] = PRM * RNV[f] + slnv_in, rotating f
        "rd_update": In(1),     # RD = PRM * RD + SLD
        "recip_issue": In(1),
        "recip_capture": In(1),
        "out_mul": In(1),       # AV[f] = RNV[f] * recip, rotating f
    }


class VectorPE(wiring.Component):
    """Running max RM, denominator RD and numerator RNV[0..F-1] of one query; FuseMax's 1D-array Einsums.

    Computes, as the controller strobes it (see :func:`vector_controls`): LM over the drained column
    (masked keys skipped: key >= num_keys, or causal and key > query), RM, SLN = exp(QK - RM) (masked ->
    0) fed to ``w_out`` for the column's weight chain, SLD, PRM = exp(RM_prev - RM), RD and RNV updates,
    and at the end AV[f] = RNV[f] * (1 / RD) with one reciprocal per query.

    Latency: ``exp_latency`` cycles from ``issue_*`` to the exp result (``w_valid`` marks SLN on
    ``w_out``); ``recip_latency`` from ``recip_issue`` to when ``recip_capture`` may be strobed; all other
    strobes take effect at the next clock edge.  ``av_out`` holds AV after F ``out_mul`` strobes.
    Limits: RD must be >= 1 (true once a tile had an unmasked key), which the schedule guarantees.
    """

    def __init__(self, units: DatapathUnits, *, column: int, rows: int, value_dim: int, index_bits: int):
        self.units, self.column, self.rows, self.value_dim = units, column, rows, value_dim
        self.index_bits = index_bits
        u = units
        self._exp = u.exp_unit()
        self._recip = u.recip_unit()
        super().__init__({
            "acc_in": In(u.acc_shape), "slnv_in": In(u.acc_shape),
            "w_out": Out(u.prob_shape), "w_valid": Out(1),
            "av_out": Out(u.output_shape).array(value_dim),
            **vector_controls(index_bits),
        })

    @property
    def exp_latency(self) -> int:
        return self._exp.latency

    @property
    def recip_latency(self) -> int:
        return self._recip.latency

    def elaborate(self, platform):
        m = Module()
        u = self.units
        exp = m.submodules.exp = self._exp
        recip = m.submodules.recip = self._recip

        # --- drain: QK buffer (a shift register of R entries) and the local max LM -------------
        buf = [Signal(u.acc_shape, name=f"qk{i}") for i in range(self.rows)]
        valid = [Signal(name=f"valid{i}") for i in range(self.rows)]
        lm, lm_valid = Signal(u.acc_shape), Signal()
        rm, rm_prev, rm_valid = Signal(u.acc_shape), Signal(u.acc_shape), Signal()
        key_ok = Signal()
        m.d.comb += key_ok.eq((self.key_index < self.num_keys) &
                              (~self.causal | (self.key_index <= self.query_base + self.column)))
        with m.If(self.tile_start):
            m.d.sync += lm_valid.eq(0)
        with m.If(self.capture):
            m.d.sync += [b.eq(n) for b, n in zip(buf, buf[1:] + [self.acc_in])]
            m.d.sync += [b.eq(n) for b, n in zip(valid, valid[1:] + [key_ok])]
            with m.If(key_ok):
                m.d.sync += lm_valid.eq(1)
                with m.If(~lm_valid | u.greater(m, self.acc_in, lm)):
                    m.d.sync += lm.eq(self.acc_in)
        with m.Elif(self.issue_sln):
            m.d.sync += [b.eq(n) for b, n in zip(buf, buf[1:] + [buf[0]])]
            m.d.sync += [b.eq(n) for b, n in zip(valid, valid[1:] + [valid[0]])]

        # --- running max ----------------------------------------------------------------------
        with m.If(self.init):
            m.d.sync += rm_valid.eq(0)
        with m.Elif(self.rm_update):
            with m.If(~rm_valid):
                m.d.sync += [rm.eq(lm), rm_prev.eq(lm), rm_valid.eq(1)]
            with m.Else():
                m.d.sync += rm_prev.eq(rm)
                with m.If(lm_valid & u.greater(m, lm, rm)):
                    m.d.sync += rm.eq(lm)

        # --- exp: SLN and PRM, with tags delayed alongside the exp pipeline --------------------
        m.d.comb += [exp.x.eq(Mux(self.issue_prm, rm_prev, buf[0])), exp.m.eq(rm)]
        tag_sln, tag_prm, tag_mask = self.issue_sln, self.issue_prm, valid[0]
        for i in range(exp.latency):
            d_sln, d_prm, d_mask = Signal(name=f"tag_sln{i}"), Signal(name=f"tag_prm{i}"), Signal(name=f"tag_mask{i}")
            m.d.sync += [d_sln.eq(tag_sln), d_prm.eq(tag_prm), d_mask.eq(tag_mask)]
            tag_sln, tag_prm, tag_mask = d_sln, d_prm, d_mask
        sln = Signal(u.prob_shape)
        m.d.comb += [sln.eq(Mux(tag_mask, exp.y, 0)), self.w_out.eq(sln), self.w_valid.eq(tag_sln)]
        sld, rd = Signal(u.den_shape), Signal(u.den_shape)
        prm = Signal(u.prob_shape)
        with m.If(self.tile_start):
            m.d.sync += sld.eq(0)
        with m.Elif(tag_sln):
            m.d.sync += sld.eq(u.prob_add(m, sld, sln))
        with m.If(tag_prm):
            m.d.sync += prm.eq(exp.y)

        # --- running sums RD and RNV (RNV as a rotating register file of F entries) -----------
        rnv = [Signal(u.acc_shape, name=f"rnv{f}") for f in range(self.value_dim)]
        av = [Signal(u.output_shape, name=f"av{f}") for f in range(self.value_dim)]
        recip_value = Signal(u.recip_shape)
        with m.If(self.init):
            m.d.sync += [rd.eq(0)] + [r.eq(0) for r in rnv]
        with m.Else():
            with m.If(self.rd_update):
                m.d.sync += rd.eq(u.rescale_add(m, prm, rd, sld))
            with m.If(self.slnv):
                m.d.sync += [r.eq(n) for r, n in zip(rnv, rnv[1:] + [u.rescale_add(m, prm, rnv[0], self.slnv_in)])]
            with m.Elif(self.out_mul):
                m.d.sync += [r.eq(n) for r, n in zip(rnv, rnv[1:] + [rnv[0]])]
                m.d.sync += [a.eq(n) for a, n in zip(av, av[1:] + [u.output(m, rnv[0], recip_value)])]

        # --- reciprocal (one per query) and output --------------------------------------------
        m.d.comb += recip.x.eq(rd)
        with m.If(self.recip_capture):
            m.d.sync += recip_value.eq(recip.y)
        m.d.comb += [o.eq(a) for o, a in zip(self.av_out, av)]
        return m
