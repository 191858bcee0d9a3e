"""Cycle-level simulation of a lowered :class:`~einloom.mapper.lower.Schedule`.

The simulator reads the schedule and nothing else of the mapping.  It executes each fusion group's
loop nest above the arrays (the DRAM- and GLB-level loops: one iteration is an *epoch*, the tile one
array step set works on) as events on the units ``2d``, ``1d`` and ``dram``:

* **compute** -- every Einsum of the group runs one tile op per epoch on its array (an Einsum that
  does not iterate a loop's rank runs at that loop's last iteration when it reads a result of the loop,
  ``AV`` after the last ``M1`` tile, else at its first, so that a consumer iterating the loop finds it:
  sigmoid attention's scores before the ``F`` tiles of ``AV``).  Duration = initiation interval x the array steps of the tile (``cycles_per_point`` x the
  tile's temporal points x ceil(spatial / width)), the same per-op costs the architecture prices.
  With :attr:`SimOptions.systolic_skew` the 2D array is a systolic array (:func:`systolic_fill`,
  docs/sim.md): its results reach another unit ``2R + C - 2`` cycles after their inputs, as a
  wavefront a consumer may follow (ops chained on the 2D array wait for nothing), or, with
  ``systolic_overlap=False``, every fold occupies the array ``2R + C + T - 2`` cycles (SCALE-Sim).
* **masks** -- an epoch's work on a masked Einsum is scaled by the share of non-empty mask tiles
  (at the schedule's tile, :meth:`~einloom.mapper.masks.Mask.nonempty_tiles`) in the epoch; an
  epoch whose tiles are all empty issues no op.  Summed over epochs this is the schedule's
  ``executed_fraction`` (tested).
* **dependencies** -- a consumer waits for the producer's op of the same tile; a carried input
  (``RD[m1]`` read by ``SPD``) for the previous iterate's op; a later pass (3-pass softmax's SN after
  GM) for the producer's last op of that tile: passes run as successive sweeps of the epochs.
* **DRAM** -- a DRAM tensor's tile is loaded when the indices of the DRAM-level loops over its ranks
  change (Timeloop's reuse rule, the evaluator's); a tensor bypassing the buffer is read per
  delivery; outputs and spilled intermediates are written after their op.  A transfer occupies the
  channel ``bytes / bytes_per_cycle`` cycles and its data arrives ``dram_latency`` cycles later; a tile
  larger than :attr:`SimOptions.dram_burst_bytes` moves as several transfers, between which the channel
  may serve another request.  The channel (a DMA engine) prefetches as far ahead as the buffer slots
  allow, holding up to :attr:`SimOptions.dram_lookahead` queued loads (the slots carry over from one
  instance to the next, so the next instance's first tiles load while this one computes); write-backs
  leave in program order, a result that does not accumulate in the PEs streaming out behind its op.  A DRAM tensor written in an earlier pass of the same group (a spill)
  is read back from DRAM; one the schedule keeps between groups (``kept_between_groups``) is not.
  Tiles are double-buffered: the load of a tensor's tile k+2 waits until tile k's readers are done
  (``buffer_full``); if two copies of every streamed tile do not fit next to the group's
  intermediates, a single copy is kept.
* **buffer ports** -- an op needs its operand deliveries from the buffer (a bypassed operand streams
  past it); at ``banks x row_bits`` per cycle an op that needs more is stretched, the extra cycles
  charged to ``ports`` (the evaluator prices the same: ``max(compute, deliveries / port width)``).
* **concurrent units** -- on an array whose units run different Einsums at once
  (``array_1d.concurrent_units``, the generated core's lanes) each Einsum's op occupies its busiest
  unit (``1d.exp``, ``1d.add``...: a resource of its own), and on such an architecture an op's result
  reaches an op on another resource its Einsum's pipeline depth later (the mapper's ``latency``);
  the array's busy cycles and stalls are its busiest unit's, its utilization the useful share of
  that unit's time (the mapper's model does the same).
* **interleaving** -- a unit may issue from ``window`` consecutive epochs that run (a tile the mask
  leaves empty takes no slot): ``interleave`` groups, two iterations of the interleave rank (FuseMax's
  interleaving of consecutive M1 tiles: 2 x the epochs of the loops inside the loop over M1);
  ``sequential``: 1, arrays take turns within an epoch; ``none``: one Einsum at a time.  When the interleave rank runs inside the tile (FLAT's rows
  of P), a consumer streams behind its producer row by row (:meth:`Op.earliest_after`).

**Instances and identical tiles.** Instances (batch x heads) run back to back.  With
:attr:`SimOptions.max_instances` = k < instances, k instances are simulated and the rest
extrapolated from the last instance's period; with :attr:`SimOptions.slice_blocks` = b, only b
iterations of the outermost epoch loop (plus the last, which may differ) are simulated per instance
and the rest extrapolated from the last simulated period.  Both shortcuts are exact when the
extrapolated iterations are identical (no mask, no ragged tile differs between them: a loop over a
mask's rank is never sliced) *and* the pipeline state at their boundaries repeats, which the simulator
checks: the instance period is taken from the steady instances (not the first, which starts empty, nor
the last two, which end without a successor) and must repeat over two pairs (a 2-periodic pattern
counts), the slice's last two periods must be equal, and :attr:`SimResult.extrapolation` says whether
they were.  Limit: a sliced instance is shorter than a whole one, so a next instance's first loads that
a whole instance would hide may show (aaren, linear-causal at 4K); the crossval report then simulates
the whole loop (``einloom.report.crossval.simulate_exact``).

**Energy.**  Compute actions are counted per executed tile (points x the architecture's unit
actions), DRAM accesses from the transfers, and buffer and register-file accesses from the
simulator's own ops (:func:`_access_rates`: each executed op's operand deliveries, register-file
reuse and accumulation, its output tile and partial-sum read-back; each staged DRAM load is a buffer
write, each store a buffer read), priced per row and per value by the architecture.  When nothing
stalls, every count and the energy equal the analytical evaluator's (tested).

**Buffer occupancy.**  A loaded tile is held in the buffer from its load's start until its last
reader ends; a group's buffered intermediates for the group's span.  ``timeline["buffer_steps"]``
is that step function (every change), ``timeline["buffer_bytes"]`` its peak per time bin and
:attr:`SimResult.buffer_peak_bytes` its maximum (the trace's counter track shows it).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from math import ceil, prod
from typing import Any, Callable, Iterator

import numpy as np

from einloom.mapper.lower import Schedule
from einloom.sim.engine import STALL_CAUSES, Engine, Op

__all__ = ["SimOptions", "SimResult", "simulate", "systolic_fill"]


def systolic_fill(rows: int, cols: int) -> float:
    """Fill + drain cycles of one fold on an ``rows`` x ``cols`` systolic array: ``2 rows + cols - 2``.

    SCALE-Sim's count (Samajdar et al., "A Systematic Methodology for Characterizing Scalability of DNN
    Accelerators using SCALE-Sim", ISPASS 2020, section III): a fold streaming T operands takes
    ``2R + C + T - 2`` cycles, output- and weight-stationary alike (docs/sim.md derives it); the
    ``T`` stream cycles are the op's array steps, this is the rest."""
    return float(2 * rows + cols - 2)


