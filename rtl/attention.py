"""The attention core: buffers, 2D array, 1D array and the controller of the 1-pass (FuseMax /
FlashAttention-2) cascade, with the 2D and 1D arrays overlapped.

Operation: pulse ``start`` with ``num_queries`` (P), ``num_keys`` (M) and ``causal``; stream in P beats
on ``q`` (beat p = Q[:, p], element e in bits [e*B, (e+1)*B)), M beats on ``k`` (K[:, m]) and M beats
on ``v`` (V[:, m]), in any interleaving; the core then emits P beats on ``out`` (beat p = AV[:, p],
element f in bits [f*Bo, (f+1)*Bo)) and raises ``done`` for one cycle.  ``compute_cycles`` counts the
cycles spent after loading (see :func:`compute_cycles`).

Schedule: the work items are the (query block of C, key tile of R) pairs in order (skipped tiles left
out, one empty item for a block that sees no key).  The controller issues *slots* at least
``period`` cycles apart (:class:`einloom.sim.rtl_core.Timeline`); slot j feeds the 2D array item j's
K and Q (QK, output-stationary, E cycles) and right behind them item j-1's V (SLNV, weight-stationary,
F cycles, on the weights SLN(j-1) the 1D array loaded into the PEs' shadow registers during slot j-1).
Meanwhile the 1D array drains item j's scores out of the PEs' drain registers, updates the running
max, exponentiates SLN (into the shadow weights) and PRM and updates RD; item j-1's column sums update
RNV; and when item j-1 ends a block, the block's FINAL (one shared reciprocal per query, AV = RNV *
recip) and OUTPUT beats follow while the next block's tiles run.  So the 2D array is busy E + F of
every ``period`` cycles (FuseMax's pipelining of consecutive key tiles, and of query blocks).

Every strobe is a flip-flop decoded from a delayed copy of the slot's descriptor (the offsets of the
Timeline); the PE's mode travels with the data (a tag beside each ``a`` operand, per row and column
skew), column c's controls follow one register per column behind column 0's, row r's feed controls
one register per row.  A slot that ends a block issues only when the previous block's last output
beat has left, so output backpressure stalls the issue and nothing else.

With ``causal`` the mask is aligned to the bottom right (FlashAttention >= 2.1, the library's
cascades, :func:`einloom.sim.formats.base.attention_mask`): query p sees key m iff m <= p + M - P.
Tiles whose first key is past the block's last visible key (``query_base + C - 1 + M - P``) are
skipped; a block none of whose queries sees a key (P > M) runs no tile and outputs 0.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, DomainRenamer, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from einloom.rtl.buffers import BankedBuffer
from einloom.rtl.config import RtlConfig
from einloom.rtl.kept import kept_copies, kept_register, regions_built, reset_region
from einloom.rtl.mesh import SystolicArray
from einloom.rtl.pe import mac_latency
from einloom.rtl.schedule import schedule_problem
from einloom.rtl.vector import VectorPE, key_index_bits
from einloom.sim.rtl_core import CoreParams, Timeline, core_cycles


def core_params(cfg: RtlConfig) -> CoreParams:
    """The core's shape and unit latencies for the cycle model (:mod:`einloom.sim.rtl_core`)."""
    u = cfg.units()
    return CoreParams(cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, u.exp_latency, u.recip_latency,
                      u.output_latency, mac_latency(u), u.rescale_latency,
                      getattr(u, "acc_latency", 1), u.lm_register)


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


def compute_cycles(cfg: RtlConfig, num_queries: int, num_keys: int, causal: bool = False, *, window: int = 0,
                   sinks: int = 0, **_latencies) -> int:
    """Cycles from the end of loading to the last output beat (+1), with the output always ready:
    :func:`einloom.sim.rtl_core.core_cycles` of :func:`core_params` (the unit latencies come from the
    configuration's number format; the keyword arguments of the earlier signature are ignored)."""
    return core_cycles(core_params(cfg), num_queries, num_keys, causal, window, sinks)


def cycles_formula() -> str:
    return ("slots at I_0 = 1, I_j = I_{j-1} + period (a slot ending a block: at least I_f' + out + beats' + 1); "
            "compute_cycles = I_f + out + beats + 1 for the last block's ending slot f")


def _register_chain(m: Module, bundle: dict, length: int, prefix: str, domains: list[str]) -> list[dict]:
    """``length`` copies of a bundle of control signals, copy i delayed i cycles (one register per
    copy after the first, named ``{prefix}{i}_{name}``, in clock domain ``domains[i]``: its row's or
    column's reset region): the controls of skewed rows or columns.  The copies are kept apart in
    synthesis (:mod:`einloom.rtl.kept`): each drives its own row or column, none the whole array."""
    chain = [bundle]
    for i in range(1, length):
        nxt = {}
        for name, sig in chain[-1].items():
            nxt[name] = kept_register(sig, f"{prefix}{i}_{name}")
            m.d[domains[i]] += nxt[name].eq(sig)
        chain.append(nxt)
    return chain


