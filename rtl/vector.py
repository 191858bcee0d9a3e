"""One PE of the 1D array: a query's running state and its softmax arithmetic (max, exp, add, multiply).
The 1D array is ``C`` of these, one per column of the 2D array (FuseMax: 1D PEs = P0), plus one
reciprocal unit that the columns share (:class:`einloom.rtl.attention.AttentionCore` holds it).

Interface to the 2D array (the narrow interface a programmable 1D lane replaces): per key tile the PE
receives the R scores of its query column on ``acc_in`` (``capture``, rows R-1 .. 0) and returns R
weights on ``w_out``/``w_valid`` (SLN, shifted into the column's shadow weights); per value column it
receives the SLNV sum on ``slnv_in`` (``slnv``, f = 0 .. F-1); per query block it emits F outputs on
``av_out``."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.kept import KEEP, kept_copies, kept_register
from einloom.rtl.units.base import DatapathUnits


#: RNV ring words per kept copy of the ring's rotate enable
RNV_GROUP = 4
#: QK buffer words per kept shift / rotate enable pair
QK_GROUP = 2
#: FINAL's output words (RNV snapshots) per kept snapshot / shift enable pair (4 words, 128 enables
#: on one flip-flop: the 8x8 int8 core's path, `rnv_snap2` -> 12.35 ns of routing -> `rnv_fin8`'s enable)
FIN_GROUP = 2


def key_index_bits(index_bits: int, rows: int) -> int:
    """Width of a drained key's index: a tile's padding keys reach ``max_keys + rows - 2``, and
    ``max_keys < 2**index_bits``, so an index is below ``2**index_bits + rows``."""
    return ((1 << index_bits) + rows).bit_length()


def vector_controls(index_bits: int, rows: int) -> dict:
    """Control inputs of a 1D PE; the controller drives each column's from its own copies, c cycles late."""
    return {
        "init": In(1),          # a block's first tile: RM invalid, seen cleared, causal bound from query_base
        "snap": In(1),          # a block ends: its seen flag into the FINAL registers
        "rd_snap": In(1),       # ... and its RD (once the block's last RD update has landed)
        "snap_empty": In(1),    # ... and the block saw no key at all (its outputs are 0)
        "tile_start": In(1),    # LM invalid, SLD = 0
        "capture": In(1),       # drain cycle: take acc_in (key ``key_index``) into the QK buffer
        "capture_pre": In(1),   # ``capture`` a cycle early (the QK buffer's kept shift enables)
        "key_index": In(unsigned(key_index_bits(index_bits, rows))),
        "num_keys": In(unsigned(index_bits + 1)),
        "num_queries": In(unsigned(index_bits + 1)),
        "query_base": In(unsigned(index_bits + 1)),   # the initialised block's first query (read on init)
        "causal": In(1),
        "window": In(unsigned(index_bits + 1)),   # > 0: only the last `window` keys up to the diagonal ...
        "sinks": In(unsigned(index_bits + 1)),    # ... or one of the first `sinks` keys are visible
        "rm_update": In(1),     # RM_prev = RM (or the new max on the first tile); RM = max(RM, LM)
        "issue_sln": In(1),     # exp of the QK buffer's head, shift the buffer
        "issue_sln_pre": In(1), # ``issue_sln`` a cycle early (the QK buffer's kept rotate enables)
        "issue_prm": In(1),     # exp(RM_prev - RM)
        "rd_update": In(1),     # RD = PRM * RD + SLD
        "rd_first": In(1),      # ... of a block's first tile: RD = SLD (rescale of 0)
        "prm_latch": In(1),     # the PRM of the tile whose SLNV sums come next
        "slnv": In(1),          # RNV[f] = PRM * RNV[f] + slnv_in, rotating f
        "slnv_first": In(1),    # ... of a block's first tile: RNV[f] = slnv_in (rescale of 0)
        "rnv_rotate": In(1),    # the RNV ring rotates in the next cycle: high from a cycle before the first
                                # ``slnv`` strobe for F + rescale_latency cycles
        "rnv_snap_pre": In(1),  # a block's RNV into the output registers, in the next cycle
        "recip_capture": In(1), # recip_in holds 1/RD of this column
        "out_mul_pre": In(1),   # AV[f] = RNV[f] * recip, shifting f, from the next cycle on
    }