@dataclass(frozen=True)
class SimOptions:
    """Simulator parameters that no architecture file gives.

    dram_latency : cycles from a DRAM request to its data (not in the architecture format).
    systolic_skew : model the 2D array's fill and drain, :func:`systolic_fill` cycles per fold.
    systolic_overlap : with ``systolic_skew``, the fill/drain is a pipeline latency that overlaps
        other work (the next fold's or tile's operands stream in while this one drains): a result is
        ready that many cycles after the op's last input, and the array is free at once.  False: each
        fold occupies the array for its whole ``2R + C + T - 2`` cycles (the literature's count).
    window : epochs a unit may issue from (None: 2 for ``interleave`` groups, 1 otherwise).
    dram_lookahead : loads the DRAM channel (a DMA engine) may hold queued ahead of the arrays; the
        buffer slots bound how far it runs ahead.
    dram_burst_bytes : a tile load larger than this moves as several transfers, between which the
        channel may serve an older request (0: one transfer per tile).
    max_instances : simulate at most this many instances, extrapolate the rest (None: all).
    slice_blocks : simulate this many iterations of each instance's outermost epoch loop (and its
        last), extrapolate the rest (None: all).
    trace_limit : keep at most this many op records for the trace.
    bins : time bins of the utilization and occupancy timelines.
    """

    dram_latency: float = 0.0
    systolic_skew: bool = False
    systolic_overlap: bool = True
    window: int | None = None
    dram_lookahead: int = 64
    dram_burst_bytes: float = 65536.0
    max_instances: int | None = None
    slice_blocks: int | None = None
    trace_limit: int = 200_000
    bins: int = 200


@dataclass
class SimResult:
    """Everything one run reports.  ``utilization[array]`` is the time-weighted share of PE-cycles
    doing useful work; ``timeline`` holds per-bin utilization and buffer occupancy."""

    latency_cycles: float
    clock_hz: float
    busy: dict[str, float]
    utilization: dict[str, float]
    stalls: dict[str, dict[str, float]]
    dram_read_bytes: float
    dram_write_bytes: float
    actions: dict[str, float]
    energy_pj: float
    energy_breakdown_pj: dict[str, float]
    buffer_peak_bytes: float
    buffer_capacity_bytes: float
    double_buffered: bool
    events: int
    simulated_instances: int
    instances: int
    extrapolation: str
    timeline: dict[str, Any] = field(default_factory=dict)
    trace: list[tuple] = field(default_factory=list, repr=False)
    group_cycles: list[float] = field(default_factory=list)
    executed_points: dict[str, float] = field(default_factory=dict)   # per Einsum, over the whole run

    @property
    def latency_s(self) -> float:
        return self.latency_cycles / self.clock_hz

    @property
    def dram_bytes(self) -> float:
        return self.dram_read_bytes + self.dram_write_bytes

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("trace",)}
        out["latency_s"] = self.latency_s
        out["dram_bytes"] = self.dram_bytes
        return out


# ------------------------------------------------------------------------------------------------
# The loop nest of a group, as the simulator iterates it
# ------------------------------------------------------------------------------------------------

@dataclass
class _Nest:
    ranks: list[str]            # epoch loops, outer first
    levels: list[str]           # DRAM / GLB
    extents: list[int]
    passes: list[int]           # pass numbers of the group (1 if single pass)
    pass_at: int                # index of the loop the pass loop sits outside of


def _nest(schedule: Schedule, gi: int) -> _Nest:
    g = schedule.groups[gi]
    loops = [lp for lp in g.loops if lp.level in ("DRAM", "GLB")]
    view = schedule.resolved.view
    passes = sorted({_pass_of(view, e) for e in g.einsums})
    pass_at = len(loops)
    if len(passes) > 1:
        roots = _multi_pass_roots(view, g.einsums)
        for i, lp in enumerate(loops):
            if view.roots.get(lp.rank, frozenset({lp.rank})) & roots:
                pass_at = i
                break
    return _Nest([lp.rank for lp in loops], [lp.level for lp in loops], [lp.extent for lp in loops], passes, pass_at)


def _pass_of(view, einsum: str) -> int:
    return max(view.einsum(einsum).levels.values(), default=0)


def _multi_pass_roots(view, einsums) -> set[str]:
    roots: set[str] = set()
    for root in {r for e in einsums for r in view.einsum(e).levels}:
        # level 0 is an Einsum that does not touch the root at all (MLA's QL before the M loop), not
        # an earlier pass over it
        if len({max(view.einsum(e).levels.get(root, 0), 1) for e in einsums}) > 1:
            roots.add(root)
    return roots


def _via_dram(st) -> bool:
    """The tensor's tiles move through DRAM (a DRAM-level tensor that the schedule does not keep in the
    buffer between fusion groups)."""
    return st.level == "DRAM" and not st.kept_between_groups


def _ranks_of(view, tensor: str) -> set[str]:
    it = view.iterative.get(tensor)
    return {r for r in view.tensor_ranks.get(tensor, ()) if r != it}


def _covers(view, tensor_ranks: set[str], loop_rank: str) -> bool:
    """A loop over ``loop_rank`` indexes a tensor over ``tensor_ranks`` (directly or through a root)."""
    if loop_rank in tensor_ranks:
        return True
    roots = view.roots.get(loop_rank, frozenset({loop_rank}))
    return any(view.roots.get(r, frozenset({r})) == roots and r != loop_rank and False for r in tensor_ranks)


# ------------------------------------------------------------------------------------------------
# Per-Einsum facts the simulator derives once from the schedule
# ------------------------------------------------------------------------------------------------

@dataclass
class _EinsumPlan:
    name: str
    array: str
    pass_no: int
    cycles_per_epoch: float        # dense array cycles of one epoch's tile
    points_per_epoch: float        # dense points of one epoch's tile
    runs_on: list[bool]            # per epoch loop: the Einsum iterates that loop's rank
    inputs: list[tuple[str, bool]]  # (tensor, carried)
    reads_self: bool
    deliveries_per_point: float    # buffer values per executed point (port demand)
    deliveries_of: dict[str, float]  # the same, per input tensor (a bypassed tensor's DRAM reads)
    skew: float
    out_elements_per_run: float
    fill_per_step: float = 0.0     # serial systolic folds: fill + drain cycles per array step
    access: tuple[float, float, float] = (0.0, 0.0, 0.0)   # per executed point: buffer reads, RF reads, RF writes
    out_to: str = "GLB"            # where the output tile goes per op: "GLB", "RF", "RF-acc" or "bypass"
    out_written: float = 0.0       # output values one op writes (every iterate of an iterative rank)
    partial_loops: tuple[int, ...] = ()   # epoch loops over ranks the Einsum reduces (its partial sums)
    reduced_loops: tuple[int, ...] = ()   # epoch loops over ranks the Einsum reduces (partial sums)
    mask: Any = None               # (grid, coordinate specs) or None
    runs_at: tuple[int, ...] = ()  # per epoch loop it does not iterate: the iteration it runs at (0 or last)
    held: bool = False             # its outputs accumulate in the PEs (a PE-level reduction) until the op ends
    resource: str = ""             # "1d.exp": the unit its op occupies on an array with concurrent units


