"""The attention core: buffers, 2D array, 1D array and the controller of the 1-pass (FuseMax /
FlashAttention-2) cascade.

Operation: pulse ``start`` with ``num_queries`` (P), ``num_keys`` (M) and ``causal``; stream in P beats
on ``q`` (beat p = Q[:, p], element e in bits [e*B, (e+1)*B)), M beats on ``k`` (K[:, m]) and M beats
on ``v`` (V[:, m]), in any interleaving; the core then emits P beats on ``out`` (beat p = AV[:, p],
element f in bits [f*Bo, (f+1)*Bo)) and raises ``done`` for one cycle.  ``compute_cycles`` counts the
cycles spent after loading (see :func:`compute_cycles`).

Schedule, per block of C queries (``pb``) and per tile of R keys (``m1``)::

    TILE   read Q block and K/V tile from the buffers, clear the array        2 cycles
    QK     output-stationary E-deep dot products                              E + R + C - 2
    DRAIN  QK rows shift down into the 1D PEs (LM, mask)                       R
    RMUPD  RM, RM_prev                                                         1
    EXP    SLN for R rows then PRM; SLN shifts into the array's weights        R + 1 + exp_latency
    SLNV   weight-stationary V products, column sums de-skewed into RNV        F + R + C - 1
    then, per block: reciprocal and AV = RNV * recip (recip_latency + F + 1), and the output beats.

With ``causal``, tiles whose first key is past the block's last query are skipped (they are fully
masked and would rescale by exactly 1).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.buffers import BankedBuffer
from einloom.rtl.config import RtlConfig
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.pe import PEMode
from einloom.rtl.units import units_for
from einloom.rtl.vector import VectorPE


def tiles_per_block(cfg: RtlConfig, num_queries: int, num_keys: int, causal: bool) -> list[int]:
    """Key tiles processed for each block of C queries."""
    r, c = cfg.rows, cfg.cols
    m1 = -(-num_keys // r)
    blocks = -(-num_queries // c)
    out = []
    for pb in range(blocks):
        n = m1
        if causal:
            n = min(m1, (pb * c + c - 1) // r + 1)
        out.append(n)
    return out


def compute_cycles(cfg: RtlConfig, num_queries: int, num_keys: int, causal: bool = False, *,
                   exp_latency: int, recip_latency: int) -> int:
    """Cycles from the end of loading to the last output beat, with the output always ready.

    ``sum over blocks pb of [1 + T(pb) * tile_cycles + recip_latency + F + 1 + beats(pb)] + 1`` with
    ``tile_cycles = 2 + (E+R+C-2) + R + 1 + (R+1+exp_latency) + (F+R+C-1)``.
    """
    r, c, e, f = cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim
    tile = 2 + (e + r + c - 2) + r + 1 + (r + 1 + exp_latency) + (f + r + c - 1)
    total = 0
    for pb, n in enumerate(tiles_per_block(cfg, num_queries, num_keys, causal)):
        beats = min(c, num_queries - pb * c)
        total += 1 + n * tile + recip_latency + f + 1 + beats
    return total + 1


def tile_cycles_formula() -> str:
    return "2 + (E+R+C-2) + R + 1 + (R+1+exp_latency) + (F+R+C-1)"


class AttentionCore(wiring.Component):
    """Softmax attention AV = softmax(scale * K^T Q) V over one head, 1-pass with running max.

    Parameters
    ----------
    cfg : RtlConfig
        Array size R x C, head dims E and F, buffer sizes, number format.

    Members
    -------
    start, num_queries, num_keys, causal : In
        Command; sampled when ``start`` is high while idle (``busy`` low).
    q, k, v : In(stream.Signature)
        Input vectors (see the module docstring); accepted only while loading.
    out : Out(stream.Signature)
        AV vectors, one per query in order.
    busy, done, compute_cycles : Out

    Latency: :func:`compute_cycles` after the last input beat (plus one cycle per output stall).
    Limits: 1 <= P <= max_queries, 1 <= M <= max_keys (larger values are clamped by the counters'
    widths and give wrong results); M0 = R.
    """

    def __init__(self, cfg: RtlConfig):
        self.cfg = cfg
        self.units = units_for(cfg.fmt)
        u = self.units
        ib = cfg.index_bits
        self.in_bits = u.input_shape.width
        self.out_bits = u.output_shape.width
        self.exp_latency, self.recip_latency = u.exp_latency, u.recip_latency
        super().__init__({
            "start": In(1), "num_queries": In(unsigned(ib)), "num_keys": In(unsigned(ib)), "causal": In(1),
            "q": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "k": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "v": In(stream.Signature(unsigned(cfg.value_dim * self.in_bits))),
            "out": Out(stream.Signature(unsigned(cfg.value_dim * self.out_bits))),
            "busy": Out(1), "done": Out(1), "compute_cycles": Out(32),
        })

    def expected_cycles(self, num_queries: int, num_keys: int, causal: bool = False) -> int:
        return compute_cycles(self.cfg, num_queries, num_keys, causal, exp_latency=self.exp_latency,
                              recip_latency=self.recip_latency)

    def elaborate(self, platform):
        cfg, u = self.cfg, self.units
        R, C, E, F, B = cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, self.in_bits
        ib = cfg.index_bits
        m = Module()

        qbuf = m.submodules.qbuf = BankedBuffer(banks=C, depth=-(-cfg.max_queries // C), width=E * B)
        kbuf = m.submodules.kbuf = BankedBuffer(banks=R, depth=-(-cfg.max_keys // R), width=E * B)
        vbuf = m.submodules.vbuf = BankedBuffer(banks=R, depth=-(-cfg.max_keys // R), width=F * B)
        array = m.submodules.array = SystolicArray(u, R, C)
        vpes = [VectorPE(u, column=c, rows=R, value_dim=F, index_bits=ib) for c in range(C)]
        for c, vpe in enumerate(vpes):
            m.submodules[f"vpe{c}"] = vpe

        # ---- command and load -----------------------------------------------------------------
        n_q, n_k, causal = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1)), Signal()
        q_cnt, k_cnt, v_cnt = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))

        def loader(port, buf, cnt, banks, name):
            bank = Signal(unsigned(max(1, (banks - 1).bit_length())), name=f"{name}_bank")
            addr = Signal(len(buf.w_addr), name=f"{name}_addr")
            m.d.comb += [buf.w_data.eq(port.payload), buf.w_bank.eq(bank), buf.w_addr.eq(addr),
                         buf.w_en.eq(port.valid & port.ready)]
            with m.If(port.valid & port.ready):
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(bank == banks - 1):
                    m.d.sync += [bank.eq(0), addr.eq(addr + 1)]
                with m.Else():
                    m.d.sync += bank.eq(bank + 1)
            return bank, addr

        q_bank, q_addr = loader(self.q, qbuf, q_cnt, C, "q")
        k_bank, k_addr = loader(self.k, kbuf, k_cnt, R, "k")
        v_bank, v_addr = loader(self.v, vbuf, v_cnt, R, "v")

        # ---- feed registers: one tile of K, V and one block of Q, shifted out element by element
        k_regs = [[Signal(u.input_shape, name=f"k{r}_{e}") for e in range(E)] for r in range(R)]
        v_regs = [[Signal(u.input_shape, name=f"v{r}_{f}") for f in range(F)] for r in range(R)]
        q_regs = [[Signal(u.input_shape, name=f"q{c}_{e}") for e in range(E)] for c in range(C)]

        def unpack(word, regs, n):
            return [reg.eq(word[i * B:(i + 1) * B]) for i, reg in zip(range(n), regs)]

        def shift(regs):
            return [a.eq(b) for a, b in zip(regs, regs[1:])] + [regs[-1].eq(0)]

        # ---- counters -------------------------------------------------------------------------
        block, tile = Signal(unsigned(ib)), Signal(unsigned(ib))
        query_base, key_base = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))
        t = Signal(16)
        beat = Signal(unsigned(max(1, C.bit_length())))
        cycles = Signal(32)
        m.d.comb += [self.compute_cycles.eq(cycles), qbuf.r_addr.eq(block), kbuf.r_addr.eq(tile),
                     vbuf.r_addr.eq(tile)]

        ctl = {name: Signal(name=f"ctl_{name}") for name in
               ["init", "tile_start", "capture", "rm_update", "issue_sln", "issue_prm", "slnv", "rd_update",
                "recip_issue", "recip_capture", "out_mul"]}
        key_index = Signal(unsigned(ib))
        feed_k, feed_q, feed_v = Signal(), Signal(), Signal()
        for c, vpe in enumerate(vpes):
            m.d.comb += [getattr(vpe, name).eq(sig) for name, sig in ctl.items()]
            m.d.comb += [vpe.key_index.eq(key_index), vpe.num_keys.eq(n_k), vpe.query_base.eq(query_base),
                         vpe.causal.eq(causal), vpe.acc_in.eq(array.acc_out[c]),
                         vpe.slnv_in.eq(array.acc_out_deskewed[c]), array.w_in[c].eq(vpe.w_out)]
        m.d.comb += array.w_shift.eq(vpes[0].w_valid)
        for r in range(R):
            with m.If(feed_k):
                m.d.comb += array.a_in[r].eq(k_regs[r][0])
            with m.Elif(feed_v):
                m.d.comb += array.a_in[r].eq(v_regs[r][0])
        for c in range(C):
            with m.If(feed_q):
                m.d.comb += array.b_in[c].eq(q_regs[c][0])

        os_len = E + R + C - 2
        exp_len = R + 1 + self.exp_latency
        ws_len = F + R + C - 1
        fin_len = self.recip_latency + F + 1
        beats = Signal(unsigned(ib + 1))
        m.d.comb += beats.eq((n_q - query_base).as_unsigned())
        last_tile = Signal()
        m.d.comb += last_tile.eq((key_base + R >= n_k) | (causal & (key_base + R > query_base + C - 1)))

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [n_q.eq(self.num_queries), n_k.eq(self.num_keys), causal.eq(self.causal),
                                 q_cnt.eq(0), k_cnt.eq(0), v_cnt.eq(0), cycles.eq(0),
                                 q_bank.eq(0), q_addr.eq(0), k_bank.eq(0), k_addr.eq(0),
                                 v_bank.eq(0), v_addr.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.busy.eq(1), self.q.ready.eq(q_cnt < n_q), self.k.ready.eq(k_cnt < n_k),
                             self.v.ready.eq(v_cnt < n_k)]
                with m.If((q_cnt == n_q) & (k_cnt == n_k) & (v_cnt == n_k)):
                    m.d.sync += [block.eq(0), query_base.eq(0)]
                    m.next = "BLOCK"
            with m.State("BLOCK"):
                m.d.comb += [self.busy.eq(1), ctl["init"].eq(1)]
                m.d.sync += [tile.eq(0), key_base.eq(0), cycles.eq(cycles + 1)]
                m.next = "TILE"
            with m.State("TILE"):          # buffers read at (block, tile); data arrives next cycle
                m.d.comb += [self.busy.eq(1), array.clear.eq(1), ctl["tile_start"].eq(1)]
                m.d.sync += cycles.eq(cycles + 1)
                m.next = "TLOAD"
            with m.State("TLOAD"):
                m.d.comb += self.busy.eq(1)
                for r in range(R):
                    m.d.sync += unpack(kbuf.r_data[r], k_regs[r], E) + unpack(vbuf.r_data[r], v_regs[r], F)
                for c in range(C):
                    m.d.sync += unpack(qbuf.r_data[c], q_regs[c], E)
                m.d.sync += [t.eq(0), cycles.eq(cycles + 1)]
                m.next = "QK"
            with m.State("QK"):
                m.d.comb += [self.busy.eq(1), array.mode.eq(PEMode.OS), feed_k.eq(t < E), feed_q.eq(t < E)]
                for regs in k_regs + q_regs:
                    m.d.sync += shift(regs)
                m.d.sync += [t.eq(t + 1), cycles.eq(cycles + 1)]
                with m.If(t == os_len - 1):
                    m.d.sync += [t.eq(0), key_index.eq(key_base + R - 1)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.busy.eq(1), array.mode.eq(PEMode.SHIFT), ctl["capture"].eq(1)]
                m.d.sync += [t.eq(t + 1), key_index.eq(key_index - 1), cycles.eq(cycles + 1)]
                with m.If(t == R - 1):
                    m.next = "RMUPD"
            with m.State("RMUPD"):
                m.d.comb += [self.busy.eq(1), ctl["rm_update"].eq(1)]
                m.d.sync += [t.eq(0), cycles.eq(cycles + 1)]
                m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [self.busy.eq(1), ctl["issue_sln"].eq(t < R), ctl["issue_prm"].eq(t == R)]
                m.d.sync += [t.eq(t + 1), cycles.eq(cycles + 1)]
                with m.If(t == exp_len - 1):
                    m.d.sync += t.eq(0)
                    m.next = "SLNV"
            with m.State("SLNV"):
                m.d.comb += [self.busy.eq(1), array.mode.eq(PEMode.WS), feed_v.eq(t < F),
                             ctl["rd_update"].eq(t == 0),
                             ctl["slnv"].eq((t >= array.ws_latency) & (t < array.ws_latency + F))]
                for regs in v_regs:
                    m.d.sync += shift(regs)
                m.d.sync += [t.eq(t + 1), cycles.eq(cycles + 1)]
                with m.If(t == ws_len - 1):
                    m.d.sync += t.eq(0)
                    with m.If(last_tile):
                        m.next = "FINAL"
                    with m.Else():
                        m.d.sync += [tile.eq(tile + 1), key_base.eq(key_base + R)]
                        m.next = "TILE"
            with m.State("FINAL"):
                m.d.comb += [self.busy.eq(1), ctl["recip_issue"].eq(t == 0),
                             ctl["recip_capture"].eq(t == self.recip_latency),
                             ctl["out_mul"].eq(t > self.recip_latency)]
                m.d.sync += [t.eq(t + 1), cycles.eq(cycles + 1)]
                with m.If(t == fin_len - 1):
                    m.d.sync += [t.eq(0), beat.eq(0)]
                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                payloads = [Cat(*vpe.av_out) for vpe in vpes]
                m.d.comb += [self.busy.eq(1), self.out.valid.eq(1)]
                with m.Switch(beat):
                    for c in range(C):
                        with m.Case(c):
                            m.d.comb += self.out.payload.eq(payloads[c])
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(self.out.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If((beat == C - 1) | (beat + 1 == beats)):
                        with m.If(query_base + C >= n_q):
                            m.next = "DONE"
                        with m.Else():
                            m.d.sync += [block.eq(block + 1), query_base.eq(query_base + C)]
                            m.next = "BLOCK"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.d.sync += cycles.eq(cycles + 1)
                m.next = "IDLE"
        return m
