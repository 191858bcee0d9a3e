"""Analytical evaluator: latency, utilization, traffic, buffer occupancy, actions, energy and area of a
cascade run under a mapping on an architecture.

Everything follows from the binding, the tiling and the architecture's per-op costs; nothing is a
per-configuration formula.  The model, per instance (one batch element x head), then times B x H:

**Compute.**  An Einsum bound to array A runs its ops on A's PEs.  Its *initiation interval* per
iteration point is the busiest functional unit's share: ``II = max_u sum_{op on u} n_op/points x
cycles(op)`` (ops on different units of a PE pipeline; ops on one unit add up; ``exp`` composed of 6
MACs + 1 add occupies the MAC 7 cycles).  Ranks assigned to A's dimensions and present in the Einsum
run in parallel; ``cycles = II x prod_{r spatial} ceil(|r|/s_r) x prod_{r temporal} |r|``.  The spatial
fraction actually used, ``points / (cycles/II x PEs)``, is the Einsum's *ideal* utilization while busy.
**Buffer ports.**  The global buffer delivers ``banks x values per row`` values per cycle; an Einsum
whose operand deliveries (one per multicast group and PE reuse window, not from the register file nor
bypassed) need more cycles than its compute holds its array that long: ``max(cycles, deliveries /
port width)`` (the simulator stretches the op the same way).

**Latency composition** per fusion group: ``interleave`` -> ``max(busy_2D, busy_1D)`` (consecutive
iterations of the interleave rank alternate between the arrays, so each array's work hides under the
other's; one epoch of the smaller array is exposed once as fill); an array's busy cycles are the sum
of its Einsums', or, on an array with ``concurrent_units`` (the generated core's 1D lanes: max, exp,
add and rescale units each a pipeline of its own), its busiest unit's work over the group's Einsums; ``sequential`` -> ``busy_2D +
busy_1D`` (arrays take turns); ``none`` -> each Einsum alone, ``max(compute, its DRAM time)``, summed.
A fused group's latency is ``max(compute, DRAM bytes / bandwidth)`` (tiles are double-buffered).
What nothing overlaps is added (once for a single fused group, whose instances stream back to back;
per group and instance otherwise): the first operands of the Einsums that start the group (the
spatial tile of each buffered input; a bypassed input's first tile of deliveries) and the last
output tile (its spatial tile, or its spatial x PE tile when accumulated in the PEs).

**Traffic.**  Inputs, partition views and outputs live in DRAM; so do intermediates listed in
``spill`` (read back only by consumers in a later pass) and intermediates crossing fusion groups.
A DRAM tensor T is moved ``|T| x prod(DRAM-level loops over ranks not in T that sit outside the
innermost DRAM-level loop over a rank of T)`` times (Timeloop's reuse rule).  A tensor listed in
``bypass`` streams past the buffer instead: every delivery to the array (one per multicast group and
PE reuse window) is a DRAM read, every result a DRAM write, and it takes no buffer space.

**Buffer occupancy.**  The global buffer holds, per group, the tile of each DRAM tensor (its GLB,
spatial and PE factors) and every on-chip intermediate that does not fit a PE register file.  An
intermediate held for a later pass over root rank R (FuseMax §III) keeps every loop from the
outermost loop over R inward; a running state keeps every loop inside its iterative rank; others keep
one step.  A mapping whose buffer working set exceeds the capacity is rejected with the reason.

**Actions and energy.**  DRAM per 64-bit access; buffer per row (values / values-per-row): fills,
drains, operand deliveries to the array (one per multicast group, one per PE-level reuse window),
intermediates written and read back; register files per value: operands the PE reuses over a
PE-level loop (written once, read per use), intermediates resident in the PE, and accumulators of
PE-level (temporal) reductions (read + write per point) -- operands streamed from the buffer and
spatial reductions bypass the register file; every functional-unit action (``exp`` on the MAC is 6
MAC + 1 add actions).  Each action is priced by :mod:`einloom.cost_models`.  Leakage is not modelled.

**Limits.**  Double buffering is assumed free (a tile's fetch overlaps the previous tile's compute);
the network-on-chip, control and the FuseMax 1D-side buffer are not modelled; the fill of an
interleaved pipeline is one epoch of the less busy array per run; ragged tiles cost a full tile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, Mapping as TMapping

import numpy as np

from einloom.cost_models.arch import Architecture
from einloom.cost_models.workload import Workload
from einloom.einsum.errors import MappingError
from einloom.mapper.lower import crossing_tensors, dram_tiles, keep_crossing
from einloom.mapper.lower import (CascadeLike, Family, Hardware, Residency, Resolved, Schedule, _glb_tile, _is_dram,
                                  _spatial_tile, _step_tile, check_mapping, mask_chunks, pe_cover, resolve,
                                  schedule_of, stage_residency)
from einloom.mapper.lower import _hardware, _view_for  # noqa: F401 -- re-exported for search/baselines
from einloom.mapper.mapping import Mapping
from einloom.mapper.model import EinsumInfo

__all__ = ["Hardware", "Resolved", "Evaluation", "evaluate", "evaluate_view", "resolve", "evaluate_family",
           "evaluate_end_to_end", "EndToEnd", "check_mapping", "evaluate_schedule"]


# ==================================================================================================
# The vectorized core: a family of mappings that share binding/spatial/order, differing in factors.
# Each stage below is a small function over the family; evaluate_family runs them in order
# (compute -> legality -> residency -> traffic -> accesses -> capacity -> latency -> energy).
# ==================================================================================================

@dataclass
class _Compute:
    points: dict[str, float]           # dense iteration points per Einsum
    executed: dict[str, np.ndarray]    # points computed (empty masked tiles skipped)
    cycles: dict[str, np.ndarray]
    ideal: dict[str, np.ndarray]
    fraction: dict[str, np.ndarray]
    feasible: np.ndarray


def stage_compute(fam: Family) -> _Compute:
    """Cycles of each Einsum: II x parallel steps, scaled by the share of tiles a mask leaves."""
    rm, hw = fam.rm, fam.hw
    points, executed, cycles, ideal, fraction = {}, {}, {}, {}, {}
    feasible = np.ones(fam.n, dtype=bool)
    for e, info in fam.infos.items():
        pts = float(info.points(fam.sizes))
        steps = fam.one.copy()
        for r in info.iteration_ranks:
            steps = steps * (np.ceil(fam.sizes[r] / fam.sp(r)) if r in rm.par_ranks[e] else fam.sizes[r])
        frac = _mask_fraction(fam, e)
        points[e] = pts
        fraction[e] = frac
        executed[e] = pts * frac
        cycles[e] = rm.ii[e] * steps * frac
        ideal[e] = pts / (steps * hw.pes(fam.bound[e]))
        for dim, ranks in fam.mapping.spatial_for(e).items():
            used = prod((fam.sp(r) for r in ranks), start=fam.one)
            feasible &= used <= hw.dims[fam.bound[e]][dim]
    return _Compute(points, executed, cycles, ideal, fraction, feasible)


def _mask_fraction(fam: Family, einsum: str) -> np.ndarray:
    chunks = mask_chunks(fam.rm, einsum, pe_cover(fam.rm, einsum, fam.f))
    if chunks is None:
        return fam.one
    return _tile_fraction(fam, fam.rm.mask_scope[einsum], chunks)


def _tile_fraction(fam: Family, masked: str, chunks: tuple[Any, Any]) -> np.ndarray:
    """Work fraction in non-empty tiles of ``masked``'s mask, per candidate (tiles of ``chunks``)."""
    mask = fam.rm.masks[masked]
    pairs = np.stack([np.broadcast_to(chunks[0], (fam.n,)), np.broadcast_to(chunks[1], (fam.n,))], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    fractions = np.array([mask.tiles((int(a), int(b))).work_fraction for a, b in unique])
    return fractions[np.ravel(inverse)]


def stage_legality(fam: Family) -> np.ndarray:
    """A reduction split across temporal (DRAM/GLB) loops completes only after them; within a fused
    group a consumer in the same pass would read partial values, so such tilings are illegal."""
    ok = np.ones(fam.n, dtype=bool)
    for g in fam.rm.groups:
        if g.pipeline == "none":
            continue
        members = set(g.einsums)
        for e in g.einsums:
            info = fam.infos[e]
            same_pass = [c for c, carried in fam.view.consumers(e) if c.name in members and not carried and not any(
                lvl > info.levels.get(root, 0) for root, lvl in c.levels.items())]
            if same_pass:
                for r in info.reduced_ranks:
                    ok &= (fam.f("DRAM", r) <= 1) & (fam.f("GLB", r) <= 1)
    return ok


@dataclass
class _Traffic:
    read: dict[int, np.ndarray]                # group -> DRAM values read
    write: dict[int, np.ndarray]
    by_einsum: dict[str, np.ndarray]
    bypass: set[str]
    bypass_read: np.ndarray
    bypass_write: np.ndarray
    first_load: dict[int, np.ndarray]          # group -> values the array's first cycle reads (exposed)
    last_drain: dict[int, np.ndarray]          # group -> values the last array step writes (exposed)


def _deliveries(fam: Family, comp: _Compute, e: str, t: str) -> np.ndarray:
    """Values of operand ``t`` sent to ``e``'s array (one per multicast group and PE reuse window)."""
    info = fam.infos[e]
    multicast = prod((fam.sp(r) for r in fam.rm.par_ranks[e] if r not in fam.ranks_of(t)), start=fam.one)
    pe_reuse = prod((fam.pe(e, r) for r in info.iteration_ranks if r not in fam.ranks_of(t)), start=fam.one)
    return comp.executed[e] / (multicast * pe_reuse)


def _epochs_of(fam: Family, info: EinsumInfo) -> np.ndarray:
    """Tiles (DRAM- and GLB-level loop iterations) an Einsum runs."""
    return prod((fam.f(lv, r) for lv in ("DRAM", "GLB") for r in info.iteration_ranks), start=fam.one)


def _partial_sums(fam: Family, info: EinsumInfo) -> np.ndarray:
    """How many times each output is written when its reduction is split over DRAM/GLB loops."""
    return prod((fam.f(lv, r) for r in info.reduced_ranks for lv in ("DRAM", "GLB")), start=fam.one)


def _dram_mult(fam: Family, ranks: set[str]) -> np.ndarray:
    """Times a DRAM tensor over ``ranks`` is moved: DRAM-level loops over other ranks outside its
    innermost DRAM loop re-fetch it (Timeloop's reuse rule)."""
    mult, seen = fam.one.copy(), np.zeros(fam.n, dtype=bool)
    for r in reversed(fam.order["DRAM"]):
        fr = fam.f("DRAM", r)
        if r in ranks:
            seen |= fr > 1
        else:
            mult = mult * np.where(seen, fr, 1.0)
    return mult


def _masked_transfers(fam: Family, einsum: str, tensor: str, mult: np.ndarray) -> np.ndarray | float:
    """Share of ``tensor``'s DRAM transfers for ``einsum`` that a mask leaves (1 without a mask).

    A DRAM tile is a tile of the loops below the DRAM level.  A tensor over both coordinates of the
    mask (a spilled score tile) moves only its non-empty DRAM tiles; a tensor over one coordinate that
    is fetched again for every DRAM tile of the other (K and V, once per query tile) moves once per
    non-empty pair; a tensor fetched once (Q), or over neither coordinate, moves in full.
    """
    masked = fam.rm.mask_scope.get(einsum)
    if masked is None:
        return 1.0
    ranks = fam.ranks_of(tensor)
    coords = [c for c in fam.rm.masks[masked].coordinates if c.components]
    carried = [any(r in ranks for r, _ in c.components) for c in coords]
    if len(coords) < 2 or not any(carried) or (not all(carried) and not np.any(mult > 1)):
        return 1.0
    chunks = mask_chunks(fam.rm, einsum, lambda r: fam.f("GLB", r) * fam.sp(r) * fam.f("PE", r))
    fraction = _tile_fraction(fam, masked, chunks)
    return fraction if all(carried) else np.where(mult > 1, fraction, 1.0)


def stage_traffic(fam: Family, comp: _Compute, res: Residency) -> _Traffic:
    """DRAM reads and writes per group, and the buffer tiles of DRAM tensors."""
    view, rm = fam.view, fam.rm
    groups = range(len(rm.groups))
    read = {gi: fam.zeros() for gi in groups}
    write = {gi: fam.zeros() for gi in groups}
    first_load = {gi: fam.zeros() for gi in groups}
    last_drain = {gi: fam.zeros() for gi in groups}
    by_einsum = {e: fam.zeros() for e in fam.bound}
    loc = res.location
    bypass = {t for t in fam.mapping.bypass if _is_dram(loc.get(t))}   # a spill with no later reader stays on chip
    bypass_read, bypass_write = fam.zeros(), fam.zeros()
    crossing = set(crossing_tensors(fam, res))
    dram_tiles(fam, res)
    events: list[tuple[str, int, str, str, np.ndarray]] = []

    for gi, g in enumerate(rm.groups):
        seen_inputs: set[str] = set()
        members = set(g.einsums)
        for e in g.einsums:
            info = fam.infos[e]
            # an Einsum with no producer in its group starts the group: it waits for its first tiles
            starts = not any(t in members for t in info.inputs)
            for t in info.inputs:
                if not _is_dram(loc.get(t)):
                    continue
                producer = fam.infos.get(t)
                if t in view.inputs or t in view.views:
                    if t in seen_inputs and t not in bypass:
                        continue
                    seen_inputs.add(t)
                else:
                    same = producer is not None and fam.group_of[producer.name] == gi
                    later = not same or any(lvl > producer.levels.get(root, 0) for root, lvl in info.levels.items())
                    if not later:
                        continue
                if t in bypass:                     # every delivery to the array comes from DRAM
                    vol = _deliveries(fam, comp, e, t)
                    bypass_read = bypass_read + vol
                    if starts:                      # the first tile's deliveries
                        first_load[gi] = first_load[gi] + vol / _epochs_of(fam, info)
                else:
                    mult = _dram_mult(fam, fam.ranks_of(t))
                    vol = view.tensor_elements(t) * mult * _masked_transfers(fam, e, t, mult)
                read[gi] = read[gi] + vol
                by_einsum[e] = by_einsum[e] + vol
                if t in bypass:
                    continue
                if t in crossing:
                    events.append((t, gi, e, "read", vol))
                if starts:
                    first_load[gi] = first_load[gi] + _spatial_tile(fam, fam.ranks_of(t))
            if _is_dram(loc.get(e)) and e in bypass:      # results written straight to DRAM
                out_pts, partial = float(info.out_points(fam.sizes)), _partial_sums(fam, info)
                write[gi] = write[gi] + out_pts * partial
                read[gi] = read[gi] + out_pts * (partial - 1)
                bypass_write = bypass_write + out_pts * partial
                bypass_read = bypass_read + out_pts * (partial - 1)
                by_einsum[e] = by_einsum[e] + out_pts * partial
            elif _is_dram(loc.get(e)):
                mult = _dram_mult(fam, fam.ranks_of(e))
                vol = view.tensor_elements(e) * mult * _masked_transfers(fam, e, e, mult)
                write[gi] = write[gi] + vol
                read[gi] = read[gi] + view.tensor_elements(e) * (mult - 1)
                by_einsum[e] = by_einsum[e] + vol
                if e in crossing:
                    events.append((e, gi, e, "write", vol + view.tensor_elements(e) * (mult - 1)))
                # outputs accumulated in the PEs (a PE-level reduction) drain their whole PE tile;
                # others leave the array as they are produced, one spatial tile at the end
                held = prod((fam.pe(e, r) for r in info.reduced_ranks), start=fam.one) > 1
                last_drain[gi] = last_drain[gi] + np.where(held, _step_tile(fam, fam.ranks_of(e)),
                                                           _spatial_tile(fam, fam.ranks_of(e)))

    # An intermediate passed between fusion groups (Unfused: every one) stays in the buffer when the
    # whole tensor fits next to the largest group's working set (mapper.lower.keep_crossing, the
    # schedule's kept_between_groups); otherwise it goes through DRAM.
    kept = keep_crossing(fam, res)
    for (t, gi, e, kind, vol) in events:
        saved = np.where(kept[t], vol, 0.0)
        if kind == "read":
            read[gi] = read[gi] - saved
        else:
            write[gi] = write[gi] - saved
        by_einsum[e] = by_einsum[e] - saved
    return _Traffic(read, write, by_einsum, bypass, bypass_read, bypass_write, first_load, last_drain)


@dataclass
class _Accesses:
    glb_reads: np.ndarray                      # values
    glb_writes: np.ndarray
    rf_reads: dict[str, np.ndarray]            # array -> values
    rf_writes: dict[str, np.ndarray]
    port_cycles: dict[str, Any]                # einsum -> cycles its operand deliveries hold the buffer ports (0.0: none)


def stage_accesses(fam: Family, comp: _Compute, res: Residency, traffic: _Traffic) -> _Accesses:
    """Buffer and register-file accesses (Timeloop/ZigZag convention: reads and writes per value).

    Operands delivered from the buffer go straight to the functional units (multicast over the
    spatial ranks they do not depend on) unless the PE reuses them over a PE-level loop, in which case
    they are written to the register file once and read per use.  Accumulations over a PE-level
    (temporal) reduction read and write the register file per point; spatial reductions and outputs
    sent to the buffer bypass it.  Intermediates resident in the register file are read per use.
    """
    glb_reads, glb_writes = fam.zeros(), fam.zeros()
    rf_reads = {a: fam.zeros() for a in fam.arrays}
    rf_writes = {a: fam.zeros() for a in fam.arrays}
    no = np.zeros(fam.n, dtype=bool)
    port = fam.hw.values_per_row * fam.hw.arch.global_buffer.banks        # values the buffer delivers per cycle
    port_cycles = {}
    for e, info in fam.infos.items():
        array = fam.bound[e]
        pts = comp.executed[e]
        par = fam.rm.par_ranks[e]
        operands: Any = 0.0
        for t in list(info.inputs) + ([e] if info.reads_self else []):
            loc = res.location.get(t)
            in_rf = loc if isinstance(loc, np.ndarray) else no
            rt = fam.ranks_of(t)
            multicast = prod((fam.sp(r) for r in par if r not in rt), start=fam.one)
            pe_reuse = prod((fam.pe(e, r) for r in info.iteration_ranks if r not in rt), start=fam.one)
            delivered = pts / (multicast * pe_reuse)
            if t not in traffic.bypass:
                read = np.where(in_rf, 0.0, delivered) if in_rf is not no else delivered
                glb_reads = glb_reads + read
                if t in info.inputs:
                    operands = operands + read
            kept = in_rf | (pe_reuse > 1)
            rf_reads[array] = rf_reads[array] + np.where(kept, pts, 0.0)
            rf_writes[array] = rf_writes[array] + np.where(in_rf, 0.0, np.where(pe_reuse > 1, delivered, 0.0))
        out_pts = float(info.out_points(fam.sizes)) * comp.fraction[e]
        temporal_red = prod((fam.pe(e, r) for r in info.reduced_ranks), start=fam.one)
        rf_reads[array] = rf_reads[array] + np.where(temporal_red > 1, pts, 0.0)
        rf_writes[array] = rf_writes[array] + np.where(temporal_red > 1, pts, 0.0)
        port_cycles[e] = operands / port
        partial = _partial_sums(fam, info)
        loc = res.location.get(e)
        out_rf = loc if isinstance(loc, np.ndarray) else no
        rf_writes[array] = rf_writes[array] + np.where(out_rf & (temporal_red <= 1), out_pts, 0.0)
        if e in traffic.bypass:
            continue
        glb_writes = glb_writes + np.where(out_rf, 0.0, out_pts * partial)
        glb_reads = glb_reads + np.where(out_rf, 0.0, out_pts * (partial - 1))
    dram_r = sum(traffic.read.values(), fam.zeros())
    dram_w = sum(traffic.write.values(), fam.zeros())
    glb_writes = glb_writes + dram_r - traffic.bypass_read       # fills
    glb_reads = glb_reads + dram_w - traffic.bypass_write        # drains
    return _Accesses(glb_reads, glb_writes, rf_reads, rf_writes, port_cycles)


@dataclass
class _Latency:
    total: np.ndarray
    busy: dict[str, np.ndarray]                # array -> cycles busy (one instance)
    fill: np.ndarray                           # pipeline fill across the arrays (whole run)
    exposed_io: np.ndarray                     # first load + last drain not hidden (whole run)
    ports: dict[str, Any]                      # array -> cycles of its busy time that wait on buffer ports


def stage_latency(fam: Family, comp: _Compute, traffic: _Traffic, acc: _Accesses, instances: int) -> _Latency:
    """Cycles of the whole run.

    Per group: ``interleave`` -> max(busy per array) (one epoch of the less busy arrays is exposed
    once per run as fill); ``sequential`` -> the arrays' busy cycles added; ``none`` -> each Einsum
    alone; a group takes at least its DRAM time (tiles are double-buffered).  The first tiles'
    load and the last tiles' drain (ZigZag's data on/off-loading: the operands spread over the array
    for its first cycle; the outputs it still holds after its last step) overlap
    nothing: they are added once per group for a
    single fused group (instances stream back to back) and once per group and instance otherwise.
    """
    word, bpc = fam.hw.word_bytes, fam.hw.dram_bytes_per_cycle
    lat = fam.zeros()
    busy = {a: fam.zeros() for a in fam.arrays}
    fill = fam.zeros()
    io = fam.zeros()
    ports: dict[str, Any] = dict.fromkeys(fam.arrays, 0.0)
    epochs = prod((fam.f(lv, r) for lv in ("DRAM", "GLB") for r in fam.order[lv]), start=fam.one) * instances
    kernels = 1 if len(fam.rm.groups) == 1 else instances
    for gi, g in enumerate(fam.rm.groups):
        b = {a: fam.zeros() for a in fam.arrays}
        occupied = {e: comp.cycles[e] if isinstance(acc.port_cycles[e], float) else
                    np.maximum(comp.cycles[e], acc.port_cycles[e]) for e in g.einsums}
        for e in g.einsums:
            b[fam.bound[e]] = b[fam.bound[e]] + occupied[e]
            if occupied[e] is not comp.cycles[e]:
                ports[fam.bound[e]] = ports[fam.bound[e]] + (occupied[e] - comp.cycles[e])
        if g.pipeline == "interleave":
            for a in fam.arrays:
                if fam.hw.concurrent_units.get(a):
                    b[a] = _concurrent_busy(fam, comp, [e for e in g.einsums if fam.bound[e] == a], occupied)
        for a in fam.arrays:
            busy[a] = busy[a] + b[a]
        mem = (traffic.read[gi] + traffic.write[gi]) * word / bpc
        if g.pipeline == "interleave":
            stacked = np.stack([b[a] for a in fam.arrays])
            comp_time = np.max(stacked, axis=0)
            if any(fam.hw.concurrent_units.get(a) for a in fam.arrays):
                comp_time = np.maximum(comp_time, _hand_off_bound(fam, comp, g))
            fill = fill + (np.sum(stacked, axis=0) - comp_time) * instances / epochs
            lat = lat + np.maximum(comp_time, mem)
        elif g.pipeline == "sequential":
            lat = lat + np.maximum(sum(b.values(), fam.zeros()), mem)
        else:
            for e in g.einsums:
                lat = lat + np.maximum(occupied[e], traffic.by_einsum[e] * word / bpc)
        io = io + (traffic.first_load[gi] + traffic.last_drain[gi]) * word / bpc * kernels
    return _Latency(lat * instances + fill + io, busy, fill, io, ports)


def _concurrent_busy(fam: Family, comp: _Compute, einsums: list[str], occupied: dict[str, Any]) -> np.ndarray:
    """Busy cycles of an array whose units run different Einsums' ops at once (``concurrent_units``):
    its busiest unit's work over ``einsums`` (each Einsum's cycles split over its units by their share
    of its initiation interval), and never less than one Einsum's own occupancy (its II, port stretch)."""
    per_unit: dict[str, Any] = {}
    floor = fam.zeros()
    for e in einsums:
        ii = fam.rm.ii[e]
        for unit, cycles in (fam.rm.unit_busy.get(e) or {}).items():
            if ii > 0:
                per_unit[unit] = per_unit.get(unit, fam.zeros()) + comp.cycles[e] * (cycles / ii)
        floor = np.maximum(floor, occupied[e])
    return np.max(np.stack([floor] + list(per_unit.values())), axis=0)


def _interleave_iterations(fam: Family, rank: str | None) -> np.ndarray:
    """Iterations of an interleaved group's pipeline: the temporal DRAM/GLB loops down to the innermost
    loop over its interleave rank (1 when it has none)."""
    last = max((i for i, (_lv, r) in enumerate(fam.nest) if r == rank), default=-1)
    return prod((fam.f(lv, r) for lv, r in fam.nest[:last + 1]), start=fam.one)


def _hand_off_bound(fam: Family, comp: _Compute, g: Any) -> np.ndarray:
    """Cycles an interleaved group takes at least because of the hand-off between its arrays (applied
    where an array has ``concurrent_units``, whose busiest-unit time hides its dependency chains): per
    iteration of the interleave rank, a result an array produces (its pipeline depth) passes through a
    chain of Einsums on another array (each its per-iteration cycles plus its pipeline depth; an
    element-wise Einsum streams its operands through, a reduction's result leaves with its last
    operand) back to an Einsum of the first array, which runs one iteration later (FuseMax's 2D array on tile m1+1 while the
    1D array does tile m1: SLN of tile m1 must reach the PEs before tile m1's SLNV).  The iteration period
    is at least the longest such chain, in every iteration the chain's consumer runs (a mask skips
    tiles)."""
    iterations = _interleave_iterations(fam, g.interleave_rank)
    members = set(g.einsums)
    depth = fam.rm.latency
    first: dict[str, np.ndarray] = {}        # per chain Einsum: when its first and last result of an
    last: dict[str, np.ndarray] = {}         # iteration leave it, from the other array's producer's start
    total = fam.zeros()
    for e in g.einsums:                      # topological order
        own, info = fam.bound[e], fam.infos[e]
        ran = iterations * np.maximum(comp.fraction[e], 1e-12)       # the iterations a mask leaves it
        ins = [i for i in info.inputs if i in members and i not in info.carried]
        for i in ins:                        # a chain from this array returns to it: a hand-off per iteration it runs
            if fam.bound[i] != own and i in last:
                total = np.maximum(total, last[i] * ran)
        if not fam.hw.concurrent_units.get(own):
            continue
        sources = [(first[i], last[i]) if fam.bound[i] == own else (fam.zeros() + depth.get(i, 0.0),) * 2
                   for i in ins if fam.bound[i] != own or i in last]
        if not sources:
            continue
        begin = np.max(np.stack([a for a, _ in sources]), axis=0)
        end = np.max(np.stack([b for _, b in sources]), axis=0)
        # operands stream in: the Einsum's per-iteration cycles start with its first operand
        last[e] = np.maximum(end, begin + comp.cycles[e] / ran) + depth.get(e, 0.0)
        first[e] = last[e] if info.reduced_ranks else begin + depth.get(e, 0.0)
    return total


@dataclass
class _Energy:
    total: np.ndarray
    parts: dict[str, np.ndarray]


def stage_energy(fam: Family, comp: _Compute, traffic: _Traffic, acc: _Accesses, instances: int) -> _Energy:
    """pJ of the run: DRAM per 64-bit access, the buffer per row, register files per value, and every
    functional-unit action of the executed points, each priced by the architecture."""
    hw = fam.hw
    dram = (sum(traffic.read.values(), fam.zeros()) + sum(traffic.write.values(), fam.zeros()))
    parts = {"dram": dram * hw.word_bytes / 8.0 * hw.dram_pj_per_access,
             "global_buffer": (acc.glb_reads * hw.glb_read_pj_row + acc.glb_writes * hw.glb_write_pj_row)
             / hw.values_per_row}
    for a in fam.arrays:
        parts[f"rf_{a}"] = acc.rf_reads[a] * hw.rf_read_pj[a] + acc.rf_writes[a] * hw.rf_write_pj[a]
    compute = sum((fam.rm.op_energy[e] * comp.executed[e] for e in fam.bound), fam.zeros())
    total = (sum(parts.values(), fam.zeros()) + compute) * instances
    return _Energy(total, {k: v * instances for k, v in parts.items()})


def evaluate_family(rm: Resolved, overrides: TMapping[tuple[str, str], Any] | None = None, *,
                    instances: int | None = None, n: int | None = None) -> dict[str, Any]:
    """Score a family of mappings in one vectorized pass.

    ``overrides`` maps ``(level, rank)`` to an array of factors (one per candidate); every other factor
    is ``rm``'s.  ``instances`` defaults to the view's (from the workload's instance ranks the cascade
    does not iterate).  Returns a dict of arrays of length N: ``latency_cycles``, ``energy_pj``,
    ``dram_bytes``, ``glb_bytes`` (worst group's working set), ``feasible`` and breakdowns.
    """
    fam = Family(rm, overrides, n)
    n = fam.n
    instances = rm.view.instances if instances is None else int(instances)
    comp = stage_compute(fam)
    feasible = comp.feasible & stage_legality(fam)
    res = stage_residency(fam)
    traffic = stage_traffic(fam, comp, res)
    acc = stage_accesses(fam, comp, res, traffic)
    word = fam.hw.word_bytes
    worst = np.max(np.stack([fp * word for fp in res.footprint.values()]), axis=0) if res.footprint else fam.zeros()
    feasible &= worst <= fam.hw.glb_bytes
    lat = stage_latency(fam, comp, traffic, acc, instances)
    energy = stage_energy(fam, comp, traffic, acc, instances)
    dram_r = sum(traffic.read.values(), fam.zeros())
    dram_w = sum(traffic.write.values(), fam.zeros())
    return {
        "n": n, "feasible": feasible, "latency_cycles": lat.total, "latency_s": lat.total / fam.hw.clock_hz,
        "energy_pj": energy.total, "dram_bytes": (dram_r + dram_w) * word * instances,
        "dram_read_bytes": dram_r * word * instances, "dram_write_bytes": dram_w * word * instances,
        "glb_bytes": worst, "busy": {a: v * instances for a, v in lat.busy.items()}, "fill_cycles": lat.fill,
        "port_cycles": {a: v * instances for a, v in lat.ports.items()},
        "exposed_io_cycles": lat.exposed_io,
        "cycles": {e: v * instances for e, v in comp.cycles.items()}, "ideal": comp.ideal, "points": comp.points,
        "executed": {e: v * instances for e, v in comp.executed.items()}, "mask_fraction": comp.fraction,
        "glb_reads": acc.glb_reads * instances, "glb_writes": acc.glb_writes * instances,
        "rf_reads": {a: v * instances for a, v in acc.rf_reads.items()},
        "rf_writes": {a: v * instances for a, v in acc.rf_writes.items()},
        "energy_parts": energy.parts, "footprints": res.parts, "location": res.location, "instances": instances,
    }


# ==================================================================================================
# Public API
# ==================================================================================================

@dataclass
class Evaluation:
    """Result of :func:`evaluate` for one (cascade, mapping, architecture, workload).

    ``to_dict()`` keys: latency_s, latency_cycles, energy_pj, util_2d, util_1d (time-weighted spatial
    utilization, the FuseMax artifact's definition), utilization {array: {ideal, spatial_idle, ports
    (busy waiting on buffer ports), stall, fill, busy}}, dram_bytes, energy_breakdown_pj {component: pJ} (DRAM, global buffer, register files, and
    each array's functional units), energy_by_op_pj {array.op: pJ} (the compute part by op class, e.g.
    ``2d.exp``), actions {component: count},
    per_einsum_activity_2d/1d {einsum: fraction of the run it keeps that array usefully busy},
    buffer {capacity_bytes, used_bytes, tensors}, area_um2, mapping, arch, cascade, workload.
    """

    cascade: str
    mapping: str
    arch: str
    workload: str
    latency_s: float
    latency_cycles: float
    energy_pj: float
    util_2d: float
    util_1d: float
    utilization: dict[str, dict[str, float]]
    dram_bytes: float
    dram_read_bytes: float
    dram_write_bytes: float
    energy_breakdown_pj: dict[str, float]
    actions: dict[str, float]
    per_einsum_activity_2d: dict[str, float]
    per_einsum_activity_1d: dict[str, float]
    per_einsum_cycles: dict[str, float]
    buffer: dict[str, Any]
    area_um2: float
    energy_by_op_pj: dict[str, float] = field(default_factory=dict)
    loop_nest: str = ""
    rank_sizes: dict[str, int] = field(default_factory=dict)
    instances: int = 1
    instance_note: str = ""
    macs: float = 0.0                      # multiply-accumulates executed (empty masked tiles skipped)
    dense_macs: float = 0.0                # multiply-accumulates of the dense iteration spaces
    exposed_io_cycles: float = 0.0         # first load + last drain not overlapped with compute
    schedule: Schedule | None = field(default=None, repr=False, compare=False)

    def to_dict(self, *, include_schedule: bool = False) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("loop_nest", "schedule")}
        if include_schedule and self.schedule is not None:
            out["schedule"] = self.schedule.to_dict()
        return out

    def table(self) -> str:
        """A readable summary table."""
        sizes = ", ".join(f"{r}={n}" for r, n in self.rank_sizes.items())
        lines = [f"cascade {self.cascade}  mapping {self.mapping}  arch {self.arch}  workload {self.workload}",
                 f"  covers       {self.instances} instance(s) ({self.instance_note or 'as given'}) of {sizes}",
                 f"  latency      {self.latency_s:.6g} s  ({self.latency_cycles:.6g} cycles, "
                 f"{self.exposed_io_cycles:.4g} of them first load / last drain)",
                 f"  MACs         {self.macs:.6g} executed" + (f" of {self.dense_macs:.6g} dense (empty masked "
                                                                  f"tiles skipped)" if self.macs < self.dense_macs
                                                                  else ""),
                 f"  energy       {self.energy_pj:.6g} pJ",
                 f"  DRAM traffic {self.dram_bytes:.6g} B (read {self.dram_read_bytes:.4g}, "
                 f"write {self.dram_write_bytes:.4g})",
                 f"  buffer       {self.buffer['used_bytes']:.6g} of {self.buffer['capacity_bytes']:.6g} B",
                 f"  area         {self.area_um2 / 1e6:.4g} mm^2"]
        for a in self.utilization:
            u = self.utilization[a]
            lines.append(f"  util {a}      {u['ideal']:.3f} ideal, {u['spatial_idle']:.3f} spatially idle, "
                         f"{u.get('ports', 0.0):.3f} on buffer ports, {u['stall']:.3f} stalled, {u['fill']:.3f} fill")
        lines.append("  energy by component (pJ):")
        total = self.energy_pj or 1.0
        for k, v in sorted(self.energy_breakdown_pj.items(), key=lambda kv: -kv[1]):
            lines.append(f"    {k:<16} {v:12.4g}  {100 * v / total:5.1f}%")
        if self.energy_by_op_pj:
            lines.append("  compute energy by op (pJ): " + ", ".join(
                f"{k} {v:.4g}" for k, v in sorted(self.energy_by_op_pj.items(), key=lambda kv: -kv[1])))
        lines.append("  per-Einsum activity (fraction of the run its array is usefully busy):")
        for e, c in self.per_einsum_cycles.items():
            a2 = self.per_einsum_activity_2d.get(e)
            a1 = self.per_einsum_activity_1d.get(e)
            lines.append(f"    {e:<6} {'2d' if a2 is not None else '1d'} {a2 if a2 is not None else a1:.4f}")
        return "\n".join(lines)