def _einsum_plan(schedule: Schedule, nest: _Nest, name: str, options: SimOptions) -> _EinsumPlan:
    rm = schedule.resolved
    view, hw = rm.view, rm.hw
    se = schedule.einsums[name]
    info = view.einsum(name)
    sizes = view.sizes
    par = set(rm.par_ranks[name])
    steps = 1.0
    for r in info.iteration_ranks:
        steps *= ceil(sizes[r] / rm.factor("spatial", r)) if r in par else sizes[r]
    epoch_div = 1
    runs_on = []
    for r, ext in zip(nest.ranks, nest.extents):
        on = r in info.iteration_ranks
        runs_on.append(on)
        if on:
            epoch_div *= ext
    cycles = se.cycles_per_point * steps / epoch_div
    points = se.points / epoch_div
    deliveries = 0.0
    deliveries_of: dict[str, float] = {}
    for t in info.inputs:
        if schedule.tensors.get(t) is not None and schedule.tensors[t].level == "RF":
            continue
        rt = _ranks_of(view, t)
        multicast = prod(rm.factor("spatial", r) for r in par if r not in rt)
        pe_reuse = prod(_pe_factor(rm, name, r) for r in info.iteration_ranks if r not in rt)
        deliveries_of[t] = 1.0 / (multicast * pe_reuse)
        st = schedule.tensors.get(t)
        if st is None or not st.bypass:             # a bypassed operand streams past the buffer's ports
            deliveries += deliveries_of[t]
    skew = 0.0
    fill_per_fold = 0.0
    if options.systolic_skew and se.array == "2d" and "rows" in hw.dims["2d"]:
        fill = systolic_fill(hw.dims["2d"]["rows"], hw.dims["2d"]["cols"])
        if options.systolic_overlap:
            skew = fill
        else:
            # folds of one epoch's tile: its array steps over the temporal steps of one fold (the
            # ranks not spread over the array, less the epoch loops over them)
            temporal = prod(sizes[r] for r in info.iteration_ranks if r not in par)
            temporal /= prod(ext for r, ext in zip(nest.ranks, nest.extents)
                             if r in info.iteration_ranks and r not in par) or 1
            fill_per_fold = fill / max(temporal, 1.0)            # per array step: fill / steps of a fold
    out_ranks = _ranks_of(view, name)
    out_runs = prod(ext for r, ext in zip(nest.ranks, nest.extents) if r in out_ranks)
    out = float(info.out_points(sizes)) / max(out_runs, 1)          # the output tile of one epoch
    plan = _EinsumPlan(name, se.array, _pass_of(view, name), cycles, points, runs_on,
                       [(t, t in info.carried) for t in info.inputs], info.reads_self, deliveries, deliveries_of,
                       skew, out)
    plan.fill_per_step = fill_per_fold
    if any(hw.concurrent_units.values()):
        # an array whose units run different Einsums at once (the mapper's concurrent_units): the op
        # occupies its busiest unit, and its result reaches another unit its pipeline depth later
        busy = rm.unit_busy.get(name) or {}
        if hw.concurrent_units.get(se.array) and busy:
            plan.resource = f"{se.array}.{max(busy, key=busy.get)}"
        plan.skew = max(plan.skew, float(rm.latency.get(name, 0.0)))
    plan.access, plan.out_to = _access_rates(schedule, name)
    plan.held = prod(_pe_factor(rm, name, r) for r in info.reduced_ranks) > 1
    written = set(info.iteration_ranks) - set(info.reduced_ranks)      # every iterate counts as written
    plan.partial_loops = tuple(i for i, r in enumerate(nest.ranks) if r in info.reduced_ranks)
    plan.out_written = float(info.out_points(sizes)) / max(
        prod(ext for r, ext in zip(nest.ranks, nest.extents) if r in written), 1)
    plan.reduced_loops = tuple(i for i, r in enumerate(nest.ranks) if r in info.iteration_ranks and r not in out_ranks)
    if se.masked_by is not None and se.tiles is not None:
        plan.mask = _mask_plan(schedule, nest, name)
    return plan


def _interleave_window(group, nest: _Nest) -> int:
    """Epochs a unit may issue from: two consecutive iterations of the interleave rank (FuseMax's
    interleaving of consecutive M1 tiles), i.e. 2 x the epochs of the loops inside the innermost
    epoch loop over that rank; 2 when the rank runs inside the tile; 1 for other pipelines."""
    if group.pipeline != "interleave":
        return 1
    loops = [i for i, r in enumerate(nest.ranks) if r == group.interleave_rank]
    return 2 * prod(nest.extents[loops[-1] + 1:]) if loops else 2


def _place(plans: dict[str, _EinsumPlan], nest: _Nest, order) -> None:
    """Where an Einsum runs within an epoch loop whose rank it does not iterate: at the loop's last
    iteration when it reads (directly or through such an Einsum) a result of that loop (FuseMax's AV
    after the last M1 tile), else at its first, so that consumers iterating the loop find its result
    (sigmoid attention's scores before the F tiles of AV)."""
    for e in order:
        p = plans[e]
        at = []
        for i, on in enumerate(p.runs_on):
            late = any(t in plans and plans[t].pass_no == p.pass_no
                       and (plans[t].runs_on[i] or not plans[t].runs_at or plans[t].runs_at[i] != 0)
                       for t, _carried in p.inputs)
            at.append(0 if not on and not late and p.pass_no == min(nest.passes) else nest.extents[i] - 1)
        p.runs_at = tuple(at)


def _in_rf(schedule: Schedule, tensor: str) -> bool:
    st = schedule.tensors.get(tensor)
    return st is not None and st.level == "RF"


