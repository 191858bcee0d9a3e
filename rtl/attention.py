"""The attention core: buffers, 2D array, 1D array and the controller of the 1-pass (FuseMax /
FlashAttention-2) cascade.

Operation: pulse ``start`` with ``num_queries`` (P), ``num_keys`` (M) and ``causal``; stream in P beats
on ``q`` (beat p = Q[:, p], element e in bits [e*B, (e+1)*B)), M beats on ``k`` (K[:, m]) and M beats
on ``v`` (V[:, m]), in any interleaving; the core then emits P beats on ``out`` (beat p = AV[:, p],
element f in bits [f*Bo, (f+1)*Bo)) and raises ``done`` for one cycle.  ``compute_cycles`` counts the
cycles spent after loading (see :func:`compute_cycles`).

Schedule, per block of C queries (``pb``) and per tile of R keys (``m1``)::

    TILE   read Q block and K/V tile from the buffers, clear the array        2 cycles
    QK     output-stationary E-deep dot products                              E + R - 1 + 2
    DRAIN  QK rows shift down into the 1D PEs (LM, mask)                       R
    RMUPD  RM, RM_prev                                                         1
    EXP    SLN for R rows then PRM; SLN shifts into the array's weights        R + 1 + exp_latency
    SLNV   weight-stationary V products, column sums into RNV                  F + R + 2
    then, per block: FINAL, the reciprocals and AV = RNV * recip          recip_latency + F + output_latency + 1
    and OUTPUT, the output beats (one per query of the block).

(the + 2 in QK and SLNV is the 2D PE's multiply-accumulate pipeline, ``ProcessingElement.MAC_LATENCY``).
The phases are those of column 0; column c (2D-array column and 1D PE) runs them c cycles later.
With ``causal`` the mask is aligned to the bottom right (FlashAttention >= 2.1, the library's
cascades, :func:`einloom.sim.formats.base.attention_mask`): query p sees key m iff m <= p + M - P.
Tiles whose first key is past the block's last visible key (``query_base + C - 1 + M - P``) are
skipped (they are fully masked and would rescale by exactly 1); a block none of whose queries sees a
key (P > M) skips every tile and goes straight to FINAL, and its outputs are 0.

Column skew: column c's inputs reach it c cycles after column 0's, and every control of column c
(2D-array column c and 1D PE c) follows one register per column behind column 0's, so each column
runs column 0's schedule c cycles late.  The 1D array has one reciprocal unit for all C columns: RD
of column c enters it at FINAL cycle c (a shift chain), when column c captures the result c cycles
after column 0.  Output beat c is read at least c cycles after beat 0, so neither costs cycles.

Control: the phase (:class:`Phase`) and the phase counter ``t`` have explicit next-state logic; every
strobe the datapath sees is a flip-flop loaded with the decode of the *next* phase and ``t``, so
control decodes never sit in front of datapath logic.
"""
from __future__ import annotations

import enum

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.buffers import BankedBuffer
from einloom.rtl.config import RtlConfig
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.pe import PEMode, ProcessingElement
from einloom.rtl.schedule import schedule_problem
from einloom.rtl.units import units_for
from einloom.rtl.vector import VectorPE, key_index_bits