def _past(port: Value, limit: int) -> Value:
    """``port > limit``, or a constant 0 when the port cannot exceed it (Verilator's lint refuses a
    comparison that is constant by the port's range: a 3-bit count against a limit of 7)."""
    return port > limit if limit < (1 << len(port)) - 1 else Const(0, 1)


#: output words per kept copy of the output mux's column select (the payload mux, AttentionCore)
OUT_SEL_WORDS = 4

#: feed registers (K, V elements of a row, Q elements of a column) per kept copy of their load and
#: shift strobes (one strobe's LUT driving a whole row's 16 x 8 enables across the die was the 4x4
#: int8 core's path on a seed: `ctl_feed_k` -> 7.72 ns of routing -> `k0_4`'s clock enable)
FEED_GROUP = 4


def _feed_enables(m: Module, early: dict, count: int, prefix: str, domain: str) -> list[dict]:
    """Per group of :data:`FEED_GROUP` of ``count`` feed registers, kept copies of the strobes in
    ``early`` (each registered from the strobe one cycle early, so equal to the strobe, in ``domain``):
    a group's copies drive its registers' enables and load selects only, named ``{prefix}_{strobe}{group}``."""
    groups = -(-count // FEED_GROUP)
    copies = {name: kept_copies(m, sig, groups, f"{prefix}_{name}", domain=domain) for name, sig in early.items()}
    return [{name: copies[name][g] for name in early} for g in range(groups)]


def _feed(m: Module, regs: list, word: Value, bits: int, enables: list[dict]) -> None:
    """Feed registers: on ``load`` register i takes element i of ``word``; on ``shift`` it takes
    register i + 1 (the last takes 0), so register 0 presents the elements in turn."""
    for i, reg in enumerate(regs):
        en = enables[i // FEED_GROUP]
        with m.If(en["load"]):
            m.d.sync += reg.eq(word[i * bits:(i + 1) * bits])
        with m.Elif(en["shift"]):
            m.d.sync += reg.eq(regs[i + 1] if i + 1 < len(regs) else 0)


class _DelayLine:
    """Delayed copies of the slot descriptor's fields: ``tap(name, n)`` is the field n cycles after
    the slot's issue cycle (one register per cycle, created on demand)."""

    def __init__(self, m: Module, fields: dict):
        self.m, self.fields = m, fields
        self.taps = {name: [sig] for name, sig in fields.items()}

    def tap(self, name: str, n: int):
        """(Call outside ``with m.If``: the registers it creates would load only under that condition.)"""
        line = self.taps[name]
        while len(line) <= n:
            d = Signal.like(line[-1], name=f"dl_{name}_{len(line)}")
            self.m.d.sync += d.eq(line[-1])
            line.append(d)
        return line[n]

    def window(self, name: str, start: int, length: int, label: str) -> Signal:
        """A registered strobe, high ``start`` .. ``start + length - 1`` cycles after the issue cycle of
        each slot whose (1-bit) field ``name`` is set."""
        s = Signal(name=f"ctl_{label}")
        if length > 0:
            assert start >= 1, (label, start)
            self.m.d.sync += s.eq(Cat(*[self.tap(name, n) for n in range(start - 1, start - 1 + length)]).any())
        return s

    def value(self, name: str, at: int, label: str) -> Signal:
        """A register holding the (multi-bit) field ``name`` of the slot issued ``at`` cycles ago."""
        s = Signal.like(self.fields[name], name=f"ctl_{label}")
        self.m.d.sync += s.eq(self.tap(name, at - 1))
        return s


class AttentionCore(wiring.Component):
    """Softmax attention AV = softmax(scale * K^T Q) V over one head, 1-pass with running max.

    Parameters
    ----------
    cfg : RtlConfig
        Array size R x C, head dims E and F, buffer sizes, number format.

    Members
    -------
    start, num_queries, num_keys, causal : In
        Command; registered every cycle, and taken (``busy`` or ``error`` high) the cycle after the
        one in which ``start`` is high while idle (``busy`` low); hold the values with ``start``.
    q, k, v : In(stream.Signature)
        Input vectors (see the module docstring); accepted only while loading.
    out : Out(stream.Signature)
        AV vectors, one per query in order.
    busy, done, compute_cycles : Out

    Latency: :func:`compute_cycles` after the last input beat (plus the cycles the output stalls).
    Reset: synchronous, active high; in the Verilog the controller, the array, the rows and the columns
    take it from flip-flops of their own (reset regions, :func:`einloom.rtl.kept.reset_region`): the
    controller one cycle after ``rst``, the regions two, the PEs three; raise ``start`` a cycle or more
    after ``rst`` falls (the command is taken two cycles after ``start``, and no region acts before the
    loads end).
    Limits: 1 <= P <= ``cfg.queries_limit``, 1 <= M <= ``cfg.keys_limit`` (the buffers' depths and the
    reach of the query-block and key-tile counters, whose bounds are the schedule's); M0 = R.  A command
    past them is refused: the core stays idle (accepts no input, produces no output) and ``error`` is
    high until the next command within the limits.
    """

    def __init__(self, cfg: RtlConfig):
        self.cfg = cfg
        self.units = cfg.units()
        u = self.units
        ib = cfg.index_bits
        self.in_bits = u.input_shape.width
        self.out_bits = u.output_shape.width
        self.exp_latency, self.recip_latency = u.exp_latency, u.recip_latency
        self.output_latency = u.output_latency
        self.params = core_params(cfg)
        problem = schedule_problem(self.params)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        self.timeline = Timeline(self.params)
        super().__init__({
            "start": In(1), "num_queries": In(unsigned(ib)), "num_keys": In(unsigned(ib)), "causal": In(1),
            "window": In(unsigned(ib)), "sinks": In(unsigned(ib)),
            "q": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "k": In(stream.Signature(unsigned(cfg.head_dim * self.in_bits))),
            "v": In(stream.Signature(unsigned(cfg.value_dim * self.in_bits))),
            "out": Out(stream.Signature(unsigned(cfg.value_dim * self.out_bits))),
            "busy": Out(1), "done": Out(1), "error": Out(1), "compute_cycles": Out(32),
        })

    def expected_cycles(self, num_queries: int, num_keys: int, causal: bool = False, window: int = 0,
                        sinks: int = 0) -> int:
        return core_cycles(self.params, num_queries, num_keys, causal, window, sinks)

    @property
    def latencies(self) -> dict[str, int]:
        """Unit latencies that enter :func:`compute_cycles`."""
        return {"exp_latency": self.exp_latency, "recip_latency": self.recip_latency,
                "output_latency": self.output_latency, "rescale_latency": self.units.rescale_latency}

    def elaborate(self, platform):
        cfg, u, tl = self.cfg, self.units, self.timeline
        R, C, E, F, B = cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, self.in_bits
        ib = cfg.index_bits
        m = Module()

        qbuf = m.submodules.qbuf = BankedBuffer(banks=C, depth=-(-cfg.max_queries // C), width=E * B)
        kbuf = m.submodules.kbuf = BankedBuffer(banks=R, depth=-(-cfg.max_keys // R), width=E * B)
        vbuf = m.submodules.vbuf = BankedBuffer(banks=R, depth=-(-cfg.max_keys // R), width=F * B)
        assert tl.load == BankedBuffer.latency, "the cycle model's load offset is the buffers' read latency"
        # reset regions (rtl/kept.py, reset_region): the array, each column (its 1D PE and its control
        # copies) and each row (its control copies) take the reset from flip-flops of their own,
        # registered from the controller's (its own region, at the end of elaborate): two cycles after
        # `rst`, the array's PEs three.  No region acts before the loads end, so the core's behaviour
        # from reset is unchanged.
        col_reset = [reset_region(m, f"col{c}_reset") for c in range(C)]
        row_reset = [reset_region(m, f"row{r}_reset") for r in range(R)]
        array = SystolicArray(u, R, C)
        m.submodules.array = DomainRenamer(reset_region(m, "array_reset"))(array)
        vpes = [VectorPE(u, column=c, rows=R, value_dim=F, index_bits=ib) for c in range(C)]
        assert array.combine_latency == self.params.combine_latency, "the cycle model's combine is the array's"
        assert vpes[0].sld_latency == self.params.sld_latency, "the cycle model's SLD latency is the 1D PE's"
        for c, vpe in enumerate(vpes):
            m.submodules[f"vpe{c}"] = DomainRenamer(col_reset[c])(vpe)

        # ---- command and load -----------------------------------------------------------------
        n_q, n_k, causal = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1)), Signal()
        n_w, n_s = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))       # window and sinks (0: none)
        q_cnt, k_cnt, v_cnt = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))

        def loader(port, buf, cnt, total, banks, name):
            """The stream's writer; ``room`` (registered: ``cnt < total``) is its ready while loading."""
            bank = Signal(unsigned(max(1, (banks - 1).bit_length())), name=f"{name}_bank")
            addr = Signal(len(buf.w_addr), name=f"{name}_addr")
            room = Signal(name=f"{name}_room")
            m.d.comb += [buf.w_data.eq(port.payload), buf.w_bank.eq(bank), buf.w_addr.eq(addr),
                         buf.w_en.eq(port.valid & port.ready)]
            with m.If(port.valid & port.ready):
                m.d.sync += [cnt.eq(cnt + 1), room.eq(cnt + 1 < total)]
                with m.If(bank == banks - 1):
                    m.d.sync += [bank.eq(0), addr.eq(addr + 1)]
                with m.Else():
                    m.d.sync += bank.eq(bank + 1)
            return bank, addr, room

        q_bank, q_addr, q_room = loader(self.q, qbuf, q_cnt, n_q, C, "q")
        k_bank, k_addr, k_room = loader(self.k, kbuf, k_cnt, n_k, R, "k")
        v_bank, v_addr, v_room = loader(self.v, vbuf, v_cnt, n_k, R, "v")

        # ---- states: IDLE -> LOAD -> RUN (slots) -> DONE ----------------------------------------
        IDLE, LOAD, RUN, DONE = range(4)
        state = Signal(range(4))
        cycles = Signal(32)
        refused = Signal()          # the last command was past the limits (see the docstring)
        m.d.comb += [self.compute_cycles.eq(cycles), self.busy.eq((state == LOAD) | (state == RUN)),
                     self.done.eq(state == DONE), self.error.eq(refused)]
        # in LOAD every stream's registered `room` is cnt < total (set to total != 0 by the command, then
        # cnt + 1 < total on each beat, and no beat without room), so the load is complete when no
        # stream has room: three flip-flops, not three count compares in front of the RUN transition's
        # fan-out (the 4x4 int8 core's critical path, 11.07 ns: a count -> its compare -> cur_kb)
        loaded = ~q_room & ~k_room & ~v_room

        # ---- work items: the next item to issue (cur) and the one issued before it (prev) ---------
        # the loop nest's counters: widths from the schedule's bounds (cfg.tile_bits / block_bits)
        tb = cfg.tile_bits
        cur_valid, cur_block = Signal(), Signal(unsigned(cfg.block_bits), name="cur_block")
        cur_tile = Signal(unsigned(tb), name="cur_tile")
        cur_qb, cur_kb = Signal(unsigned(ib + 1)), Signal(unsigned(ib + 1))
        prev_valid, prev_tile_item, prev_first, prev_last = Signal(), Signal(), Signal(), Signal()
        prev_tile, prev_qb = Signal(unsigned(tb), name="prev_tile"), Signal(unsigned(ib + 1))
        cur_empty, cur_last, cur_first = Signal(), Signal(), Signal()
        # window (> 0): tiles below the block's first window key qb + M - P - window + 1 that hold no sink
        # key are skipped: the tile the block runs next is the window's first tile lo (registered: cur_qb
        # changes at least a slot period before it is read) when the counter's tile lies below it
        # (the command's part of the sums, n_k - n_q - n_w + 1 and C + n_k - n_q - R, is a register set
        # with the command: cur_qb + n_k - n_q - n_w + 1 -> `lo_key <= 0` -> lo_kb's synchronous clear,
        # three adds and a compare, was the 4x4 int8 core's path on a seed at 96.98 MHz)
        lo_off, thr_off = Signal(signed(ib + 4), name="lo_off"), Signal(signed(ib + 4), name="thr_off")
        lo_key = Signal(signed(ib + 3))
        m.d.comb += lo_key.eq(cur_qb + lo_off)
        lo_tile, lo_kb = Signal(unsigned(tb), name="lo_tile"), Signal(unsigned(ib + 1))
        with m.If(lo_key <= 0):
            m.d.sync += [lo_tile.eq(0), lo_kb.eq(0)]
        with m.Else():
            m.d.sync += [lo_tile.eq(lo_key.as_unsigned() // R), lo_kb.eq((lo_key.as_unsigned() // R) * R)]
        # The next item's tests are registered in two levels (each one carry chain deep): the item
        # (cur_*) and the command change only on an issue or a command, at least a slot period (>= 3
        # cycles) before the next issue, and `settle` holds the issue until both levels are fresh (it
        # never delays a slot: the load takes at least two cycles and period >= max(R, C) + 1).
        # causal (bottom-right): the item is its block's last when the next tile's first key eff_kb + R
        # is past the block's last visible key cur_qb + C - 1 + n_k - n_q, i.e. eff_kb >= thr_causal;
        # and without a mask when eff_kb + R >= n_k, i.e. eff_kb >= thr_end; an empty block (that key
        # < 0) has one empty item.
        # the next block exists when cur_qb + C < n_q, i.e. cur_qb < n_q - C; a causal block is empty when
        # cur_qb + C + n_k <= n_q, i.e. cur_qb <= n_q - n_k - C: both bounds are registers set with the
        # command (`nv_bound`, `empty_bound`), so each test is one compare (the three-add `empty_r` test
        # was the 4x4 int8 core's path on two seeds, 9.85-9.98 ns)
        nv_bound = Signal(signed(ib + 3), name="nv_bound")
        empty_bound = Signal(signed(ib + 4), name="empty_bound")
        thr_end, thr_causal = Signal(signed(ib + 3)), Signal(signed(ib + 4))
        next_valid, empty_r = Signal(), Signal()
        m.d.sync += [thr_end.eq(n_k - R), thr_causal.eq(cur_qb + thr_off),
                     next_valid.eq(cur_qb < nv_bound), empty_r.eq(causal & (cur_qb <= empty_bound))]
        skip, last_cur, last_lo = Signal(), Signal(), Signal()
        m.d.sync += [skip.eq((n_w != 0) & (cur_kb >= n_s) & (cur_kb < lo_kb)),
                     last_cur.eq((cur_kb >= thr_end) | (causal & (cur_kb >= thr_causal))),
                     last_lo.eq((lo_kb >= thr_end) | (causal & (lo_kb >= thr_causal)))]
        settle = Signal(range(3))
        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        # `waited` = RUN & timer == 0 & settle == 0, as a register: predicted from the values this cycle
        # (both count down to 0 unless an issue reloads them; the issue and RUN's entry set it below), so
        # the issue condition is one LUT level shallower (timer / settle -> the issue condition ->
        # cur_tile was the 4x4 int8 core's path, 10.01 ns).  A DONE cycle may see it high: nothing is
        # valid then, so nothing issues.
        waited = Signal(name="waited", init=1)
        eff_tile, eff_kb = Signal(unsigned(tb), name="eff_tile"), Signal(unsigned(ib + 1))
        m.d.comb += [eff_tile.eq(Mux(skip, lo_tile, cur_tile)), eff_kb.eq(Mux(skip, lo_kb, cur_kb)),
                     cur_last.eq(Mux(skip, last_lo, last_cur)), cur_empty.eq(empty_r)]
        timer = Signal(range(max(2, tl.period)))
        assert tl.period >= 3, "the registered item tests need a slot period of at least 3 cycles"
        out_busy, out_valid = Signal(), Signal()
        next_fin = prev_valid & (prev_last | ~prev_tile_item)
        can = Signal()
        m.d.sync += waited.eq((state == RUN) & (timer <= 1) & (settle <= 1))
        m.d.comb += can.eq(waited & (cur_valid | prev_valid) & ~(next_fin & out_busy))

        # the slot descriptor, registered on issue (the issue cycle I is the cycle `issue` is high)
        d = {"os": Signal(name="slot_os"), "os_first": Signal(name="slot_os_first"),
             "ws": Signal(name="slot_ws"), "ws_first": Signal(name="slot_ws_first"),
             "fin": Signal(name="slot_fin"), "fin_empty": Signal(name="slot_fin_empty"),
             "kb": Signal(unsigned(ib + 1), name="slot_kb"), "qb": Signal(unsigned(ib + 1), name="slot_qb")}
        # (no reset: set at every slot issue before a slot reads them; the reset net's route to the
        # buffers' read-address copies was a path)
        kaddr, vaddr, qaddr = (Signal(unsigned(ib), name=n, reset_less=True) for n in ("kaddr", "vaddr", "qaddr"))
        m.d.comb += [kbuf.r_addr.eq(kaddr), vbuf.r_addr.eq(vaddr), qbuf.r_addr.eq(qaddr)]
        out_qb = Signal(unsigned(ib + 1))
        # the 1-bit fields are pulses (high in the issue cycle only); kb and qb are read at fixed taps
        m.d.sync += [d[name].eq(0) for name in ("os", "os_first", "ws", "ws_first", "fin", "fin_empty")]
        with m.If(can):
            os = cur_valid & ~cur_empty
            ws = prev_valid & prev_tile_item
            m.d.sync += [d["os"].eq(os), d["os_first"].eq(os & cur_first),
                         d["kb"].eq(eff_kb), d["qb"].eq(cur_qb), cur_first.eq(0),
                         d["ws"].eq(ws), d["ws_first"].eq(ws & prev_first),
                         d["fin"].eq(next_fin), d["fin_empty"].eq(next_fin & ~prev_tile_item),
                         kaddr.eq(eff_tile), qaddr.eq(cur_block), vaddr.eq(prev_tile),
                         timer.eq(tl.period - 1), settle.eq(2), waited.eq(0),
                         prev_valid.eq(cur_valid), prev_tile_item.eq(~cur_empty), prev_first.eq(cur_first),
                         prev_last.eq(cur_last), prev_tile.eq(eff_tile), prev_qb.eq(cur_qb)]
            with m.If(next_fin):
                m.d.sync += [out_busy.eq(1), out_qb.eq(prev_qb)]
            with m.If(cur_empty | cur_last):
                m.d.sync += [cur_block.eq(cur_block + 1), cur_qb.eq(cur_qb + C), cur_tile.eq(0), cur_kb.eq(0),
                             cur_valid.eq(next_valid), cur_first.eq(1)]
            with m.Else():
                m.d.sync += [cur_tile.eq(eff_tile + 1), cur_kb.eq(eff_kb + R)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        line = _DelayLine(m, d)
        w = line.window
        # 1D array (column 0; column c's copies follow c cycles late)
        ctl = {
            "init": w("os_first", tl.tile_start, 1, "init"),
            "tile_start": w("os", tl.tile_start, 1, "tile_start"),
            "snap": w("fin", tl.tile_start, 1, "snap"),
            "rd_snap": w("fin", tl.rd_snap, 1, "rd_snap"),
            "snap_empty": w("fin_empty", tl.tile_start, 1, "snap_empty"),
            "capture": w("os", tl.drain, R, "capture"),
            "capture_pre": w("os", tl.drain - 1, R, "capture_pre"),
            "rm_update": w("os", tl.rm_update, 1, "rm_update"),
            "issue_sln": w("os", tl.issue_sln, R, "issue_sln"),
            "issue_sln_pre": w("os", tl.issue_sln - 1, R, "issue_sln_pre"),
            "issue_prm": w("os", tl.issue_prm, 1, "issue_prm"),
            "rd_update": w("os", tl.rd_update, 1, "rd_update"),
            "rd_first": w("os_first", tl.rd_update, 1, "rd_first"),
            "prm_latch": w("ws", tl.prm_latch, 1, "prm_latch"),
            "slnv": w("ws", tl.slnv, F, "slnv"),
            "slnv_first": w("ws_first", tl.slnv, F, "slnv_first"),
            "rnv_rotate": w("ws", tl.slnv - 1, F + u.rescale_latency, "rnv_rotate"),
            # a cycle early: the 1D PE registers them in copies per group of output words
            "rnv_snap_pre": w("fin", tl.rnv_snap - 1, 1, "rnv_snap_pre"),
            "recip_capture": w("fin", tl.recip_capture, 1, "recip_capture"),
            "out_mul_pre": w("fin", tl.out_mul - 1, F, "out_mul_pre"),
            "drain": w("os", tl.array_drain, R - 1, "drain"),
            # feeds of row 0 / column 0
            "load_k": w("os", tl.load, 1, "load_k"), "load_v": w("ws", tl.load, 1, "load_v"),
            "feed_k": w("os", tl.feed, E, "feed_k"), "first_k": w("os", tl.feed, 1, "first_k"),
            "last_k": w("os", tl.feed + E - 1, 1, "last_k"),
            "feed_v": w("ws", tl.feed_v, F, "feed_v"), "first_v": w("ws", tl.feed_v, 1, "first_v"),
        }
        init_qb = line.value("qb", tl.tile_start, "init_qb")
        key_index = Signal(unsigned(key_index_bits(ib, R)))   # padding keys reach max_keys + R - 2
        drain_kb = line.tap("kb", tl.drain - 1)      # (taps are created outside any m.If: they are registers)
        with m.If(line.tap("os", tl.drain - 1)):
            m.d.sync += key_index.eq(drain_kb + R - 1)
        with m.Elif(ctl["capture"]):
            m.d.sync += key_index.eq(key_index - 1)
        recip_shift = w("fin", tl.recip_load + 1, C - 1, "recip_shift")
        out_start = line.tap("fin", tl.out - 1)

        # ---- per-column controls: column c (2D-array column and 1D PE) gets them c cycles late ------
        vector_strobes = ["init", "snap", "rd_snap", "snap_empty", "tile_start", "capture", "capture_pre",
                          "rm_update", "issue_sln", "issue_sln_pre",
                          "issue_prm", "rd_update", "rd_first", "prm_latch", "slnv", "slnv_first", "rnv_rotate",
                          "rnv_snap_pre", "recip_capture", "out_mul_pre"]
        bundle = {name: ctl[name] for name in vector_strobes + ["drain", "load_k", "feed_k"]}
        bundle["key_index"], bundle["query_base"] = key_index, init_qb
        columns = _register_chain(m, bundle, C, "col", col_reset)
        recip = u.recip_unit()
        m.submodules.recip = DomainRenamer(reset_region(m, "recip_reset"))(recip)
        rd_chain = [Signal(u.den_shape, name=f"rd_chain{c}", reset_less=True) for c in range(C)]
        m.d.comb += recip.x.eq(rd_chain[0])
        for c, (vpe, col) in enumerate(zip(vpes, columns)):
            m.d.comb += [getattr(vpe, name).eq(col[name]) for name in vector_strobes + ["key_index", "query_base"]]
            m.d.comb += [vpe.recip_in.eq(recip.y), vpe.num_keys.eq(n_k), vpe.num_queries.eq(n_q),
                         vpe.causal.eq(causal), vpe.window.eq(n_w), vpe.sinks.eq(n_s), vpe.acc_in.eq(array.shd_out[c]), vpe.slnv_in.eq(array.psum_out[c]),
                         array.w_in[c].eq(vpe.w_out), array.w_shift[c].eq(vpe.w_valid),
                         array.drain[c].eq(col["drain"])]
        with m.If(recip_shift):
            m.d.sync += [a.eq(b) for a, b in zip(rd_chain, rd_chain[1:])]
        with m.Else():
            m.d.sync += [a.eq(vpe.rd_out) for a, vpe in zip(rd_chain, vpes)]

        # ---- feeders: row r's K/V registers and column c's Q registers run r (c) cycles late -------
        # (on their own control copies), which is the array's input skew: element e of row r enters
        # the array at cycle feed + e + r, with its tag.  The buffers' read data stays valid meanwhile
        # (the read addresses change only on the next issue).
        k_regs = [[Signal(u.input_shape, name=f"k{r}_{e}", reset_less=True) for e in range(E)] for r in range(R)]
        v_regs = [[Signal(u.input_shape, name=f"v{r}_{f}", reset_less=True) for f in range(F)] for r in range(R)]
        q_regs = [[Signal(u.input_shape, name=f"q{c}_{e}", reset_less=True) for e in range(E)] for c in range(C)]

        rows = _register_chain(m, {name: ctl[name] for name in ["load_k", "load_v", "feed_k", "first_k", "last_k"]},
                               R, "row", row_reset)
        # V is skewed L (the accumulate's latency) per row: row r's WS psum meets row r+1's product
        lat = self.params.acc_latency
        v_rows = _register_chain(m, {name: ctl[name] for name in ["feed_v", "first_v"]}, (R - 1) * lat + 1, "vrow",
                                 [row_reset[i // lat] for i in range((R - 1) * lat + 1)])
        # the feed strobes one cycle early (row / column 0's from the delay line, the others the
        # previous row's or column's copy): the feed registers' kept enables are registered from them
        early = {name: w(kind, start - 1, length, f"{name}_pre") for name, kind, start, length in
                 (("load_k", "os", tl.load, 1), ("feed_k", "os", tl.feed, E), ("load_v", "ws", tl.load, 1),
                  ("feed_v", "ws", tl.feed_v, F))}
        for r, row in enumerate(rows):
            row = {**row, **v_rows[r * lat]}
            tag = array.tag_in[r]
            m.d.comb += [tag.os.eq(row["feed_k"]), tag.ws.eq(row["feed_v"]),
                         tag.first.eq(row["first_k"] | row["first_v"]), tag.last.eq(row["last_k"])]
            with m.If(row["feed_k"]):
                m.d.comb += array.a_in[r].eq(k_regs[r][0])
            with m.Elif(row["feed_v"]):
                m.d.comb += array.a_in[r].eq(v_regs[r][0])
            before = {**rows[r - 1], **v_rows[r * lat - 1]} if r else early
            _feed(m, k_regs[r], kbuf.r_data[r], B,
                  _feed_enables(m, {"load": before["load_k"], "shift": before["feed_k"]}, E, f"k{r}_en", row_reset[r]))
            _feed(m, v_regs[r], vbuf.r_data[r], B,
                  _feed_enables(m, {"load": before["load_v"], "shift": before["feed_v"]}, F, f"v{r}_en", row_reset[r]))
        for c, col in enumerate(columns):
            with m.If(col["feed_k"]):
                m.d.comb += array.b_in[c].eq(q_regs[c][0])
            before = columns[c - 1] if c else early
            _feed(m, q_regs[c], qbuf.r_data[c], B,
                  _feed_enables(m, {"load": before["load_k"], "shift": before["feed_k"]}, E, f"q{c}_en", col_reset[c]))

        # ---- output: beat c is column c's AV; a block's beats start `out` cycles after its slot ------
        # The payload is a register (no mux between it and the port): it takes column 0's AV one cycle
        # before the first beat (`out_start`; column c's AV is final `out` - 1 + c cycles after the
        # slot, Timeline.OUT_REG) and column `sel`'s on each transfer, so column c + 1 is loaded while
        # beat c leaves.  `sel` and `is_last` are registers, so the C-way mux's select and the output
        # valid's update come straight from flip-flops.
        sel = Signal(unsigned(max(1, C.bit_length())))         # the column loaded next (0 between blocks)
        beat = Signal(unsigned(max(1, C.bit_length())))
        beats = Signal(unsigned(ib + 1))      # registered: out_qb is set `out` (> 1) cycles before the beats
        m.d.sync += beats.eq((n_q - out_qb).as_unsigned())
        is_last = Signal()                    # the beat on the port is the block's last
        payload = Signal(self.out.payload.shape(), reset_less=True)
        m.d.comb += [self.out.valid.eq(out_valid), self.out.payload.eq(payload)]
        # the mux's select in kept copies, one per OUT_SEL_WORDS output words (one `sel` flip-flop
        # fanning out to every payload bit's mux was the 4x4 int8 core's critical path at 90.87 MHz:
        # `sel` -> 9.75 ns of routing -> a payload flip-flop)
        words = [list(range(g, min(g + OUT_SEL_WORDS, F))) for g in range(0, F, OUT_SEL_WORDS)]
        sels = [sel] + [kept_register(sel, f"sel_copy{g}") for g in range(1, len(words))]
        # ... and the output valid in kept copies too, for the payload words' load enables (`out_valid`
        # -> 9.78 ns of routing -> a payload flip-flop's enable was a seed's path at 90.80 MHz)
        valids = [out_valid] + [kept_register(out_valid, f"out_valid_copy{g}") for g in range(1, len(words))]
        word_bits = self.out_bits
        assert len(vpes[0].av_out[0]) == word_bits
        for g, group in enumerate(words):
            with m.Switch(sels[g]):
                for c in range(C):
                    with m.Case(c):
                        with m.If(out_start | (valids[g] & self.out.ready)):
                            m.d.sync += payload[group[0] * word_bits:(group[-1] + 1) * word_bits].eq(
                                Cat(*[vpes[c].av_out[f] for f in group]))
        with m.If(out_start):
            m.d.sync += [v.eq(1) for v in valids] + [beat.eq(0), is_last.eq((C == 1) | (beats <= 1))]
            m.d.sync += [s_.eq(1 % C) for s_ in sels]
        with m.Elif(out_valid & self.out.ready):
            m.d.sync += [beat.eq(beat + 1), is_last.eq((beat + 2 == C) | (beat + 2 == beats))]
            m.d.sync += [s_.eq(Mux(s_ == C - 1, 0, s_ + 1)) for s_ in sels]
            with m.If(is_last):
                m.d.sync += [v.eq(0) for v in valids] + [out_busy.eq(0)]
                m.d.sync += [s_.eq(0) for s_ in sels]

        # ---- state machine and the command ---------------------------------------------------------
        # the command is registered at the core's boundary, so no input drives logic: an input ->
        # `start` and the limit compares -> `state`'s enable was the 4x4 int8 core's path on two seeds
        # (93.17, 96.32 MHz; 8.7-9.0 ns of routing from the I/O harness's register).  A command is taken
        # one cycle after `start`; the run's cycles (RUN) do not change.
        start = Signal(name="start_r")
        cmd = {name: Signal.like(getattr(self, name), name=f"{name}_r", reset_less=True)
               for name in ("num_queries", "num_keys", "causal", "window", "sinks")}
        m.d.sync += [start.eq(self.start)] + [reg.eq(getattr(self, name)) for name, reg in cmd.items()]
        # num_keys - num_queries and window - 1 registered beside the command (one adder from the
        # inputs), so the offsets taken with the command are one add (the command registers -> three
        # chained adds -> lo_off was the 4x4 int8 core's path on a seed at 92.22 MHz)
        kq = Signal((self.num_keys - self.num_queries).shape(), name="kq_r", reset_less=True)
        w1 = Signal((self.window - 1).shape(), name="w1_r", reset_less=True)
        m.d.sync += [kq.eq(self.num_keys - self.num_queries), w1.eq(self.window - 1)]
        with m.If(state == RUN):
            m.d.sync += cycles.eq(cycles + 1)
        with m.Switch(state):
            with m.Case(IDLE):
                # while idle the command registers follow the inputs and the run's counters stay at
                # their start values every cycle, so only `state`, `refused` and `cycles` depend on
                # `start` and the limit compares (an input -> limit compare -> the enables of every
                # counter was a critical path of the 4x4 int8 core in its I/O harness, 12.59 ns)
                m.d.sync += [n_q.eq(cmd["num_queries"]), n_k.eq(cmd["num_keys"]),
                             causal.eq(cmd["causal"]), n_w.eq(cmd["window"]), n_s.eq(cmd["sinks"]),
                             lo_off.eq(kq - w1), thr_off.eq(kq + (C - R)),
                             nv_bound.eq(cmd["num_queries"] - C), empty_bound.eq(-C - kq),
                             cur_qb.eq(0), cur_kb.eq(0), cur_tile.eq(0), settle.eq(2),
                             q_cnt.eq(0), k_cnt.eq(0), v_cnt.eq(0),
                             q_bank.eq(0), q_addr.eq(0), k_bank.eq(0), k_addr.eq(0),
                             v_bank.eq(0), v_addr.eq(0), q_room.eq(cmd["num_queries"] != 0),
                             k_room.eq(cmd["num_keys"] != 0), v_room.eq(cmd["num_keys"] != 0)]
                with m.If(start & (_past(cmd["num_queries"], cfg.queries_limit)
                                   | _past(cmd["num_keys"], cfg.keys_limit))):
                    m.d.sync += refused.eq(1)
                with m.Elif(start):
                    m.d.sync += [refused.eq(0), state.eq(LOAD), cycles.eq(0)]
            with m.Case(LOAD):
                m.d.comb += [self.q.ready.eq(q_room), self.k.ready.eq(k_room), self.v.ready.eq(v_room)]
                with m.If(loaded):
                    m.d.sync += [state.eq(RUN), cur_valid.eq(1), cur_block.eq(0), cur_tile.eq(0), cur_first.eq(1),
                                 cur_kb.eq(0), prev_valid.eq(0), timer.eq(0), out_busy.eq(0),
                                 waited.eq(settle <= 1)]
            with m.Case(RUN):
                with m.If(~cur_valid & ~prev_valid & ~out_busy):
                    m.d.sync += state.eq(DONE)
            with m.Case(DONE):
                m.d.sync += state.eq(IDLE)
        if not regions_built():
            return m
        # the controller's own registers in a reset region too (the reset register -> 14.50 ns of
        # routing -> a slot delay line's flip-flop was the 8x8 int8 core's path at 64.72 MHz): its
        # copy is one cycle after `rst`, the regions above are registered from it (two), the PEs three
        top = Module()
        top.submodules.ctl = DomainRenamer(reset_region(top, "ctl_reset"))(m)
        return top