def evaluate_view(rm: Resolved, *, instances: int | None = None, workload_name: str = "-",
                  cascade_name: str | None = None) -> Evaluation:
    """Evaluate a resolved mapping; raise MappingError if its working set does not fit.

    ``instances`` defaults to the view's (the workload's instance ranks the cascade does not iterate).
    """
    res = evaluate_family(rm, instances=instances)
    hw, view, mapping = rm.hw, rm.view, rm.mapping
    inst = int(res["instances"])
    word = hw.word_bytes
    used = float(res["glb_bytes"][0])
    tensors = {}
    for gi, parts in res["footprints"].items():
        for t, v in parts.items():
            tensors[t] = max(tensors.get(t, 0.0), float(np.asarray(v)[0]) * word)
    if used > hw.glb_bytes:
        top = sorted(tensors.items(), key=lambda kv: -kv[1])[:4]
        detail = ", ".join(f"{t} {b / 2**20:.3g} MiB" for t, b in top)
        raise MappingError(f"working set {used / 2**20:.4g} MiB does not fit the {hw.glb_bytes / 2**20:.4g} MiB "
                           f"global buffer of {hw.name} (largest: {detail})",
                           location=mapping.where("tiling"),
                           hint="shrink the GLB/PE tile factors, spill an intermediate to DRAM, or reorder loops")
    lat = float(res["latency_cycles"][0])
    activity: dict[str, dict[str, float]] = {a: {} for a in hw.arrays}
    per_cycles = {}
    for e, c in res["cycles"].items():
        c = float(c[0])
        per_cycles[e] = c
        activity[mapping.binding[e]][e] = c * float(res["ideal"][e][0]) / lat if lat else 0.0
    util = {}
    fill = float(res["fill_cycles"][0]) / lat if lat else 0.0
    for a in hw.arrays:
        busy = float(res["busy"][a][0]) / lat if lat else 0.0
        ports = float(np.asarray(res["port_cycles"][a]).reshape(-1)[0]) / lat if lat else 0.0
        ideal = sum(activity[a].values())
        if hw.concurrent_units.get(a):      # units at work in the same cycles: scale to the array's busy time
            summed = sum(per_cycles[e] for e in activity[a]) / lat if lat else 0.0
            ideal = ideal * min(1.0, busy / summed) if summed else ideal
        util[a] = {"ideal": ideal, "spatial_idle": max(busy - ports - ideal, 0.0), "ports": ports,
                   "stall": max(1.0 - busy - fill, 0.0), "fill": fill if busy < 1 else 0.0, "busy": busy}
    # actions and energy by component: one path, each unit action priced once
    actions: dict[str, float] = {}
    breakdown: dict[str, float] = {}
    by_op: dict[str, float] = {}
    macs = dense_macs = 0.0
    for e, array in mapping.binding.items():
        executed = float(np.asarray(res["executed"][e])[0])
        fraction = float(np.asarray(res["mask_fraction"][e])[0])
        for unit, per_point in rm.unit_actions[e].items():
            key = f"{array}.{unit}"
            count = per_point * executed
            actions[key] = actions.get(key, 0.0) + count
            breakdown[key] = breakdown.get(key, 0.0) + count * hw.unit_energy(array, unit)
        for op, count in view.einsum(e).ops.items():
            key = f"{array}.{op}"
            by_op[key] = by_op.get(key, 0.0) + count * fraction * inst * hw.op_cost(array, op).energy_pj
            if op == "mac":
                macs += count * fraction * inst
                dense_macs += count * inst
    actions["dram.access_64b"] = float(res["dram_bytes"][0]) / 8
    actions["global_buffer.read_values"] = float(res["glb_reads"][0])
    actions["global_buffer.write_values"] = float(res["glb_writes"][0])
    for a in hw.arrays:
        actions[f"{a}.register_file.read"] = float(res["rf_reads"][a][0])
        actions[f"{a}.register_file.write"] = float(res["rf_writes"][a][0])
    for k, v in res["energy_parts"].items():
        breakdown[k] = float(v[0])
    energy = float(res["energy_pj"][0])
    try:
        area = float(hw.arch.area_report().total_um2)
    except Exception:  # noqa: BLE001 -- an architecture without area data reports 0, not a crash
        area = 0.0
    location = {t: ("dram" if isinstance(v, str) else "rf" if bool(np.asarray(v).reshape(-1)[0]) else "glb")
                for t, v in res["location"].items()}
    tiles = {t: b / word for t, b in tensors.items()}
    schedule = schedule_of(rm, workload_name=workload_name, location=location, tiles=tiles)
    return Evaluation(
        cascade=cascade_name or view.name, mapping=mapping.name, arch=hw.name, workload=workload_name,
        latency_s=float(res["latency_s"][0]), latency_cycles=lat, energy_pj=energy,
        util_2d=util.get("2d", {}).get("ideal", 0.0), util_1d=util.get("1d", {}).get("ideal", 0.0),
        utilization=util,
        dram_bytes=float(res["dram_bytes"][0]), dram_read_bytes=float(res["dram_read_bytes"][0]),
        dram_write_bytes=float(res["dram_write_bytes"][0]), energy_breakdown_pj=breakdown, actions=actions,
        per_einsum_activity_2d=activity.get("2d", {}), per_einsum_activity_1d=activity.get("1d", {}),
        per_einsum_cycles=per_cycles,
        buffer={"capacity_bytes": hw.glb_bytes, "used_bytes": used, "tensors": tensors},
        area_um2=area, energy_by_op_pj=by_op, loop_nest=schedule.loop_nest(), rank_sizes=dict(view.sizes),
        instances=inst, instance_note=view.instance_note, macs=macs, dense_macs=dense_macs,
        exposed_io_cycles=float(res["exposed_io_cycles"][0]), schedule=schedule)