def _access_rates(schedule: Schedule, name: str) -> tuple[tuple[float, float, float], str]:
    """Buffer and register-file accesses of one executed point of ``name`` (the Timeloop/ZigZag
    convention the evaluator prices, mapper.evaluate.stage_accesses): an operand delivered from the
    buffer is one read per multicast group and PE reuse window; one the PE reuses over a PE-level loop
    is written to the register file once per delivery and read per use, one resident in the register
    file is read per use; a reduction over a PE-level loop reads and writes its accumulator per point.
    Returns ``((buffer reads, RF reads, RF writes) per point, where the op's output tile goes)``."""
    rm = schedule.resolved
    view = rm.view
    info = view.einsum(name)
    par = set(rm.par_ranks[name])
    glb_r = rf_r = rf_w = 0.0
    for t in list(info.inputs) + ([name] if info.reads_self else []):
        rt = _ranks_of(view, t)
        multicast = prod(rm.factor("spatial", r) for r in par if r not in rt)
        pe_reuse = prod(_pe_factor(rm, name, r) for r in info.iteration_ranks if r not in rt)
        delivered = 1.0 / (multicast * pe_reuse)
        in_rf = _in_rf(schedule, t)
        st = schedule.tensors.get(t)
        if not in_rf and not (st is not None and st.bypass):
            glb_r += delivered
        if in_rf or pe_reuse > 1:
            rf_r += 1.0
        if not in_rf and pe_reuse > 1:
            rf_w += delivered
    temporal_red = prod(_pe_factor(rm, name, r) for r in info.reduced_ranks)
    if temporal_red > 1:
        rf_r += 1.0
        rf_w += 1.0
    st = schedule.tensors.get(name)
    if _in_rf(schedule, name):
        out_to = "RF-acc" if temporal_red > 1 else "RF"
    else:
        out_to = "bypass" if st is not None and st.bypass else "GLB"
    return (glb_r, rf_r, rf_w), out_to


def _pe_factor(rm, einsum: str, rank: str) -> int:
    f = rm.factor("PE", rank)
    return f * rm.factor("spatial", rank) if rank in rm.folded.get(einsum, ()) else f