def tiles_per_block(cfg: RtlConfig, num_queries: int, num_keys: int, causal: bool) -> list[int]:
    """Key tiles processed for each block of C queries.

    ``ceil(M/R)``; with ``causal`` (bottom-right aligned) only the tiles up to the one holding the
    block's last visible key ``pb*C + C - 1 + M - P``: ``clamp(floor((pb*C + C - 1 + M - P)/R) + 1,
    0, ceil(M/R))`` (0 for a block that sees no key, possible only when P > M).
    """
    r, c = cfg.rows, cfg.cols
    m1 = -(-num_keys // r)
    blocks = -(-num_queries // c)
    out = []
    for pb in range(blocks):
        n = m1
        if causal:
            n = min(m1, max(0, (pb * c + c - 1 + num_keys - num_queries) // r + 1))
        out.append(n)
    return out


def compute_cycles(cfg: RtlConfig, num_queries: int, num_keys: int, causal: bool = False, *,
                   exp_latency: int, recip_latency: int, output_latency: int) -> int:
    """Cycles from the end of loading to the last output beat, with the output always ready.

    ``sum over blocks pb of [1 + T(pb) * tile_cycles + final_cycles + beats(pb)] + 1`` with
    ``tile_cycles`` and ``final_cycles`` as in :func:`tile_cycles_formula` and
    :func:`final_cycles_formula`.
    """
    r, c, e, f = cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim
    mac = ProcessingElement.MAC_LATENCY
    tile = 2 + (e + r - 1 + mac) + r + 1 + (r + 1 + exp_latency) + (f + r + mac)
    final = recip_latency + f + output_latency + 1
    total = 0
    for pb, n in enumerate(tiles_per_block(cfg, num_queries, num_keys, causal)):
        beats = min(c, num_queries - pb * c)
        total += 1 + n * tile + final + beats
    return total + 1


def tile_cycles_formula() -> str:
    return "2 + (E+R+1) + R + 1 + (R+1+exp_latency) + (F+R+2)"


def final_cycles_formula() -> str:
    return "recip_latency + F + output_latency + 1"


def _register_chain(m: Module, bundle: dict, length: int, prefix: str) -> list[dict]:
    """``length`` copies of a bundle of control signals, copy i delayed i cycles (one register per
    copy after the first, named ``{prefix}{i}_{name}``): the controls of skewed rows or columns."""
    chain = [bundle]
    for i in range(1, length):
        nxt = {}
        for name, sig in chain[-1].items():
            nxt[name] = Signal.like(sig, name=f"{prefix}{i}_{name}")
            m.d.sync += nxt[name].eq(sig)
        chain.append(nxt)
    return chain


class Phase(enum.IntEnum):
    """Controller phases (see the module docstring's schedule)."""

    IDLE = 0
    LOAD = 1
    BLOCK = 2
    TILE = 3
    TLOAD = 4
    QK = 5
    DRAIN = 6
    RMUPD = 7
    EXP = 8
    SLNV = 9
    FINAL = 10
    OUTPUT = 11
    DONE = 12


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
        self.output_latency = u.output_latency
        # the hand-offs between phases need slack (see einloom.rtl.schedule); RtlConfig checks it too
        problem = schedule_problem(cfg.rows, cfg.cols, cfg.value_dim, rescale_latency=u.rescale_latency,
                                   recip_latency=self.recip_latency, output_latency=self.output_latency)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        super().__init__({
            "start": In(1), "num_queries": In(unsigned(ib)), "num_keys": In(unsigned(ib)), "causal": In(1),
            "q": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "k": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "v": In(stream.Signature(unsigned(cfg.value_dim * self.in_bits))),
            "out": Out(stream.Signature(unsigned(cfg.value_dim * self.out_bits))),
            "busy": Out(1), "done": Out(1), "compute_cycles": Out(32),
        })

    def expected_cycles(self, num_queries: int, num_keys: int, causal: bool = False) -> int:
        return compute_cycles(self.cfg, num_queries, num_keys, causal, **self.latencies)

    @property
    def latencies(self) -> dict[str, int]:
        """Unit latencies that enter :func:`compute_cycles`."""
        return {"exp_latency": self.exp_latency, "recip_latency": self.recip_latency,
                "output_latency": self.output_latency}

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
        k_regs = [[Signal(u.input_shape, name=f"k{r}_{e}", reset_less=True) for e in range(E)] for r in range(R)]
        v_regs = [[Signal(u.input_shape, name=f"v{r}_{f}", reset_less=True) for f in range(F)] for r in range(R)]
        q_regs = [[Signal(u.input_shape, name=f"q{c}_{e}", reset_less=True) for e in range(E)] for c in range(C)]

        def unpack(word, regs, n):
            return [reg.eq(word[i * B:(i + 1) * B]) for i, reg in zip(range(n), regs)]

        def shift(regs):
            return [a.eq(b) for a, b in zip(regs, regs[1:])] + [regs[-1].eq(0)]

        # ---- shared reciprocal: RD of column c enters at FINAL cycle c through a shift chain ------
        recip = m.submodules.recip = u.recip_unit()
        rd_chain = [Signal(u.den_shape, name=f"rd_chain{c}", reset_less=True) for c in range(C)]
        m.d.comb += recip.x.eq(rd_chain[0])

        # ---- controller: phase register, phase counter t, and registered strobes --------------
        # Every control the datapath sees is a flip-flop: each cycle the strobes for the next cycle
        # are decoded from the next phase and the next t, so no comparison on t sits in front of the
        # datapath's logic.
        block, tile = Signal(unsigned(ib)), Signal(unsigned(ib))
        query_base, key_base = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))
        os_len = array.os_cycles(E)
        exp_len = R + 1 + self.exp_latency
        ws_len = F + array.ws_latency
        fin_len = self.recip_latency + F + self.output_latency + 1
        t_max = max(os_len, exp_len, ws_len, fin_len, R)
        t = Signal(range(t_max + 1))
        n_t = Signal.like(t)
        state, n_state = Signal(Phase), Signal(Phase)
        beat = Signal(unsigned(max(1, C.bit_length())))
        cycles = Signal(32)
        m.d.comb += [self.compute_cycles.eq(cycles), qbuf.r_addr.eq(block), kbuf.r_addr.eq(tile),
                     vbuf.r_addr.eq(tile)]
        # The block and tile tests below are registered (one cycle behind their operands): query_base
        # and key_base change only on the cycle that leaves OUTPUT / SLNV / LOAD / BLOCK, and each test
        # is read many cycles later (the next SLNV end or last output beat), except the empty-block
        # test, read in BLOCK right after query_base changes, which is registered for the block that
        # follows instead (the adders and comparators were the int8 cores' critical path, into the
        # block counter's enable).
        beats = Signal(unsigned(ib + 1))
        m.d.sync += beats.eq((n_q - query_base).as_unsigned())
        # causal (bottom-right): the next tile's first key key_base + R is past the block's last visible
        # key query_base + C - 1 + n_k - n_q; an empty block (that key < 0) skips its tiles
        last_tile, empty_block, more_blocks = Signal(), Signal(), Signal()
        first_empty, next_empty = Signal(), Signal()
        m.d.sync += [last_tile.eq((key_base + R >= n_k) | (causal & (key_base + R + n_q >= query_base + C + n_k))),
                     more_blocks.eq(query_base + C < n_q),
                     first_empty.eq(causal & (C + n_k <= n_q)),
                     next_empty.eq(causal & (query_base + 2 * C + n_k <= n_q))]
        loaded = (q_cnt == n_q) & (k_cnt == n_k) & (v_cnt == n_k)
        last_beat = self.out.ready & ((beat == C - 1) | (beat + 1 == beats))

        m.d.comb += [n_state.eq(state), n_t.eq(t + 1)]
        with m.Switch(state):
            with m.Case(Phase.IDLE):
                m.d.comb += n_t.eq(0)
                with m.If(self.start):
                    m.d.comb += n_state.eq(Phase.LOAD)
            with m.Case(Phase.LOAD):
                m.d.comb += n_t.eq(0)
                with m.If(loaded):
                    m.d.comb += n_state.eq(Phase.BLOCK)
            with m.Case(Phase.BLOCK):
                m.d.comb += [n_state.eq(Mux(empty_block, Phase.FINAL, Phase.TILE)), n_t.eq(0)]
            with m.Case(Phase.TILE):
                m.d.comb += [n_state.eq(Phase.TLOAD), n_t.eq(0)]
            with m.Case(Phase.TLOAD):
                m.d.comb += [n_state.eq(Phase.QK), n_t.eq(0)]
            for phase, length, after in [(Phase.QK, os_len, Phase.DRAIN), (Phase.DRAIN, R, Phase.RMUPD),
                                         (Phase.RMUPD, 1, Phase.EXP), (Phase.EXP, exp_len, Phase.SLNV),
                                         (Phase.FINAL, fin_len, Phase.OUTPUT)]:
                with m.Case(phase):
                    with m.If(t == length - 1):
                        m.d.comb += [n_state.eq(after), n_t.eq(0)]
            with m.Case(Phase.SLNV):
                with m.If(t == ws_len - 1):
                    m.d.comb += [n_state.eq(Mux(last_tile, Phase.FINAL, Phase.TILE)), n_t.eq(0)]
            with m.Case(Phase.OUTPUT):
                m.d.comb += n_t.eq(0)
                with m.If(last_beat):
                    m.d.comb += n_state.eq(Mux(more_blocks, Phase.BLOCK, Phase.DONE))
            with m.Case(Phase.DONE):
                m.d.comb += [n_state.eq(Phase.IDLE), n_t.eq(0)]
        m.d.sync += [state.eq(n_state), t.eq(n_t)]

        def decode(st, tt):
            ws_lat = array.ws_latency
            lr = self.recip_latency
            return {
                "busy": (st != Phase.IDLE) & (st != Phase.DONE), "done": st == Phase.DONE,
                "out_valid": st == Phase.OUTPUT,
                "clear": st == Phase.TILE, "load_tile": st == Phase.TLOAD,
                "mode_os": st == Phase.QK, "mode_shift": st == Phase.DRAIN, "mode_ws": st == Phase.SLNV,
                "feed_kq": (st == Phase.QK) & (tt < E), "shift_kq": st == Phase.QK,
                "feed_v": (st == Phase.SLNV) & (tt < F), "shift_v": st == Phase.SLNV,
                "init": st == Phase.BLOCK, "tile_start": st == Phase.TILE, "capture": st == Phase.DRAIN,
                "rm_update": st == Phase.RMUPD,
                "issue_sln": (st == Phase.EXP) & (tt < R), "issue_prm": (st == Phase.EXP) & (tt == R),
                "rd_update": (st == Phase.SLNV) & (tt == 0),
                "slnv": (st == Phase.SLNV) & (tt >= ws_lat) & (tt < ws_lat + F),
                "recip_shift": (st == Phase.FINAL) & (tt < C - 1),
                "recip_capture": (st == Phase.FINAL) & (tt == lr),
                "out_mul": (st == Phase.FINAL) & (tt > lr) & (tt <= lr + F),
            }

        ctl = {}
        for name, cond in decode(n_state, n_t).items():
            ctl[name] = Signal(name=f"ctl_{name}")
            m.d.sync += ctl[name].eq(cond)

        m.d.comb += [self.busy.eq(ctl["busy"]), self.done.eq(ctl["done"]), self.out.valid.eq(ctl["out_valid"])]

        # ---- per-column controls: column c (2D-array column and 1D PE) gets them c cycles late ------
        # Column c's data arrives c cycles after column 0's (the input skew), so its controls travel
        # one register per column behind it: each column has its own copies (no control net spans the
        # array) and no output de-skew is needed.  The shared reciprocal serves column c at FINAL cycle
        # c, and output beat c is read at least c cycles after beat 0, so the skew costs no cycles.
        vector_strobes = ["init", "tile_start", "capture", "rm_update", "issue_sln", "issue_prm", "slnv",
                          "rd_update", "recip_capture", "out_mul"]
        column_strobes = vector_strobes + ["clear", "mode_os", "mode_shift", "mode_ws", "load_tile", "feed_kq",
                                           "shift_kq"]
        key_index = Signal(unsigned(key_index_bits(ib, R)))   # padding keys reach max_keys + R - 2
        bundle = {name: ctl[name] for name in column_strobes}
        bundle["key_index"] = key_index
        columns = _register_chain(m, bundle, C, "col")
        for c, (vpe, col) in enumerate(zip(vpes, columns)):
            m.d.comb += [getattr(vpe, name).eq(col[name]) for name in vector_strobes + ["key_index"]]
            m.d.comb += [vpe.recip_in.eq(recip.y), vpe.num_keys.eq(n_k), vpe.num_queries.eq(n_q),
                         vpe.query_base.eq(query_base),
                         vpe.causal.eq(causal), vpe.acc_in.eq(array.acc_out[c]), vpe.slnv_in.eq(array.acc_out[c]),
                         array.w_in[c].eq(vpe.w_out), array.w_shift[c].eq(vpe.w_valid), array.clear[c].eq(col["clear"])]
            with m.If(col["mode_os"]):
                m.d.comb += array.mode[c].eq(PEMode.OS)
            with m.Elif(col["mode_shift"]):
                m.d.comb += array.mode[c].eq(PEMode.SHIFT)
            with m.Elif(col["mode_ws"]):
                m.d.comb += array.mode[c].eq(PEMode.WS)
        with m.If(ctl["recip_shift"]):
            m.d.sync += [a.eq(b) for a, b in zip(rd_chain, rd_chain[1:])]
        with m.Else():
            m.d.sync += [a.eq(vpe.rd_out) for a, vpe in zip(rd_chain, vpes)]

        # ---- feeders: row r's K/V registers and column c's Q registers run r (c) cycles late -------
        # (on their own control copies), which is the array's input skew: element e of row r enters
        # the array at cycle e + r.  The buffers' read data stays valid meanwhile (the read address is
        # the tile/block counter, constant through the tile).
        rows = _register_chain(m, {name: ctl[name] for name in ["load_tile", "feed_kq", "shift_kq", "feed_v",
                                                               "shift_v"]}, R, "row")
        for r, row in enumerate(rows):
            with m.If(row["feed_kq"]):
                m.d.comb += array.a_in[r].eq(k_regs[r][0])
            with m.Elif(row["feed_v"]):
                m.d.comb += array.a_in[r].eq(v_regs[r][0])
            with m.If(row["load_tile"]):        # the buffers were read at (block, tile) in TILE
                m.d.sync += unpack(kbuf.r_data[r], k_regs[r], E) + unpack(vbuf.r_data[r], v_regs[r], F)
            with m.If(row["shift_kq"]):
                m.d.sync += shift(k_regs[r])
            with m.If(row["shift_v"]):
                m.d.sync += shift(v_regs[r])
        for c, col in enumerate(columns):
            with m.If(col["feed_kq"]):
                m.d.comb += array.b_in[c].eq(q_regs[c][0])
            with m.If(col["load_tile"]):
                m.d.sync += unpack(qbuf.r_data[c], q_regs[c], E)
            with m.If(col["shift_kq"]):
                m.d.sync += shift(q_regs[c])

        # ---- counters and the command, by the current phase ---------------------------------------
        with m.If((state != Phase.IDLE) & (state != Phase.LOAD)):     # compute cycles: after loading
            m.d.sync += cycles.eq(cycles + 1)
        with m.Switch(state):
            with m.Case(Phase.IDLE):
                with m.If(self.start):
                    m.d.sync += [n_q.eq(self.num_queries), n_k.eq(self.num_keys), causal.eq(self.causal),
                                 q_cnt.eq(0), k_cnt.eq(0), v_cnt.eq(0), cycles.eq(0),
                                 q_bank.eq(0), q_addr.eq(0), k_bank.eq(0), k_addr.eq(0),
                                 v_bank.eq(0), v_addr.eq(0)]
            with m.Case(Phase.LOAD):
                m.d.comb += [self.q.ready.eq(q_cnt < n_q), self.k.ready.eq(k_cnt < n_k),
                             self.v.ready.eq(v_cnt < n_k)]
                with m.If(loaded):
                    m.d.sync += [block.eq(0), query_base.eq(0), empty_block.eq(first_empty)]
            with m.Case(Phase.BLOCK):
                m.d.sync += [tile.eq(0), key_base.eq(0)]
            with m.Case(Phase.QK):
                with m.If(t == os_len - 1):
                    m.d.sync += key_index.eq(key_base + R - 1)
            with m.Case(Phase.DRAIN):
                m.d.sync += key_index.eq(key_index - 1)
            with m.Case(Phase.SLNV):
                with m.If((t == ws_len - 1) & ~last_tile):
                    m.d.sync += [tile.eq(tile + 1), key_base.eq(key_base + R)]
            with m.Case(Phase.FINAL):
                m.d.sync += beat.eq(0)
            with m.Case(Phase.OUTPUT):
                payloads = [Cat(*vpe.av_out) for vpe in vpes]
                with m.Switch(beat):
                    for c in range(C):
                        with m.Case(c):
                            m.d.comb += self.out.payload.eq(payloads[c])
                with m.If(self.out.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(last_beat & more_blocks):
                        m.d.sync += [block.eq(block + 1), query_base.eq(query_base + C),
                                     empty_block.eq(next_empty)]
        return m