def evaluate(cascade: CascadeLike, mapping: Mapping | str, arch: Architecture | Hardware, workload: Workload | None = None, *,
             sizes: TMapping[str, int] | None = None) -> Evaluation:
    """Evaluate ``cascade`` (a Cascade, a library name, or a CascadeView) under ``mapping`` on ``arch``
    (a cost_models Architecture) for ``workload`` (a cost_models Workload: its rank sizes and instance
    ranks).  Raises MappingError/ArchError/WorkloadError for an invalid or infeasible mapping.
    """
    if isinstance(mapping, str):
        from einloom.mapper.baselines import baseline_mapping
        mapping = baseline_mapping(mapping, cascade, arch, workload)
    rm = resolve(cascade, mapping, arch, workload, sizes)
    name = getattr(cascade, "name", None) if not isinstance(cascade, str) else cascade
    return evaluate_view(rm, workload_name=getattr(workload, "name", "-") if workload is not None else "-",
                         cascade_name=name)


def evaluate_schedule(schedule: Schedule) -> Evaluation:
    """Evaluate a lowered :class:`~einloom.mapper.lower.Schedule`."""
    return evaluate_view(schedule.resolved, workload_name=schedule.workload, cascade_name=schedule.cascade)


# ==================================================================================================
# End to end: attention + the layer's linear layers on the 2D array
# ==================================================================================================

