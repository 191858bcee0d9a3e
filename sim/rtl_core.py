"""The simulator configured as the generated attention core: a slot-level model of its overlapped dataflow.

The generated core (``rtl/``, documented in rtl/README.md) runs 1-pass attention on an R x C 2D array
(rows = keys of a tile, columns = queries of a block) and a C-wide 1D array.  Its controller issues
*slots*, at least ``period`` cycles apart; slot j carries

* the QK product of work item j (output-stationary, E cycles of K/Q feeds into the 2D array) and the
  1D array's softmax bookkeeping of that tile (drain, running max, SLN/PRM exps, SLD, RD update), and
* the SLNV product of item j-1 (weight-stationary, F cycles of V feeds behind the QK feeds, on the
  weights SLN(j-1) that the 1D array shifted into the PEs' shadow registers during slot j-1), its RNV
  updates, and, when item j-1 ends a block of C queries, that block's FINAL (reciprocal and AV) and
  OUTPUT beats,

so the 2D array works on the products of key tile m1+1 while the 1D array does the bookkeeping of
tile m1 (FuseMax's pipelining), and consecutive query blocks follow each other without a flush.  The
work items are the (block, key tile) pairs in order, skipped tiles left out, and one empty item for a
block whose queries see no key (causal, P > M).  Every action of a slot happens at a fixed offset from
its issue cycle (:class:`Timeline`); the hardware generates its strobes from those offsets, and the
offsets bound how close slots may be (``period``).  A slot that finishes a block issues only when the
previous block's last output beat has left (the output registers are free), so with the output always
ready the issue times and the cycle count follow exactly::

    I_0 = 1,  I_j = I_{j-1} + period, or for a finishing slot max(that, I_f' + out_offset + beats' + 1)
    cycles = I_f + out_offset + beats + 1        (f, f': the last and previous finishing slots)

**Mask.**  A tile is run iff some (key, query) pair of it is visible under the mask
(:func:`einloom.sim.formats.base.attention_mask`, bottom-right aligned causal); for the bottom-right
causal mask this is the RTL's rule ``tiles(pb) = clamp(floor((pb*C + C - 1 + M - P)/R) + 1, 0,
ceil(M/R))``, and a block whose queries see no key outputs 0.

**Functional.**  :func:`run_core` with inputs executes every tile with the number format's primitives
(:class:`~einloom.sim.formats.base.NumberFormat`) in the core's op order: QK's ``dot``, the 1D array's
masked max, ``exp_diff``, the drained sum (rows R-1 .. 0), SLNV's column MACs, the rescale, FINAL's
reciprocal and output.  The overlap changes when an op runs, not its operands or order, so the golden
model (``golden_attention``) is unchanged.  A skipped tile computes nothing, so a wrong skip changes
the output bits.

Limits: the mask is the core's (none or causal); one head per run; the output is never stalled
(backpressure on the output stream adds cycles the model does not see).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from einloom.sim.formats.base import NumberFormat, attention_mask

__all__ = ["LaneCoreTiming", "lane_core_cycles", "CoreParams", "CoreRun", "Timeline", "SlotItem", "run_core", "core_tiles", "core_items",
           "core_cycles", "slot_issues", "core_mask"]


@dataclass(frozen=True)
class CoreParams:
    """The generated core's shape and unit latencies, as plain numbers.

    rows, cols : R keys per tile x C queries per block (the 2D array).
    head_dim, value_dim : E and F (temporal on the array).
    exp_latency, recip_latency, output_latency, rescale_latency : the 1D array's pipelined units.
    mac_latency : the 2D PE's multiply-accumulate pipeline (operand and product registers).
    acc_latency : L, the 2D PE's accumulate (1: one combinational add per cycle; L > 1: a pipelined
        adder with L interleaved partial sums for QK, combined at the array's bottom, the WS psum
        chain through the same adder with V skewed L per row, and SLD through the format's
        interleaved accumulate; see :attr:`combine_latency`, :attr:`sld_latency`).
    lm_reg : register stages in the 1D PE's max path (the units' ``lm_register``): 1 registers a
        drained score before its LM compare, 2 also the LM > RM compare before RM's update (the
        fixed-point core, for timing); each moves RM, SLN and PRM one cycle later; 0 (bf16) compares
        the score as it arrives.
    """

    rows: int
    cols: int
    head_dim: int
    value_dim: int
    exp_latency: int
    recip_latency: int
    output_latency: int
    mac_latency: int = 2
    rescale_latency: int = 2
    acc_latency: int = 1
    lm_reg: int = 0

    def __post_init__(self) -> None:
        for name in ("rows", "cols", "head_dim", "value_dim", "acc_latency"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CoreParams.{name} must be >= 1, got {getattr(self, name)}")
        if self.lm_reg not in (0, 1, 2):
            raise ValueError(f"CoreParams.lm_reg must be 0, 1 or 2, got {self.lm_reg}")
        for name in ("exp_latency", "recip_latency", "output_latency", "mac_latency", "rescale_latency"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"CoreParams.{name} must be >= 0, got {getattr(self, name)}")

    def timeline(self) -> "Timeline":
        return Timeline(self)

    @property
    def combine_latency(self) -> int:
        """Cycles of the combine of a QK's L partial sums at the array's bottom: L - 1 feed-forward
        adds of latency L ((L-1) L; 0 for L = 1), ``rtl.float.accumulate.Fp32PartialSum``."""
        lat = self.acc_latency
        return 0 if lat == 1 else (lat - 1) * lat

    @property
    def sld_latency(self) -> int:
        """Cycles from a tile's last SLN to its SLD: 2 for a single-cycle add; for L > 1 the
        interleaved accumulate's drain, an input register, 2 + (L-1) L of combine and an output
        register (``rtl.float.accumulate.Fp32Accumulator.drain_latency``)."""
        lat = self.acc_latency
        return 2 if lat == 1 else 4 + (lat - 1) * lat


class Timeline:
    """Offsets (cycles after a slot's issue cycle I, in column 0's time; column c runs c cycles later)
    of everything a slot does, and the period that keeps consecutive slots from colliding.

    With R rows, E, F, the unit latencies Lx (exp), Lr (rescale), Lc (reciprocal), Lo (output), the
    PE's multiply pipeline of Lm registers (``mac_latency``, 2 for fixed point, 3 for bf16) and its accumulate latency L (1: single-cycle), the combine
    of the L partials Lq = (L-1) L and the SLD latency Ls (:class:`CoreParams`):

    ======================  =============================  =========================================
    offset                  value                          what
    ======================  =============================  =========================================
    ``load``                2                              row r / column c load their K, V / Q feed registers (+r / +c)
    ``feed``                3                              K (Q) element e enters row r (column c) at feed + e + r (+ c)
    ``feed_v``              feed + E + X                   V element f enters row r at feed_v + f + L r (X: see below)
    ``array_drain``         feed + E + R - 1 + Lm (+L)     R-1 cycles: the drain registers shift down (the bottom row's partials are final)
    ``drain``               array_drain + Lq               R cycles: the QK tile leaves the array bottom row first (row R-1 .. 0) into the 1D array
    ``tile_start``          drain - 1                      1D: LM invalid, SLD = 0; a block's first tile: running state reset; a finishing slot: the seen flag snapshot
    ``rd_snap``             tile_start (L = 1), see below  a finishing slot: the RD snapshot
    ``rm_update``           drain + R + Lg                 RM, RM_prev (Lg = ``lm_reg``: registered compares)
    ``issue_sln``           rm_update + 1                  R exps SLN (shifted into the PEs' shadow weights Lx later), then PRM
    ``rd_update``           issue_sln + Lx + R - 1 + Ls    RD = PRM * RD + SLD
    ``slnv``                feed_v + L R + Lm              F cycles: the previous tile's column sums leave the array into RNV
    ``rnv_snap``            slnv + F + Lr                  a finishing slot copies RNV into the output registers
    ``recip_load``          rd_snap + C                    the shared reciprocal's chain loads every column's RD snapshot
    ``recip_capture``       recip_load + 1 + Lc            column 0 takes 1/RD
    ``out_mul``             max(recip_capture, rnv_snap)+1 F cycles of AV = RNV * (1/RD)
    ``out``                 out_mul + F + Lo + 1           first output beat of the block (+1: the payload register)
    ======================  =============================  =========================================

    With L = 1 and Lm = 2 this is the single-cycle core's table (array_drain = drain = E + R + 4, X = 0).

    ``period`` = max(E + F + X + (L-1)(R-1) (the 2D array's work, V skewed L per row), issue_sln +
    Lx + R - feed - E - X (SLN of a tile in the shadow weights before the next slot's SLNV reads
    them; 3R + Lx + 2 + Lg for L = 1), for L = 1 rd_update + Lr + 1 - tile_start (RD final before the next
    slot's snapshot: 2R + Lx + Lr + 4 + Lg), F + Lr + 1 (RNV settled before the next slot's updates),
    max(R, C) + 1 (feed registers loaded before the buffers' read address moves on), R - 1 + Ls (the
    SLD accumulate free for the next tile)).  X, the V feed's delay behind K, is 0 for L = 1; for
    L > 1 it balances the first two terms (the slot's SLNV waits for the weights, the 2D array idles
    X cycles instead), and the RD snapshot does not bound the period: it is taken at
    ``rd_snap`` = max(tile_start, rd_update + Lr + 1 - period), when the previous slot's RD update has
    landed and before this slot's lands.  Steady state: the 2D array busy E + F of every ``period`` cycles.
    """

    #: The buffers' read latency (``rtl.buffers.BankedBuffer.latency``: the block RAM's read, then an
    #: output register): the read address is set in the issue cycle, the data is there LOAD cycles later
    LOAD = 2
    FEED = LOAD + 1
    #: The output stream's payload register: column c's AV is final at out - 1 + c and leaves from a
    #: flip-flop (no mux between the 1D PEs' AV registers and the port)
    OUT_REG = 1

    def __init__(self, p: CoreParams):
        if p.mac_latency < 2:
            raise ValueError(f"the overlapped core's PE has at least 2 multiply registers (operands, product); "
                             f"mac_latency {p.mac_latency} is not supported")
        r, c, e, f = p.rows, p.cols, p.head_dim, p.value_dim
        lat = p.acc_latency
        if lat > 1 and e % lat:
            raise ValueError(f"head_dim E = {e} must be a multiple of the accumulate's acc_latency {lat} "
                             f"(the QK sum's interleaved partial sums)")
        if lat > 1 and r > lat:
            raise ValueError(f"with a pipelined accumulate (acc_latency {lat}) the rows R = {r} must be at most "
                             f"acc_latency: the 1D array's SLD sums R probabilities in {lat} interleaved partial "
                             f"sums, an order the golden model has only for R <= acc_latency")
        lx, lr, lc, lo = p.exp_latency, p.rescale_latency, p.recip_latency, p.output_latency
        self.params = p
        self.load = self.LOAD
        self.feed = self.FEED
        # the bottom row's drain registers are final: its last product's add + 1 (the sum, registered)
        # for L = 1, + L + 1 (the partials copied from the adder's output register) for L > 1
        mac = p.mac_latency
        self.array_drain = self.feed + e + r - 1 + mac + (lat if lat > 1 else 0)
        self.drain = self.array_drain + p.combine_latency
        self.tile_start = self.drain - 1
        self.rm_update = self.drain + r + p.lm_reg
        self.issue_sln = self.rm_update + 1
        self.issue_prm = self.issue_sln + r
        self.rd_update = self.issue_sln + lx + r - 1 + p.sld_latency
        work = e + f + (lat - 1) * (r - 1)
        weights = self.issue_sln + lx + r - self.feed - e
        delay = 0
        if lat > 1:
            # the latest V may start: row R-1 takes its shadow weight before this slot's SLN shifts in
            latest = self.issue_sln + lx - self.feed - e - lat * (r - 1)
            if latest < 0:
                raise ValueError(f"with acc_latency {lat} and R = {r} rows the V skew of {lat} per row reaches "
                                 f"past the tile's SLN: not supported")
            delay = min(latest, max(0, -(-(weights - work) // 2)))
        self.v_delay = delay
        self.feed_v = self.feed + e + delay
        self.slnv = self.feed_v + lat * r + mac
        self.prm_latch = self.slnv - 1
        self.rnv_snap = self.slnv + f + lr
        rd_final = self.rd_update + lr + 1 - self.tile_start     # RD of the slot before final, from tile_start
        others = max(work + delay, weights - delay, f + lr + 1, max(r, c) + 1, r - 1 + p.sld_latency)
        if lat == 1:
            self.period = max(others, rd_final)
            self.rd_snap = self.tile_start
        else:
            # the RD snapshot waits for the previous slot's last RD update instead of bounding the period
            self.period = others
            self.rd_snap = max(self.tile_start, self.rd_update + lr + 1 - self.period)
        self.recip_load = self.rd_snap + c
        self.recip_capture = self.recip_load + 1 + lc
        self.out_mul = max(self.recip_capture, self.rnv_snap) + 1
        self.out = self.out_mul + f + lo + self.OUT_REG
        # PRM of this slot's tile is latched for the next slot's SLNV, after this slot's own latch
        if self.prm_latch > self.issue_prm + lx or self.issue_prm + lx + 1 > self.period + self.prm_latch:
            raise ValueError(f"the PRM latch at {self.prm_latch} does not fit the exp at "
                             f"{self.issue_prm + lx} with period {self.period}")

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}


def core_mask(num_keys: int, num_queries: int, causal: bool, window: int = 0, sinks: int = 0) -> np.ndarray:
    """valid[key, query] of the core's mask: :func:`~einloom.sim.formats.base.attention_mask` (bottom-right
    causal: key m visible to query p iff m <= p + M - P), and with ``window`` > 0 also only the last
    ``window`` keys up to that diagonal (``p + M - P - m < window``) or one of the first ``sinks`` keys
    (the library's sliding-window and sinks-window cascades)."""
    valid = attention_mask(num_keys, num_queries, causal)
    if window > 0:
        keys = np.arange(num_keys)[:, None]
        queries = np.arange(num_queries)[None, :]
        valid &= (queries + (num_keys - num_queries) - keys < window) | (keys < sinks)
    return valid


def core_tiles(params: CoreParams, num_queries: int, num_keys: int, causal: bool, window: int = 0,
               sinks: int = 0) -> list[list[int]]:
    """Per block of C queries, the key tiles (indices) that hold a visible (key, query) pair."""
    r, c = params.rows, params.cols
    valid = core_mask(num_keys, num_queries, causal, window, sinks)
    out = []
    for lo in range(0, num_queries, c):
        block = valid[:, lo:lo + c]
        out.append([m1 for m1 in range(-(-num_keys // r)) if block[m1 * r:(m1 + 1) * r].any()])
    return out


@dataclass(frozen=True)
class SlotItem:
    """One work item: key tile ``tile`` of query block ``block`` (``tile`` None: a block that sees no
    key), ``last``: the block's last item."""

    block: int
    tile: int | None
    first: bool
    last: bool


def core_items(params: CoreParams, num_queries: int, num_keys: int, causal: bool, window: int = 0,
               sinks: int = 0) -> list[SlotItem]:
    items = []
    for pb, run in enumerate(core_tiles(params, num_queries, num_keys, causal, window, sinks)):
        if not run:
            items.append(SlotItem(pb, None, True, True))
        for i, m1 in enumerate(run):
            items.append(SlotItem(pb, m1, i == 0, i == len(run) - 1))
    return items


def slot_issues(params: CoreParams, num_queries: int, num_keys: int, causal: bool, window: int = 0,
                sinks: int = 0) -> tuple[list[SlotItem], list[int], int]:
    """The work items, the issue cycle of each slot (``len(items) + 1`` slots; slot j runs item j's QK
    and item j-1's SLNV/FINAL), and the compute cycles (see the module docstring)."""
    tl = params.timeline()
    items = core_items(params, num_queries, num_keys, causal, window, sinks)
    c = params.cols
    issues: list[int] = []
    last_beat = None            # cycle of the previous finishing slot's last output beat
    end = 0
    for j in range(len(items) + 1):
        t = 1 if j == 0 else issues[-1] + tl.period
        fin = j >= 1 and items[j - 1].last
        if fin and last_beat is not None:
            t = max(t, last_beat + 2)
        issues.append(t)
        if fin:
            beats = min(c, num_queries - items[j - 1].block * c)
            last_beat = t + tl.out + beats - 1
            end = last_beat + 2
    return items, issues, end


def core_cycles(params: CoreParams, num_queries: int, num_keys: int, causal: bool = False, window: int = 0,
                sinks: int = 0) -> int:
    """Compute cycles of the core (from the end of loading to the cycle after the last output beat
    + 1), with the output always ready."""
    if num_queries < 1 or num_keys < 1:
        raise ValueError(f"num_queries and num_keys must be >= 1, got {num_queries}, {num_keys}")
    return slot_issues(params, num_queries, num_keys, causal, window, sinks)[2]


@dataclass
class CoreRun:
    """One run of the core model: cycles from the end of loading to the last output beat (+1), the
    slots' ops with their start/end, busy cycles per unit, tiles run and skipped, the 2D array's
    multiply-accumulates and the output codes (``None`` without inputs)."""

    cycles: int
    tiles_run: int
    tiles_skipped: int
    busy: dict[str, float]
    ops: list[tuple[str, str, int, int, float, float]] = field(repr=False)   # (unit, phase, block, tile, start, end)
    events: int = 0
    output: np.ndarray | None = None
    macs: int = 0
    pes: int = 1
    period: int = 0

    @property
    def util_2d(self) -> float:
        """Multiply-accumulates on real keys and queries / (PEs x compute cycles)."""
        return self.macs / (self.pes * self.cycles) if self.cycles else 0.0


class _State:
    """Per-block running state of the functional run (codes)."""

    def __init__(self, fmt: NumberFormat, q, k, v, valid, lo: int, hi: int):
        self.fmt, self.q, self.k, self.v = fmt, q[:, lo:hi], k, v
        self.valid = valid[:, lo:hi]
        self.lo, self.hi = lo, hi
        self.first = True
        self.rm = self.rd = self.rnv = None

    def tile(self, m_lo: int, m_hi: int) -> None:
        """QK .. SLNV of one key tile, in the core's order (the golden model's operations)."""
        fmt = self.fmt
        p = self.hi - self.lo
        f_dim = self.v.shape[0]
        qk = fmt.dot(self.q, self.k[:, m_lo:m_hi].T)                                   # QK      [rows, p]
        valid = self.valid[m_lo:m_hi]
        has = valid.any(axis=0)
        lm = np.where(has, qk[np.argmax(valid, axis=0), np.arange(p)], 0)              # drain: LM
        for row in range(m_hi - m_lo):
            lm = np.where(valid[row], fmt.maximum(lm, qk[row]), lm)
        # RM: a query's running max becomes valid with its first visible key (before it, PRM = exp(x - x)
        # = 1 rescales the zero sums: the golden model's exp(-inf - RM) * 0 gives the same 0)
        rm_valid = np.zeros(p, dtype=bool) if self.first else self.rm_valid
        rm_prev = lm if self.first else self.rm
        rm_old = np.where(rm_valid, rm_prev, lm)
        rm_new = np.where(rm_valid, np.where(has, fmt.maximum(rm_prev, lm), rm_prev), lm)
        self.rm_valid = rm_valid | has
        sln = np.where(valid, fmt.exp_diff(np.where(valid, qk, rm_new[None, :]), rm_new[None, :]),
                       fmt.prob_zero(valid.shape))                                     # SLN, PRM
        prm = fmt.exp_diff(rm_old, rm_new)
        sld = fmt.prob_zero((p,))
        for row in reversed(range(m_hi - m_lo)):
            sld = fmt.prob_add(sld, sln[row])
        psum = fmt.acc_zero((f_dim, p))                                                # SLNV
        for row in range(m_hi - m_lo):
            psum = fmt.column_mac(psum, sln[row][None, :], self.v[:, m_lo + row][:, None])
        rd_old = fmt.prob_zero((p,)) if self.first else self.rd
        rnv_old = fmt.acc_zero((f_dim, p)) if self.first else self.rnv
        self.rd = fmt.rescale_add(prm, rd_old, sld)
        self.rnv = fmt.rescale_add(prm[None, :], rnv_old, psum)
        self.rm = rm_new
        self.first = False

    def final(self) -> np.ndarray:
        """FINAL: reciprocal and output; a query that saw no key outputs zero."""
        fmt = self.fmt
        seen = self.valid.any(axis=0)
        av = fmt.output_zero((self.v.shape[0], self.hi - self.lo))
        if seen.any():
            recip = fmt.reciprocal(self.rd[seen])
            av[:, seen] = fmt.output(self.rnv[:, seen], recip[None, :])
        return av


def run_core(params: CoreParams, num_queries: int, num_keys: int, causal: bool = False, *,
             window: int = 0, sinks: int = 0, fmt: NumberFormat | None = None, q: np.ndarray | None = None, k: np.ndarray | None = None,
             v: np.ndarray | None = None) -> CoreRun:
    """Simulate the core on P = ``num_queries`` queries and M = ``num_keys`` keys (see the module
    docstring).  With ``fmt`` and input codes ``q`` [E, P], ``k`` [E, M], ``v`` [F, M], also compute
    the output codes AV [F, P]."""
    if num_queries < 1 or num_keys < 1:
        raise ValueError(f"num_queries and num_keys must be >= 1, got {num_queries}, {num_keys}")
    functional = fmt is not None
    r, c, e, f = params.rows, params.cols, params.head_dim, params.value_dim
    if functional:
        q, k, v = (np.asarray(x, dtype=np.int64) for x in (q, k, v))
        if q.shape != (e, num_queries) or k.shape != (e, num_keys) or v.shape != (f, num_keys):
            raise ValueError(f"input shapes Q {q.shape}, K {k.shape}, V {v.shape} do not match E={e}, "
                             f"F={f}, P={num_queries}, M={num_keys}")
        valid = core_mask(num_keys, num_queries, causal, window, sinks)
        out = np.zeros((f, num_queries), dtype=np.int64)
    tl = params.timeline()
    items, issues, cycles = slot_issues(params, num_queries, num_keys, causal, window, sinks)
    records: list[tuple[str, str, int, int, float, float]] = []
    busy = {"2d": 0.0, "1d": 0.0, "out": 0.0}
    macs = 0
    states: dict[int, _State] = {}          # per query block (a block's FINAL overlaps the next one's tiles)
    for j, t in enumerate(issues):
        cur = items[j] if j < len(items) else None
        prev = items[j - 1] if j >= 1 else None
        if cur is not None and cur.tile is not None:
            lo = cur.block * c
            if cur.first:
                hi = min(num_queries, lo + c)
                states[cur.block] = _State(fmt, q, k, v, valid, lo, hi) if functional else None
            records.append(("2d", "QK", cur.block, cur.tile, t + tl.feed, t + tl.feed + e))
            records.append(("1d", "SOFTMAX", cur.block, cur.tile, t + tl.tile_start, t + tl.rd_update + 1))
            busy["2d"] += e
            busy["1d"] += tl.rd_update + 1 - tl.tile_start
            keys = min(num_keys, cur.tile * r + r) - cur.tile * r
            macs += keys * (min(num_queries, lo + c) - lo) * (e + f)
            if functional:
                states[cur.block].tile(cur.tile * r, cur.tile * r + keys)
        if prev is not None:
            if prev.tile is not None:
                records.append(("2d", "SLNV", prev.block, prev.tile, t + tl.feed + e, t + tl.feed + e + f))
                busy["2d"] += f
            if prev.last:
                lo = prev.block * c
                beats = min(c, num_queries - lo)
                records.append(("1d", "FINAL", prev.block, -1, t + tl.tile_start, t + tl.out))
                records.append(("out", "OUTPUT", prev.block, -1, t + tl.out, t + tl.out + beats))
                busy["1d"] += tl.out - tl.tile_start
                busy["out"] += beats
                if functional:
                    if prev.tile is None:
                        out[:, lo:lo + beats] = fmt.output_zero((f, beats))
                    else:
                        out[:, lo:lo + beats] = states.pop(prev.block).final()
    run_tiles = sum(1 for it in items if it.tile is not None)
    blocks = -(-num_queries // c)
    return CoreRun(cycles, run_tiles, blocks * -(-num_keys // r) - run_tiles, busy, records, len(issues),
                   out if functional else None, macs, r * c, tl.period)


# ---- the lane core (rtl/lane_core.py): the 2D array with programmable 1D lanes -----------------------

@dataclass(frozen=True)
class LaneCoreTiming:
    """Cycles of the lane core's controller states and of its lanes' sequencer.

    ``sections``: cycles the lane spends in each program section per run (the section's issue cycles
    ``(n - 1) * II + end``, or 1 for an empty section: ``einloom.rtl.lanes.encode.Image`` and
    ``rtl/lanes/lane.py``; a multi-pass program's sections of pass k > 0 are named ``score.k``);
    ``scores``/``chains``: score and value products; ``beats``: output beats per output (F for a value
    vector, 1 for a scalar); ``direct``: per score slot, an input the lanes read per key (R memory reads
    instead of E multiply-accumulates, not counted as 2D busy); ``passes``: per pass over the key tiles
    ``(first score slot, one past its last, first value product, one past its last)`` (empty: one pass
    running every product); ``qk_drain``/``vp_drain``: cycles ``QK``/``VP`` stay after their last
    operand read (the PEs' product register before the last add; the systolic value column of R rows),
    given by the RTL that is timed (``rtl/lane_core.py`` ``qk_drain_cycles``, ``vp_drain_cycles``)."""

    rows: int
    cols: int
    head_dim: int
    value_dim: int
    scores: int
    chains: int
    beats: tuple[int, ...]
    sections: dict[str, int]
    direct: tuple[bool, ...] = ()
    passes: tuple[tuple[int, int, int, int], ...] = ()
    qk_drain: int = field(kw_only=True)
    vp_drain: int = field(kw_only=True)

    def pass_ranges(self) -> tuple[tuple[int, int, int, int], ...]:
        return self.passes or ((0, self.scores, 0, self.chains),)

    def _is_direct(self, i: int) -> bool:
        return i < len(self.direct) and self.direct[i]

    def pass_qk_steps(self, lo: int, hi: int) -> int:
        """Cycles of the ``QK`` state's issue per tile for score slots lo .. hi-1 (without its last cycle)."""
        return sum(self.rows if self._is_direct(i) else self.head_dim for i in range(lo, hi))

    def pass_mac_steps(self, s_lo: int, s_hi: int, c_lo: int, c_hi: int) -> int:
        """2D-array multiply-accumulate cycles per tile of one pass (score and value products)."""
        return sum(0 if self._is_direct(i) else self.head_dim for i in range(s_lo, s_hi)) + \
            (c_hi - c_lo) * self.value_dim

    @property
    def qk_steps(self) -> int:
        """Cycles of the ``QK`` state's issue per tile (without its last cycle), every score slot."""
        return self.pass_qk_steps(0, self.scores)

    @property
    def mac_steps(self) -> int:
        """2D-array multiply-accumulate cycles per tile (every pass's score and value products)."""
        return sum(self.pass_mac_steps(*r) for r in self.pass_ranges())


def lane_core_cycles(t: LaneCoreTiming, num_queries: int, num_keys: int) -> dict[str, int]:
    """Compute cycles (``BSTART`` of the first block to ``FIN``, inclusive) and 2D-array MAC cycles of
    the lane core on P = ``num_queries``, M = ``num_keys`` with an output that is never stalled.

    Per block: ``BSTART`` (the lanes start ``init``), then per pass over the keys (one, or a
    multi-pass program's passes, ``rtl/lanes/passes.py``) and per tile ``QK`` (E per score product of
    the pass, R per input the lanes read directly, + 1 + the product register's drain
    :attr:`LaneCoreTiming.qk_drain` cycles), wait for the lanes' ``wait_scores``, ``SW`` (the pass's
    scores x R), ``GO``, wait for ``wait_values`` (the lanes ran ``begin`` .. ``merge``), ``VP`` (the
    pass's chains x F + 1 + the systolic column's drain :attr:`LaneCoreTiming.vp_drain`, R + the
    product register), ``GO`` (the lanes run ``value``, ``commit`` while
    the next tile's QK runs; after a pass's last tile they also run its ``final`` and the next pass's
    ``init``); after the last tile of the last pass wait for the lanes' ``done`` (``final``,
    ``output``, one cycle in the lane's done state, one for its registered ``done``), ``DRAIN`` (the
    beats), next block; ``FIN``.  A state the lane must be ready for is left one cycle after the lane
    is ready."""
    L = t.sections
    tiles = -(-num_keys // t.rows)
    blocks = -(-num_queries // t.cols)
    ranges = t.pass_ranges()

    def sec(base: str, k: int) -> int:
        return L[base if k == 0 else f"{base}.{k}"]
    n = 0
    for _ in range(blocks):
        lane_ready = n + 1 + L["init"]                 # BSTART at n: the lanes' init from n + 1
        n += 1
        for k, (s_lo, s_hi, c_lo, c_hi) in enumerate(ranges):
            for _tile in range(tiles):
                n += t.pass_qk_steps(s_lo, s_hi) + 1 + t.qk_drain   # QK
                n = max(n, lane_ready) + 1             # WS
                n += (s_hi - s_lo) * t.rows            # SW
                go = n
                n += 1                                 # GO1
                ready = go + 1 + sum(sec(s, k) for s in ("begin", "score", "tile", "weight", "merge"))
                n = max(n, ready) + 1                  # WW
                n += (c_hi - c_lo) * t.value_dim + 1 + t.vp_drain   # VP
                go = n
                n += 1                                 # GO2
                lane_ready = go + 1 + sec("value", k) + sec("commit", k)
            if k + 1 < len(ranges):                    # the pass's end, the next pass's init
                lane_ready += sec("final", k) + sec("init", k + 1)
        done_state = lane_ready + sec("final", len(ranges) - 1) + L["output"]
        n = max(n, done_state + 1) + 1                 # WD: done is visible the cycle after
        n += sum(b if b else num_keys for b in t.beats)   # DRAIN (0: an output at every key)
    mac = blocks * tiles * t.mac_steps
    return {"compute_cycles": n + 1, "mac_cycles": mac, "tiles": tiles, "blocks": blocks}