def _mask_plan(schedule: Schedule, nest: _Nest, name: str):
    """The non-empty tile grid at the schedule's chunk and, per mask coordinate, how epoch indices
    map to tile indices."""
    rm = schedule.resolved
    se = schedule.einsums[name]
    mask = rm.masks[se.masked_by]
    chunk = se.tiles.chunk
    grid = mask.nonempty_tiles(chunk)            # [y tiles, x tiles]
    coords = []
    for ci, coord in enumerate(mask.coordinates):
        comps = []
        for rank, stride in coord.components:
            loops = [i for i, r in enumerate(nest.ranks) if r == rank]
            inner = rm.view.sizes[rank]
            for i in loops:
                inner = -(-inner // nest.extents[i])
            comps.append((rank, stride, loops, inner))
        coords.append((comps, chunk[ci], coord.padded))
    return grid, coords


def _epoch_fraction(plan: _EinsumPlan, nest: _Nest, index: tuple[int, ...]) -> float:
    grid, coords = plan.mask
    spans = []
    for comps, chunk, padded in coords:
        lo, hi = 0, 0
        for rank, stride, loops, inner in comps:
            if not loops:
                lo += 0
                hi += stride * (inner - 1)
                continue
            idx = 0
            for i in loops:
                idx = idx * nest.extents[i] + index[i]
            lo += stride * idx * inner
            hi += stride * (idx * inner + inner - 1)
        hi = min(hi, padded - 1)
        spans.append((lo // chunk, hi // chunk))
    (x0, x1), (y0, y1) = spans
    block = grid[y0:y1 + 1, x0:x1 + 1]
    return float(block.mean()) if block.size else 1.0


# ------------------------------------------------------------------------------------------------
# Running one group
# ------------------------------------------------------------------------------------------------

class _Recorder:
    def __init__(self, options: SimOptions):
        self.options = options
        self.trace: list[tuple] = []
        self.intervals: dict[str, list[tuple[float, float, float]]] = {}
        self.dram_read = 0.0
        self.dram_write = 0.0
        self.executed: dict[str, float] = {}
        self.offset = 0.0
        self.ends: dict[int, float] = {}
        self.occupancy: list[tuple[float, float, float]] = []     # (start, end, bytes) held in the buffer
        self.storage = {"glb_reads": 0.0, "glb_writes": 0.0, "rf_reads": {}, "rf_writes": {}}

    def add_storage(self, op: Op, times: float) -> None:
        """Count ``times`` x the buffer and register-file accesses of ``op`` (values)."""
        acc = getattr(op, "storage", None)
        if acc is None:
            return
        gr, gw, rr, rw = acc
        st = self.storage
        st["glb_reads"] += times * gr
        st["glb_writes"] += times * gw
        if rr or rw:
            st["rf_reads"][op.unit] = st["rf_reads"].get(op.unit, 0.0) + times * rr
            st["rf_writes"][op.unit] = st["rf_writes"].get(op.unit, 0.0) + times * rw

    def __call__(self, op: Op) -> None:
        inst = getattr(op, "instance", 0)
        if op.ready > self.ends.get(inst, -1.0):
            self.ends[inst] = op.ready
        s, e = op.start + self.offset, op.end + self.offset
        if op.unit == "dram":
            if op.cause == "store":
                self.dram_write += op.nbytes
            else:
                self.dram_read += op.nbytes
        else:
            self.executed[op.name] = self.executed.get(op.name, 0.0) + op.work
        self.add_storage(op, 1.0)
        self.intervals.setdefault(op.slot, []).append((s, e, op.work / op.duration if op.duration else 0.0))
        if len(self.trace) < self.options.trace_limit:
            self.trace.append((op.slot, op.name, inst, op.tile, s, e, op.nbytes))


def _epochs(schedule: Schedule, gi: int, nest: _Nest, plans: dict[str, _EinsumPlan], options: SimOptions,
            slots: int, block_limit: tuple[int, int] | None, block_ops: list[list[Op]] | None,
            buffers: dict | None = None) -> Iterator[list[Op]]:
    """Yield each epoch's ops in program order (passes as successive sweeps).  ``buffers`` carries the
    buffer slots (each streamed tensor's loads and their readers) from one instance to the next one
    run by the same engine, so that the next instance's first loads wait for a free slot."""
    rm = schedule.resolved
    view, hw = rm.view, rm.hw
    word = hw.word_bytes
    bpc = hw.dram_bytes_per_cycle
    port = hw.values_per_row * hw.arch.global_buffer.banks
    g = schedule.groups[gi]
    latest: dict[tuple, Op] = {}
    buffers = {} if buffers is None else buffers
    loads: dict[str, list[Op]] = buffers.setdefault("loads", {})     # tensor -> its loads (most recent last)
    readers: dict[int, list[Op]] = buffers.setdefault("readers", {})  # id(load) -> ops reading it
    last_key: dict[str, tuple] = {}
    dram_in = []
    for e in g.einsums:
        for t, _c in plans[e].inputs:
            st = schedule.tensors.get(t)
            if st is not None and _via_dram(st) and (st.producer_group != gi) and t not in dram_in:
                dram_in.append(t)
    dram_loops = [i for i, lv in enumerate(nest.levels) if lv == "DRAM"]
    outer = [range(n) for n in nest.extents]
    if block_limit is not None:
        k, lim = block_limit
        outer[k] = list(range(lim)) + [nest.extents[k] - 1]
    # an interleave rank inside the tile (not an epoch loop): producer and consumer stream its rows
    stream_rank = g.interleave_rank if g.pipeline == "interleave" and g.interleave_rank not in nest.ranks else None
    stream_steps = 1
    if stream_rank is not None:
        stream_steps = max(1, ceil(view.sizes[stream_rank] / rm.factor("spatial", stream_rank)))
    p_ranks = {e: set(view.einsum(e).iteration_ranks) for e in g.einsums}
    pa = nest.pass_at
    head = list(itertools.product(*outer[:pa]))
    tail = list(itertools.product(*outer[pa:]))

    def key_of(t: str, index: tuple[int, ...], levels=("DRAM", "GLB")) -> tuple:
        rt = _ranks_of(view, t)
        return tuple(index[i] for i, r in enumerate(nest.ranks) if r in rt and nest.levels[i] in levels)

    for h in head:
        for pass_no in nest.passes:
            for tl in tail:
                index = h + tl
                ops: list[Op] = []
                for e in g.einsums:
                    p = plans[e]
                    if p.pass_no != pass_no:
                        continue
                    if any(not on and index[i] != p.runs_at[i] for i, on in enumerate(p.runs_on)):
                        continue
                    frac = 1.0 if p.mask is None else _epoch_fraction(p, nest, index)
                    if frac <= 0.0:
                        continue
                    deps: list[Op] = []
                    streamed: list[Op] = []
                    for t, carried in p.inputs:
                        st = schedule.tensors.get(t)
                        spilled = st is not None and st.producer_group == gi and t in plans \
                            and plans[t].pass_no < p.pass_no          # written in an earlier pass, read back
                        if st is not None and _via_dram(st) and (st.producer_group != gi or spilled):
                            after = ()
                            if spilled:
                                w = latest.get((t, key_of(t, index)))
                                after = (w,) if w is not None else ()
                            if st.bypass:
                                vol = p.points_per_epoch * frac * p.deliveries_of[t]
                                ld = Op("dram", t, 0, vol * word / bpc, options.dram_latency, after, 0.0, "dram",
                                        nbytes=vol * word, tile=index)
                                ops.append(ld)
                                deps.append(ld)
                                continue
                            k = key_of(t, index, ("DRAM",))
                            if last_key.get(t) != k or t not in last_key:
                                last_key[t] = k
                                hist = loads.setdefault(t, [])
                                free = []
                                if len(hist) >= slots:
                                    free = readers.get(id(hist[-slots]), [])
                                vol = view.tensor_elements(t) / prod(nest.extents[i] for i in dram_loops
                                                                     if nest.ranks[i] in _ranks_of(view, t))
                                ld = _load(t, vol, tuple(free) + after, index, word, bpc, options, ops)
                                hist.append(ld)
                            ld = loads[t][-1]
                            deps.append(ld)
                            continue
                        prod_op = latest.get((t, key_of(t, index)))
                        if prod_op is not None:
                            if stream_rank is not None and not carried and stream_rank in _ranks_of(view, t) \
                                    and stream_rank in p_ranks[e]:
                                streamed.append(prod_op)
                            else:
                                deps.append(prod_op)
                    if p.reads_self:
                        prev = latest.get((e, key_of(e, index)))
                        if prev is not None:
                            deps.append(prev)
                    cycles = p.cycles_per_epoch * frac
                    if p.fill_per_step and schedule.einsums[e].cycles_per_point:
                        cycles += p.fill_per_step * cycles / schedule.einsums[e].cycles_per_point
                    points = p.points_per_epoch * frac
                    need = points * p.deliveries_per_point / port
                    duration = max(cycles, need)
                    op = Op(p.array, e, 0, duration, p.skew, tuple(deps), points * schedule.einsums[e].cycles_per_point,
                            "dependency", port_stall=max(need - cycles, 0.0), tile=index, streamed=tuple(streamed),
                            steps=stream_steps, wavefront=p.skew > 0 and not p.resource, resource=p.resource)
                    op.points = points
                    ar, rr, rw = p.access
                    out = p.out_written * frac
                    gw = 0.0
                    if p.out_to == "RF":
                        rw += out / points if points else 0.0
                    elif p.out_to == "GLB":
                        gw = out                       # the output tile (a partial sum per reduction step)
                        if any(index[i] > 0 for i in p.partial_loops):
                            ar += out / points if points else 0.0    # the partial sum read back
                    op.storage = (ar * points, gw, rr * points, rw * points)
                    for d in deps:
                        if d.unit == "dram" and d.cause == "dram":
                            readers.setdefault(id(d), []).append(op)
                    ops.append(op)
                    latest[(e, key_of(e, index))] = op
                    st = schedule.tensors.get(e)
                    if st is not None and _via_dram(st):
                        # a buffered result leaves once its reduction is complete; a bypassed one sends
                        # every partial sum to DRAM and reads it back for the next reduction step
                        vol = p.out_elements_per_run
                        done = all(index[i] == nest.extents[i] - 1 for i in p.reduced_loops)
                        if st.bypass and any(index[i] > 0 for i in p.reduced_loops):
                            ops.append(Op("dram", e, 0, vol * word / bpc, options.dram_latency, (), 0.0, "dram",
                                          nbytes=vol * word, tile=index))
                        if st.bypass or done:
                            if p.held:           # accumulated in the PEs: the tile leaves after the op
                                store = Op("dram", e, 0, vol * word / bpc, 0.0, (op,), 0.0, "store",
                                           nbytes=vol * word, tile=index)
                            else:                # results leave as they are produced, step by step
                                store = Op("dram", e, 0, vol * word / bpc, 0.0, (), 0.0, "store",
                                           nbytes=vol * word, tile=index, streamed=(op,),
                                           steps=max(1, round(cycles / (schedule.einsums[e].cycles_per_point
                                                                        or 1.0))))
                            if not st.bypass:
                                store.storage = (vol, 0.0, 0.0, 0.0)   # read out of the buffer
                            ops.append(store)
                if block_ops is not None:
                    block_ops.append(ops)
                yield ops


def _load(tensor: str, values: float, after: tuple, index: tuple, word: float, bpc: float, options: SimOptions,
          ops: list[Op]) -> Op:
    """A tile load of ``values`` into the buffer, as transfers of at most ``options.dram_burst_bytes``
    (appended to ``ops``, each after the one before); returns the last, which readers wait for.  The
    channel serves the oldest request first between transfers, so a large tile (a whole Q) does not
    hold up a small tile an array needs sooner."""
    total = values * word
    n = max(1, ceil(total / options.dram_burst_bytes)) if options.dram_burst_bytes else 1
    first = prev = None
    for i in range(n):
        share = total / n
        ld = Op("dram", tensor, 0, share / bpc, options.dram_latency if i == n - 1 else 0.0,
                after if prev is None else (prev,), 0.0, "dram", nbytes=share, tile=index)
        ld.storage = (0.0, values / n, 0.0, 0.0)      # the tile is written into the buffer
        ops.append(ld)
        first = first or ld
        prev = ld
    prev.first = first
    return prev


def simulate(schedule: Schedule, options: SimOptions | None = None, *, progress: Callable[[int], None] | None = None
             ) -> SimResult:
    """Simulate ``schedule`` (see the module docstring); ``progress(n)`` is called with op counts."""
    options = options or SimOptions()
    rm = schedule.resolved
    hw = rm.hw
    view = rm.view
    instances = schedule.instances
    sim_inst = instances if options.max_instances is None else max(1, min(instances, options.max_instances))
    rec = _Recorder(options)
    groups = []
    for gi, g in enumerate(schedule.groups):
        nest = _nest(schedule, gi)
        plans = {e: _einsum_plan(schedule, nest, e, options) for e in g.einsums}
        if g.pipeline != "interleave":     # concurrent units overlap Einsums only in an interleaved group
            for p in plans.values():       # (the mapper's rule): elsewhere each runs after the other
                p.resource = ""
        _place(plans, nest, g.einsums)
        static = sum(schedule.tensors[t].tile_elements for t in schedule.tensors
                     if schedule.tensors[t].level == "GLB" and schedule.tensors[t].producer_group == gi)
        streamed = sum(schedule.tensors[t].tile_elements for e in g.einsums for t, _ in plans[e].inputs
                       if t in schedule.tensors and _via_dram(schedule.tensors[t])
                       and not schedule.tensors[t].bypass)
        cap = hw.glb_bytes / hw.word_bytes
        slots = 2 if static + 2 * streamed <= cap else 1
        window = options.window or _interleave_window(g, nest)
        groups.append((gi, g, nest, plans, slots, window, static, streamed))

    units = ["2d", "1d", "dram"]
    # an array with concurrent units is scheduled as one resource per unit ("1d.exp"); its busy cycles
    # and stalls are its busiest unit's, its work all of its Einsums'
    resources = sorted({p.resource for grp in groups for p in grp[3].values() if p.resource})
    stalls = {u: dict.fromkeys(STALL_CAUSES, 0.0) for u in units}
    busy = dict.fromkeys(units, 0.0)
    work = dict.fromkeys(units, 0.0)
    summed = dict.fromkeys(units, 0.0)        # busy cycles summed over an array's units
    counters = {"events": 0}
    group_cycles = [0.0] * len(groups)
    notes: list[str] = []
    inst_ends: list[float] = []
    snapshots = [_snapshot(busy, work, stalls, rec, 0)]

    def run(gi: int, nest: _Nest, plans, slots: int, window: int, inst_range: range, static: float = 0.0) -> float:
        """One engine over ``inst_range`` instances of group ``gi`` back to back; returns its span
        (sliced blocks extended by their period)."""
        engine = Engine(units + resources, window=window, prefetch=("dram",), lookahead=options.dram_lookahead,
                        on_schedule=rec)
        sliced = _sliced_loop(nest, options.slice_blocks, _masked_loops(plans))
        limit = options.slice_blocks if sliced is not None else None
        per_inst: list[list[list[Op]]] = []

        buffers: dict = {}

        def stream():
            for inst in inst_range:
                blocks: list[list[Op]] = []
                per_inst.append(blocks)
                for ops in _epochs(schedule, gi, nest, plans, options, slots,
                                   None if sliced is None else (sliced, limit), blocks, buffers):
                    for op in ops:
                        op.instance = inst
                    yield ops
        rec.ends = {}
        span = engine.run(stream())
        _record_occupancy(rec, buffers, static * hw.word_bytes, span)
        ext = 0.0
        peak: dict[str, Any] = {}
        for u, st in engine.units.items():
            array = u.split(".", 1)[0]
            work[array] += st.work
            summed[array] += st.busy
            if u == array:
                busy[u] += st.busy
                for c, v in st.stalls.items():
                    stalls[u][c] += v
            elif st.busy > getattr(peak.get(array), "busy", -1.0):
                peak[array] = st
        for array, st in peak.items():          # the busiest unit stands for its array
            busy[array] += st.busy
            for c, v in st.stalls.items():
                stalls[array][c] += v
        if limit is not None:
            ext, note = _extrapolate_blocks(per_inst[-1], nest, sliced, limit)
            notes.append(note)
            # each skipped iteration does what the last simulated middle iteration did
            skipped = nest.extents[sliced] - (limit + 1)
            outer_n = prod(nest.extents[:sliced])
            for blocks in per_inst:
                per_block = len(blocks) // (outer_n * (limit + 1))
                mid = [op for o in range(outer_n) for ep in
                       blocks[(o * (limit + 1) + limit - 1) * per_block:(o * (limit + 1) + limit) * per_block]
                       for op in ep]
                for op in mid:
                    rec.add_storage(op, skipped)
                    busy[op.unit] += skipped * op.duration
                    work[op.unit] += skipped * op.work
                    stalls[op.unit]["ports"] += skipped * op.port_stall
                    if op.unit == "dram":
                        if op.cause == "store":
                            rec.dram_write += skipped * op.nbytes
                        else:
                            rec.dram_read += skipped * op.nbytes
                    else:
                        rec.executed[op.name] = rec.executed.get(op.name, 0.0) + skipped * op.work
            ends = {i: v + ext * (k + 1) for k, (i, v) in enumerate(sorted(rec.ends.items()))}
        else:
            ends = dict(rec.ends)
        counters["events"] += engine.events
        if progress is not None:
            progress(engine.events)
        return span + ext * len(inst_range), ends

    total = 0.0
    if len(groups) == 1:
        gi, g, nest, plans, slots, window, static, streamed = groups[0]
        rec.offset = 0.0
        span, ends = run(gi, nest, plans, slots, window, range(sim_inst), static)
        total = span
        group_cycles[0] = span
        inst_ends = [ends[i] for i in sorted(ends)]
        snapshots.append(_snapshot(busy, work, stalls, rec, counters["events"]))
        if sim_inst >= 2:      # the last instance's share: counters of one instance
            per = _delta(snapshots[0], snapshots[1])
            last_counts = _scale_counts(per, 1.0 / sim_inst)        # every instance does the same work
        else:
            last_counts = _delta(snapshots[0], snapshots[1])
    else:
        for inst in range(sim_inst):
            before = _snapshot(busy, work, stalls, rec, counters["events"])
            for gi, g, nest, plans, slots, window, static, streamed in groups:
                rec.offset = total
                span, _ = run(gi, nest, plans, slots, window, range(inst, inst + 1), static)
                group_cycles[gi] += span
                total += span
            inst_ends.append(total)
            last_counts = _delta(before, _snapshot(busy, work, stalls, rec, counters["events"]))
    events = counters["events"]
    concurrent_share = {a: busy[a] / summed[a] for a in ("2d", "1d")
                        if hw.concurrent_units.get(a) and summed[a] > busy[a] > 0}
    extrapolation = "; ".join(sorted(set(notes))) or "none (every tile simulated)"
    events_extra = 0
    if sim_inst < instances:
        period, exact = _steady_period(np.diff([0.0] + inst_ends))
        rest = instances - sim_inst
        total += rest * period
        group_cycles = [c * instances / sim_inst for c in group_cycles]
        busy = {u: busy[u] + rest * last_counts["busy"][u] for u in units}
        work = {u: work[u] + rest * last_counts["work"][u] for u in units}
        for u in units:
            for c in STALL_CAUSES:
                stalls[u][c] += rest * last_counts["stalls"][u][c]
        rec.dram_read += rest * last_counts["read"]
        rec.dram_write += rest * last_counts["write"]
        for e, v in last_counts["executed"].items():
            rec.executed[e] = rec.executed.get(e, 0.0) + rest * v
        for k, v in last_counts["storage"].items():
            if "." in k:
                kind, unit = k.split(".", 1)
                rec.storage[kind][unit] = rec.storage[kind].get(unit, 0.0) + rest * v
            else:
                rec.storage[k] += rest * v
        events_extra = int(rest * last_counts["events"])
        extrapolation = (f"{sim_inst} of {instances} instances simulated, {rest} extrapolated from the last "
                         f"instance's period ({period:.6g} cycles; "
                         + ("exact: the steady periods repeat" if exact else
                            "approximate: fewer than 7 instances simulated or the steady periods differ")
                         + ")" + ("; " + extrapolation if notes else ""))
    util = {a: work[a] / (total * hw.pes(a)) if total else 0.0 for a in ("2d", "1d")}
    for a, share in concurrent_share.items():       # concurrent units: the useful share of the busiest unit's time
        util[a] *= share
    actions, breakdown, energy = _energy(schedule, rec)
    timeline = _timeline(rec, total, options.bins, hw, instances, sim_inst)
    return SimResult(total, hw.clock_hz, busy, util, stalls, rec.dram_read, rec.dram_write, actions, energy,
                     breakdown, timeline["buffer_peak_bytes"], hw.glb_bytes, all(g[4] == 2 for g in groups), events + events_extra,
                     sim_inst, instances, extrapolation, timeline, rec.trace, group_cycles,
                     {e: w / schedule.einsums[e].cycles_per_point for e, w in rec.executed.items()
                      if schedule.einsums[e].cycles_per_point})


def _steady_period(periods: np.ndarray) -> tuple[float, bool]:
    """The instance period in steady state, and whether it is exact.  The first instance starts on an
    empty pipeline, and the last two end on one (no successor competes for the units, nor prefetches
    behind them), so the steady periods are those in between; they may alternate between two values (a
    window or a DMA transfer that falls one way, then the other), so the period is the mean of the last
    two, exact when the last three are equal or the last two pairs add up equal (to 1 part in 10^4: a
    transfer that settles a cycle later does not make the period approximate; the pipeline may take a
    few instances to settle, so a constant tail of three counts even when the pair before it differs)."""
    steady = periods[1:-2]
    if len(steady) < 2:
        return float(periods[-1]), False
    period = float(steady[-2:].mean())
    tol = 1e-4 * max(period, 1.0)
    constant_tail = len(steady) >= 3 and float(np.ptp(steady[-3:])) <= tol
    alternating = len(steady) >= 4 and abs(steady[-2:].sum() - steady[-4:-2].sum()) <= tol
    return period, bool(constant_tail or alternating)


def _snapshot(busy, work, stalls, rec, events):
    return {"busy": dict(busy), "work": dict(work), "stalls": {u: dict(s) for u, s in stalls.items()},
            "read": rec.dram_read, "write": rec.dram_write, "executed": dict(rec.executed), "events": events,
            "storage": _flat_storage(rec.storage)}


def _flat_storage(st: dict) -> dict[str, float]:
    out = {"glb_reads": st["glb_reads"], "glb_writes": st["glb_writes"]}
    for kind in ("rf_reads", "rf_writes"):
        for unit, v in st[kind].items():
            out[f"{kind}.{unit}"] = v
    return out


def _delta(a, b):
    return {"busy": {u: b["busy"][u] - a["busy"][u] for u in b["busy"]},
            "work": {u: b["work"][u] - a["work"][u] for u in b["work"]},
            "stalls": {u: {c: b["stalls"][u][c] - a["stalls"][u][c] for c in b["stalls"][u]} for u in b["stalls"]},
            "read": b["read"] - a["read"], "write": b["write"] - a["write"],
            "executed": {e: b["executed"].get(e, 0.0) - a["executed"].get(e, 0.0) for e in b["executed"]},
            "events": b["events"] - a["events"],
            "storage": {k: v - a["storage"].get(k, 0.0) for k, v in b["storage"].items()}}


def _masked_loops(plans: dict[str, _EinsumPlan]) -> set[int]:
    """Epoch loops over a rank of a mask's coordinates: their iterations differ (each holds its own
    share of non-empty tiles)."""
    out: set[int] = set()
    for p in plans.values():
        if p.mask is not None:
            for comps, _chunk, _padded in p.mask[1]:
                for _rank, _stride, loops, _inner in comps:
                    out.update(loops)
    return out


def _sliced_loop(nest: _Nest, limit: int | None, irregular: set[int] = frozenset()) -> int | None:
    """The epoch loop a slice of ``limit`` iterations applies to: the outermost one with more than
    ``limit + 1`` iterations and no pass sweep inside it split (None: nothing to slice).  Neither it
    nor a loop outside it may be in ``irregular`` (loops whose iterations differ: a mask's), since
    the skipped iterations are taken to repeat the last simulated one."""
    if not limit:
        return None
    for k, n in enumerate(nest.extents):
        if len(nest.passes) > 1 and k >= nest.pass_at:
            return None
        if k in irregular:
            return None
        if n > limit + 1:
            return k
    return None


def _extrapolate_blocks(blocks, nest: _Nest, k: int, limit: int) -> tuple[float, str]:
    """``blocks`` are one instance's epochs; per iteration of the loops outside loop ``k``, ``limit``
    iterations of loop ``k`` plus its last were simulated.  Returns the cycles the skipped iterations
    add (the period of the last two simulated middle iterations, per outer iteration) and a note
    saying whether that is exact."""
    outer_n = prod(nest.extents[:k])
    per_block = len(blocks) // (outer_n * (limit + 1)) if blocks else 0
    base = (outer_n - 1) * (limit + 1)
    ends = []
    for b in range(limit + 1):
        ops = [op for ep in blocks[(base + b) * per_block:(base + b + 1) * per_block] for op in ep]
        ends.append(max((op.ready for op in ops), default=0.0))
    periods = np.diff(ends[:limit])
    period = float(periods[-1]) if len(periods) else 0.0
    exact = len(periods) >= 2 and abs(periods[-1] - periods[-2]) <= 1e-6 * max(period, 1.0)
    skipped = nest.extents[k] - (limit + 1)
    note = (f"{limit + 1} of {nest.extents[k]} iterations of the loop over {nest.ranks[k]} simulated per "
            f"instance{'' if outer_n == 1 else f' and outer iteration (x{outer_n})'}, {skipped} extrapolated "
            f"({'exact: the last two periods are equal' if exact else 'approximate'})")
    return outer_n * skipped * period, note


def _scale_counts(c, f):
    return {"busy": {u: v * f for u, v in c["busy"].items()}, "work": {u: v * f for u, v in c["work"].items()},
            "stalls": {u: {k: v * f for k, v in d.items()} for u, d in c["stalls"].items()},
            "read": c["read"] * f, "write": c["write"] * f,
            "executed": {e: v * f for e, v in c["executed"].items()}, "events": c["events"] * f,
            "storage": {k: v * f for k, v in c["storage"].items()}}


def _energy(schedule: Schedule, rec: _Recorder) -> tuple[dict[str, float], dict[str, float], float]:
    """Actions of the run, priced by the architecture (see the module docstring)."""
    rm = schedule.resolved
    hw = rm.hw
    actions: dict[str, float] = {}
    breakdown: dict[str, float] = {}
    compute = 0.0
    for e, work in rec.executed.items():
        se = schedule.einsums[e]
        points = work / se.cycles_per_point if se.cycles_per_point else 0.0
        for unit, per_point in rm.unit_actions[e].items():
            key = f"{se.array}.{unit}"
            actions[key] = actions.get(key, 0.0) + per_point * points
            breakdown[key] = breakdown.get(key, 0.0) + per_point * points * hw.unit_energy(se.array, unit)
        compute += rm.op_energy[e] * points
    dram_bytes = rec.dram_read + rec.dram_write
    actions["dram.access_64b"] = dram_bytes / 8
    breakdown["dram"] = dram_bytes / 8 * hw.dram_pj_per_access
    st = rec.storage
    storage = 0.0
    breakdown["global_buffer"] = (st["glb_reads"] * hw.glb_read_pj_row + st["glb_writes"] * hw.glb_write_pj_row) \
        / hw.values_per_row
    storage += breakdown["global_buffer"]
    actions["global_buffer.read_values"] = st["glb_reads"]
    actions["global_buffer.write_values"] = st["glb_writes"]
    for a in hw.arrays:
        reads, writes = st["rf_reads"].get(a, 0.0), st["rf_writes"].get(a, 0.0)
        breakdown[f"rf_{a}"] = reads * hw.rf_read_pj[a] + writes * hw.rf_write_pj[a]
        storage += breakdown[f"rf_{a}"]
        actions[f"{a}.register_file.read"] = reads
        actions[f"{a}.register_file.write"] = writes
    return actions, breakdown, compute + breakdown["dram"] + storage


def _record_occupancy(rec: _Recorder, buffers: dict, static_bytes: float, span: float) -> None:
    """Buffer occupancy of one engine run: each loaded tile is held from its load's start until its
    last reader ends (the slot is free then); the group's buffered intermediates for the whole span."""
    if static_bytes:
        rec.occupancy.append((rec.offset, rec.offset + span, static_bytes))
    readers = buffers.get("readers", {})
    for hist in buffers.get("loads", {}).values():
        for ld in hist:
            if ld.end < 0:
                continue
            end = max((r.end for r in readers.get(id(ld), ()) if r.end >= 0), default=ld.end)
            first = getattr(ld, "first", ld)
            rec.occupancy.append((first.start + rec.offset, max(end, ld.end) + rec.offset,
                                  ld.nbytes * (1 + _chain_length(first, ld))))


def _chain_length(first: Op, last: Op) -> int:
    """Transfers between ``first`` and ``last`` of one chunked load (0 for a single transfer)."""
    n, op = 0, last
    while op is not first and op.deps:
        op, n = op.deps[0], n + 1
    return n


def _occupancy_steps(occ: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The occupancy step function: change times and the bytes held from each on."""
    if not occ:
        return np.zeros(1), np.zeros(1)
    a = np.array(occ, dtype=float)
    t = np.concatenate([a[:, 0], a[:, 1]])
    d = np.concatenate([a[:, 2], -a[:, 2]])
    order = np.lexsort((d, t))                 # at equal times, frees before loads
    t, level = t[order], np.cumsum(d[order])
    keep = np.append(t[1:] != t[:-1], True)   # the level after the last change at each time
    return t[keep], level[keep]


def _timeline(rec: _Recorder, total: float, bins: int, hw, instances: int, sim_inst: int) -> dict[str, Any]:
    """Per bin: each array's utilization (an array with concurrent units, whose ops run on separate
    ``array.unit`` slots: its busiest unit's, the summary's rule), DRAM busy share, buffer occupancy."""
    simulated_end = max((iv[1] for ivs in rec.intervals.values() for iv in ivs), default=total)
    span = max(simulated_end, 1e-9)
    edges = np.linspace(0.0, span, bins + 1)
    out: dict[str, Any] = {"edges": edges.tolist(), "simulated_cycles": span}
    for slot, ivs in rec.intervals.items():
        unit = slot.split(".", 1)[0]          # "1d.exp" -> "1d": one unit of an array with concurrent units
        a = np.array(ivs, dtype=float)
        s, e, rate = a[:, 0], a[:, 1], a[:, 2]
        lo = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
        hi = np.clip(np.searchsorted(edges, e, side="left") - 1, 0, bins - 1)
        acc = np.zeros(bins)
        busy = np.zeros(bins)
        # intervals are short relative to the bins in long runs; split the few that span bins
        for i in np.nonzero(hi > lo)[0]:
            for b in range(lo[i], hi[i] + 1):
                ov = min(e[i], edges[b + 1]) - max(s[i], edges[b])
                if ov > 0:
                    acc[b] += ov * rate[i]
                    busy[b] += ov
        same = hi == lo
        np.add.at(acc, lo[same], (e[same] - s[same]) * rate[same])
        np.add.at(busy, lo[same], e[same] - s[same])
        width = np.diff(edges)
        if unit in ("2d", "1d"):
            util = acc / (width * hw.pes(unit))
            key = f"util_{unit}"
            out[key] = np.maximum(out[key], util) if key in out else util
        else:
            out["dram_busy"] = (busy / width).tolist()
    for key in ("util_2d", "util_1d"):
        if key in out:
            out[key] = np.asarray(out[key]).tolist()
    times, level = _occupancy_steps(rec.occupancy)
    # per bin: the most bytes held at any moment of it (the level entering the bin or set inside it)
    peak = np.zeros(bins)
    idx = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, bins - 1)
    np.maximum.at(peak, idx, level)
    entering = np.searchsorted(times, edges[:-1], side="right") - 1
    peak = np.maximum(peak, np.where(entering >= 0, level[np.clip(entering, 0, None)], 0.0))
    out["buffer_bytes"] = peak.tolist()
    out["buffer_steps"] = {"cycles": times.tolist()[:100_000], "bytes": level.tolist()[:100_000]}
    out["buffer_peak_bytes"] = float(level.max(initial=0.0))
    return out