@dataclass
class EndToEnd:
    """Attention plus linear layers (FuseMax §4.2: latency_e2e = attention + linear layers)."""

    attention: Evaluation
    linear: dict[str, Evaluation]

    @property
    def latency_s(self) -> float:
        return self.attention.latency_s + sum(e.latency_s for e in self.linear.values())

    @property
    def energy_pj(self) -> float:
        return self.attention.energy_pj + sum(e.energy_pj for e in self.linear.values())

    def to_dict(self) -> dict[str, Any]:
        """Same keys as :meth:`Evaluation.to_dict` for the whole layer (utilizations and activities
        time-weighted over attention and the linear layers; linear layers appear as ``linear.<name>``),
        plus the attention and linear parts."""
        parts = [("", self.attention)] + [(f"linear.{k}", v) for k, v in self.linear.items()]
        total = self.latency_s or 1.0
        breakdown: dict[str, float] = {}
        actions: dict[str, float] = {}
        activity: dict[str, float] = {}
        util = {"2d": 0.0, "1d": 0.0}
        for name, ev in parts:
            share = ev.latency_s / total
            for k, v in ev.energy_breakdown_pj.items():
                breakdown[k] = breakdown.get(k, 0.0) + v
            for k, v in ev.actions.items():
                actions[k] = actions.get(k, 0.0) + v
            for e, a in ev.per_einsum_activity_2d.items():
                key = name or e
                activity[key] = activity.get(key, 0.0) + a * share
            util["2d"] += ev.util_2d * share
            util["1d"] += ev.util_1d * share
        return {"latency_s": self.latency_s, "energy_pj": self.energy_pj,
                "util_2d": util["2d"], "util_1d": util["1d"], "actions": actions,
                "per_einsum_activity_2d": activity,
                "attention_latency_s": self.attention.latency_s, "attention_energy_pj": self.attention.energy_pj,
                "linear_latency_s": sum(e.latency_s for e in self.linear.values()),
                "linear_energy_pj": sum(e.energy_pj for e in self.linear.values()),
                "dram_bytes": self.attention.dram_bytes + sum(e.dram_bytes for e in self.linear.values()),
                "energy_breakdown_pj": breakdown, "area_um2": self.attention.area_um2,
                "attention": self.attention.to_dict(),
                "linear": {k: v.to_dict() for k, v in self.linear.items()}}


def evaluate_end_to_end(cascade: CascadeLike, mapping: Mapping, arch: Architecture, workload: Workload) -> EndToEnd:
    """Attention under ``mapping`` plus the workload's linear layers (Q, K, V, Z, FFN1, FFN2), each a
    GEMM on the 2D array mapped by :func:`einloom.mapper.baselines.linear_layer_mapping`."""
    from einloom.mapper.baselines import evaluate_linear_layers
    attention = evaluate(cascade, mapping, arch, workload)
    return EndToEnd(attention, evaluate_linear_layers(arch, workload))