def sld_latency(units: DatapathUnits) -> int:
    """Cycles from a tile's last SLN to its sum SLD: 2 for a single-cycle add (the sum is registered the
    cycle after the last term); with a pipelined accumulate (``acc_latency`` L > 1) SLD is the format's
    interleaved accumulate, ``accumulate_unit()``, whose ``drain_latency`` it takes."""
    if getattr(units, "acc_latency", 1) == 1:
        return 2
    unit = units.accumulate_unit()
    unit._MustUse__silence = True          # built only to read its latency
    return unit.drain_latency


class VectorPE(wiring.Component):
    """Running max RM, denominator RD and numerator RNV[0..F-1] of one query; FuseMax's 1D-array Einsums.

    Computes, as the controller strobes it (see :func:`vector_controls`): LM over the drained column
    (masked keys skipped: key >= num_keys, or causal and key > query + num_keys - num_queries, the
    bottom-right aligned mask of FlashAttention >= 2.1 and the library's cascades, or with a window
    key <= query + num_keys - num_queries - window unless key < sinks), RM, SLN =
    exp(QK - RM) (masked -> 0) fed to ``w_out`` for the column's shadow weights, SLD, PRM =
    exp(RM_prev - RM), RD and RNV updates, and for a finished block AV[f] = RNV[f] * (1 / RD), or 0
    when no key of the block was visible to the query (causal with P > M: the golden model's
    ``output_zero``).  The 1D array works on a tile while the 2D array computes the next one, and a
    block's FINAL runs while the next block's first tiles start: RD (``rd_snap``), the seen flag
    (``snap``) and RNV (``rnv_snap``) are copied into FINAL's registers, and the PRM of the tile whose SLNV sums arrive
    is held apart (``prm_latch``) from the PRM of the tile being exponentiated.  The snapshot RD
    leaves on ``rd_out`` for the 1D array's shared reciprocal unit, whose result comes back on
    ``recip_in``.

    Latency: ``exp_latency`` cycles from ``issue_*`` to the exp result (``w_valid`` marks SLN on
    ``w_out``); RD is updated ``rescale_latency`` cycles after ``rd_update``; the RNV ring keeps
    rotating ``rescale_latency`` cycles after the last ``slnv`` strobe (no other strobe may touch it
    then); ``recip_in`` is taken on ``recip_capture``; ``av_out`` holds AV ``output_latency + 1``
    cycles after the last of F ``out_mul`` strobes; SLD is final :func:`sld_latency` cycles after the
    tile's last SLN; all other strobes take effect at the next edge.
    Only control state (exp tags, LM/RM valid flags, the seen flags) is reset; the datapath
    registers, and the QK buffer's per-entry valid bits (written with each entry at the drain), are
    reset-less: each is written before it is read.
    Limits: RD is >= 1 once a tile had an unmasked key; a query that never saw one has RD = 0 (or, in
    an empty block, a stale RD), whose reciprocal is computed and discarded.
    """

    def __init__(self, units: DatapathUnits, *, column: int, rows: int, value_dim: int, index_bits: int):
        self.units, self.column, self.rows, self.value_dim = units, column, rows, value_dim
        self.index_bits = index_bits
        u = units
        self._exp = u.exp_unit()
        self._out = u.output_unit()
        super().__init__({
            "acc_in": In(u.acc_shape), "slnv_in": In(u.acc_shape),
            "w_out": Out(u.prob_shape), "w_valid": Out(1),
            "rd_out": Out(u.den_shape), "recip_in": In(u.recip_shape),
            "av_out": Out(u.output_shape).array(value_dim),
            **vector_controls(index_bits, rows),
        })

    @property
    def exp_latency(self) -> int:
        return self._exp.latency

    @property
    def output_latency(self) -> int:
        return self._out.latency

    @property
    def rescale_latency(self) -> int:
        return self.units.rescale_latency

    @property
    def sld_latency(self) -> int:
        """Cycles from a tile's last SLN (on ``w_out``) to its SLD, when ``rd_update`` may read it."""
        return sld_latency(self.units)

    def elaborate(self, platform):
        m = Module()
        u = self.units
        exp = m.submodules.exp = self._exp

        # --- drain: QK buffer (a shift register of R entries) and the local max LM -------------
        buf = [Signal(u.score_shape, name=f"qk{i}", reset_less=True) for i in range(self.rows)]
        valid = [Signal(name=f"valid{i}", reset_less=True) for i in range(self.rows)]
        lm, lm_valid = Signal(u.score_shape, name="lm", reset_less=True), Signal(name="lm_valid")
        rm = Signal(u.score_shape, name="rm", reset_less=True)
        rm_prev = Signal(u.score_shape, name="rm_prev", reset_less=True)
        rm_valid = Signal(name="rm_valid")
        # the causal bound of this column's query p = query_base + column, bottom-right aligned: the last
        # visible key is p + M - P (negative when P > M and p < P - M: no key is visible).  Registered
        # on init, a cycle before the block's first drain (keeps the adds off the path into LM's enable)
        # The command's part of both bounds, column + M - P and that - window, is registered every cycle
        # (two levels; the command is constant during a run and set long before a block's init), so
        # init adds query_base once (the four chained adds were one path).
        last_key = Signal(signed(self.index_bits + 3), reset_less=True)
        first_key = Signal(signed(self.index_bits + 3), reset_less=True)   # window: keys > last_key - window
        bound_off = Signal(signed(self.index_bits + 3), reset_less=True)
        window_off = Signal(signed(self.index_bits + 3), reset_less=True)
        m.d.sync += [bound_off.eq(self.column + self.num_keys - self.num_queries),
                     window_off.eq(bound_off - self.window)]
        with m.If(self.init):
            m.d.sync += [last_key.eq(self.query_base + bound_off), first_key.eq(self.query_base + window_off)]
        key_ok = Signal()
        in_window = (self.window == 0) | (self.key_index > first_key) | (self.key_index < self.sinks)
        m.d.comb += key_ok.eq((self.key_index < self.num_keys) & (~self.causal | (self.key_index <= last_key))
                              & in_window)
        # seen: some key of this block was visible to the query; without one its AV is 0, not 0/0
        seen, seen_fin = Signal(name="seen"), Signal(name="seen_fin")
        with m.If(self.init):
            m.d.sync += seen.eq(0)
        with m.Elif(self.capture & key_ok):
            m.d.sync += seen.eq(1)
        with m.If(self.snap):
            m.d.sync += seen_fin.eq(seen & ~self.snap_empty)
        # with the units' ``lm_register`` LM compares the drained score one cycle after the capture
        # (``CoreParams.lm_reg``): the score, the capture strobe and the mask test are registered first,
        # so the route from the 2D array's drain register and the key-index compares end at flip-flops,
        # not at LM's enable
        if u.lm_register >= 1:
            acc_r = Signal(u.score_shape, name="acc_r", reset_less=True)
            capture_r, key_ok_r = Signal(name="capture_r", attrs=KEEP), Signal(name="key_ok_r", reset_less=True)
            m.d.sync += [acc_r.eq(self.acc_in), capture_r.eq(self.capture), key_ok_r.eq(key_ok)]
        else:
            acc_r, capture_r, key_ok_r = self.acc_in, self.capture, key_ok
        with m.If(self.tile_start):
            m.d.sync += lm_valid.eq(0)
        with m.If(capture_r & key_ok_r):
            m.d.sync += lm_valid.eq(1)
            with m.If(~lm_valid | u.greater(m, acc_r, lm)):
                m.d.sync += lm.eq(acc_r)
        # the QK buffer's shift (capture) and rotate (issue_sln) enables: kept flip-flops per QK_GROUP
        # words, registered from the strobes a cycle early (one column-chain flip-flop driving the
        # enables of all R words was the 8x8 int8 core's path: `capture` -> 12.24 ns of routing ->
        # a QK word's clock enable, 76.94 MHz)
        qgroups = -(-self.rows // QK_GROUP)
        cap = kept_copies(m, self.capture_pre, qgroups, "qk_cap")
        rot = kept_copies(m, self.issue_sln_pre, qgroups, "qk_rot")
        for i in range(self.rows):
            new_buf = self.acc_in if i == self.rows - 1 else buf[i + 1]
            new_valid = key_ok if i == self.rows - 1 else valid[i + 1]
            with m.If(cap[i // QK_GROUP]):
                m.d.sync += [buf[i].eq(new_buf), valid[i].eq(new_valid)]
            with m.Elif(rot[i // QK_GROUP]):
                m.d.sync += [buf[i].eq(buf[i + 1] if i < self.rows - 1 else buf[0]),
                             valid[i].eq(valid[i + 1] if i < self.rows - 1 else valid[0])]

        # --- running max ----------------------------------------------------------------------
        # with lm_register 2 the LM > RM compare is a register: LM is final a cycle before rm_update and
        # RM changes only on rm_update, so the compare registered every cycle is current at the update
        if u.lm_register >= 2:
            lm_gt_rm = Signal(name="lm_gt_rm")
            m.d.sync += lm_gt_rm.eq(u.greater(m, lm, rm))
        else:
            lm_gt_rm = u.greater(m, lm, rm)
        with m.If(self.init):
            m.d.sync += rm_valid.eq(0)
        with m.Elif(self.rm_update):
            # valid with the query's first visible key; before it PRM = exp(RM - RM) = 1 rescales zeros
            with m.If(~rm_valid & lm_valid):
                m.d.sync += [rm.eq(lm), rm_prev.eq(lm), rm_valid.eq(1)]
            with m.Elif(~rm_valid):
                m.d.sync += rm_prev.eq(rm)
            with m.Else():
                m.d.sync += rm_prev.eq(rm)
                with m.If(lm_valid & lm_gt_rm):
                    m.d.sync += rm.eq(lm)

        # --- exp: SLN and PRM, with tags delayed alongside the exp pipeline --------------------
        m.d.comb += [exp.x.eq(Mux(self.issue_prm, rm_prev, buf[0])), exp.m.eq(rm)]
        tag_sln, tag_prm, tag_mask = self.issue_sln, self.issue_prm, valid[0]
        sln_before = tag_sln                  # the tag of the SLN one cycle behind (the next one out)
        for i in range(exp.latency):
            d_sln, d_prm, d_mask = (Signal(name=f"tag_sln{i}", attrs=KEEP), Signal(name=f"tag_prm{i}", attrs=KEEP),
                                    Signal(name=f"tag_mask{i}", attrs=KEEP))
            m.d.sync += [d_sln.eq(tag_sln), d_prm.eq(tag_prm), d_mask.eq(tag_mask)]
            sln_before = tag_sln
            tag_sln, tag_prm, tag_mask = d_sln, d_prm, d_mask
        sln = Signal(u.prob_shape)
        m.d.comb += [sln.eq(Mux(tag_mask, exp.y, 0)), self.w_out.eq(sln), self.w_valid.eq(tag_sln)]
        sld = Signal(u.den_shape, reset_less=self.sld_latency == 2)
        rd = Signal(u.den_shape, reset_less=True)
        rd_fin = Signal(u.den_shape, reset_less=True)
        prm = Signal(u.prob_shape, name="prm", reset_less=True)
        prm_ws = Signal(u.prob_shape, name="prm_ws", reset_less=True)
        if self.sld_latency == 2:               # single-cycle accumulate: SLD final the cycle after the last SLN
            with m.If(self.tile_start):
                m.d.sync += sld.eq(0)
            with m.Elif(tag_sln):
                m.d.sync += sld.eq(u.prob_add(m, sld, sln))
        else:                                   # pipelined: the format's interleaved accumulate
            assert exp.latency >= 1
            acc = m.submodules.sld_acc = u.accumulate_unit()
            sln_after = Signal(name="tag_sln_after", attrs=KEEP)
            m.d.sync += sln_after.eq(tag_sln)
            m.d.comb += [acc.x.eq(sln), acc.first.eq(tag_sln & ~sln_after), acc.last.eq(tag_sln & ~sln_before),
                         sld.eq(acc.sum)]
        with m.If(tag_prm):
            m.d.sync += prm.eq(exp.y)
        with m.If(self.prm_latch):
            m.d.sync += prm_ws.eq(prm)
        with m.If(self.rd_snap):
            m.d.sync += rd_fin.eq(rd)

        # --- running sums RD and RNV, through pipelined rescale units (latency L) -------------
        # RD: issued on rd_update, written L cycles later.  RNV: a ring of F + L registers rotating
        # F + L steps per pass (the L extra slots are bubbles): element f leaves slot 0 into the unit
        # at step f and its new value replaces it at slot F-1 at step f + L, so after the pass every
        # element is back in its slot.  A block's first tile rescales zero (the golden model's
        # rescale_add(prm, 0, new)), so RD and the ring are never cleared.
        lat = u.rescale_latency
        rd_unit = m.submodules.rd_rescale = u.rescale_unit("den")
        rnv_unit = m.submodules.rnv_rescale = u.rescale_unit("acc")
        ring = [Signal(u.acc_shape, name=f"rnv{f}", reset_less=True) for f in range(self.value_dim + lat)]
        fin = [Signal(u.acc_shape, name=f"rnv_fin{f}", reset_less=True) for f in range(self.value_dim)]
        av = [Signal(u.output_shape, name=f"av{f}", reset_less=True) for f in range(self.value_dim)]
        recip_value = Signal(u.recip_shape, reset_less=True)

        def delayed(strobe, n, name):
            taps = [strobe]
            for i in range(n):
                d = Signal(name=f"{name}{i}", attrs=KEEP)
                m.d.sync += d.eq(taps[-1])
                taps.append(d)
            return taps

        rd_taps = delayed(self.rd_update, lat, "tag_rd")
        slnv_taps = delayed(self.slnv, lat, "tag_slnv")
        # the ring's rotate enable, one kept flip-flop per RNV_GROUP words (registered from
        # ``rnv_rotate``, so it equals "some slnv tap is high"): no single net drives all F + L words'
        # enables (the 8x8 int8 core's critical path was tag_slnv3 -> the ring's enables, 15.68 ns)
        groups = -(-len(ring) // RNV_GROUP)
        rotate = kept_copies(m, self.rnv_rotate, groups, "rnv_rot")
        m.d.comb += [rd_unit.prm.eq(prm), rd_unit.addend.eq(sld), rnv_unit.prm.eq(prm_ws),
                     rnv_unit.addend.eq(self.slnv_in)]
        # a block's first tile rescales 0: a unit with a `first` port does the select itself, so its
        # multiplier's operand register takes RD / RNV straight from their registers
        for unit, first, old in ((rd_unit, self.rd_first, rd), (rnv_unit, self.slnv_first, ring[0])):
            if hasattr(unit, "first"):
                m.d.comb += [unit.old.eq(old), unit.first.eq(first)]
            else:
                m.d.comb += unit.old.eq(Mux(first, 0, old))
        f_last = self.value_dim - 1
        with m.If(rd_taps[-1]):
            m.d.sync += rd.eq(rd_unit.y)
        shifted = ring[1:] + [ring[0]]
        for i, (r, n) in enumerate(zip(ring, shifted)):
            with m.If(rotate[i // RNV_GROUP]):
                if i == f_last:
                    m.d.sync += r.eq(Mux(slnv_taps[-1], rnv_unit.y, n))
                else:
                    m.d.sync += r.eq(n)

        # --- FINAL: reciprocal (shared unit outside) and output: AV[f] shifts in output_latency later
        m.d.comb += self.rd_out.eq(rd_fin)
        with m.If(self.recip_capture):
            m.d.sync += recip_value.eq(self.recip_in)
        # the snapshot and shift enables of the F output words, one kept flip-flop per FIN_GROUP words,
        # registered from strobes that come a cycle early: one register drove all F x acc_bits enables
        # (the 4x4 int8 core's critical path on a seed: a column's rnv_snap copy -> 13.16 ns of routing
        # -> rnv_fin's enables)
        fgroups = -(-self.value_dim // FIN_GROUP)
        snap = kept_copies(m, self.rnv_snap_pre, fgroups, "rnv_snap")
        shift = kept_copies(m, self.out_mul_pre, fgroups, "out_mul")
        out_mul = kept_register(self.out_mul_pre, "out_mul_r")
        m.d.sync += out_mul.eq(self.out_mul_pre)
        for i, (d, s, n) in enumerate(zip(fin, ring, fin[1:] + [fin[0]])):
            with m.If(snap[i // FIN_GROUP]):
                m.d.sync += d.eq(s)
            with m.Elif(shift[i // FIN_GROUP]):
                m.d.sync += d.eq(n)
        out = m.submodules.output = self._out
        m.d.comb += [out.rnv.eq(fin[0]), out.recip.eq(recip_value)]
        with m.If(delayed(out_mul, out.latency, "tag_out")[-1]):
            m.d.sync += [a.eq(n) for a, n in zip(av, av[1:] + [Mux(seen_fin, out.y, 0)])]
        m.d.comb += [o.eq(a) for o, a in zip(self.av_out, av)]
        return m
