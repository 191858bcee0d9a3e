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

**Latency composition** per fusion group: ``interleave`` -> ``max(busy_2D, busy_1D)`` (consecutive
iterations of the interleave rank alternate between the arrays, so each array's work hides under the
other's; one epoch of the smaller array is exposed once as fill); ``sequential`` -> ``busy_2D +
busy_1D`` (arrays take turns); ``none`` -> each Einsum alone, ``max(compute, its DRAM time)``, summed.
A fused group's latency is ``max(compute, DRAM bytes / bandwidth)`` (tiles are double-buffered).

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

import math
from dataclasses import dataclass, field
from math import prod
from typing import Any, Mapping as TMapping

import numpy as np

from einloom.einsum.errors import ArchError, Location, MappingError
from einloom.mapper.mapping import (ARRAY_DIMS, PIPELINE_MODES, FusionGroup, Mapping, format_loop_nest)
from einloom.mapper.model import CascadeView, EinsumInfo, held_roots, require_known

__all__ = ["Hardware", "Resolved", "Evaluation", "evaluate", "evaluate_view", "resolve", "evaluate_family",
           "evaluate_end_to_end", "EndToEnd", "check_mapping"]


# ==================================================================================================
# Hardware view (a thin adapter over einloom.cost_models.Architecture)
# ==================================================================================================

@dataclass(frozen=True)
class Hardware:
    """The numbers the evaluator reads from an architecture (all per value unless noted)."""

    arch: Any
    name: str
    dims: TMapping[str, TMapping[str, int]]
    clock_hz: float
    dram_bytes_per_cycle: float
    glb_bytes: float
    word_bytes: float
    values_per_row: float
    rf_entries: TMapping[str, int]
    dram_pj_per_access: float          # one 64-bit access
    glb_read_pj_row: float
    glb_write_pj_row: float
    rf_read_pj: TMapping[str, float]
    rf_write_pj: TMapping[str, float]

    @classmethod
    def from_arch(cls, arch: Any) -> "Hardware":
        a2, a1 = arch.array("2d"), arch.array("1d")
        gb = arch.global_buffer
        word = arch.data.bytes
        table = arch.energy_per_action()
        return cls(
            arch=arch, name=arch.name,
            dims={"2d": {"rows": a2.rows, "cols": a2.cols}, "1d": {"lanes": a1.cols}},
            clock_hz=arch.clock_hz, dram_bytes_per_cycle=arch.dram_bytes_per_cycle,
            glb_bytes=float(gb.capacity_bytes), word_bytes=word,
            values_per_row=gb.row_bits / arch.data.bits,
            rf_entries={"2d": a2.register_file.entries, "1d": a1.register_file.entries},
            dram_pj_per_access=table["dram.read"],
            glb_read_pj_row=table["global_buffer.read"], glb_write_pj_row=table["global_buffer.write"],
            rf_read_pj={"2d": table["array_2d.register_file.read"], "1d": table["array_1d.register_file.read"]},
            rf_write_pj={"2d": table["array_2d.register_file.write"], "1d": table["array_1d.register_file.write"]},
        )

    def pes(self, array: str) -> int:
        return prod(self.dims[array].values())

    def op_cost(self, array: str, op: str):
        key = (array, op)
        cost = self._ops.get(key)
        if cost is None:
            cost = self._ops[key] = self.arch.op_cost(array, op)
        return cost

    def unit_energy(self, array: str, unit: str) -> float:
        key = (array, unit)
        if key not in self._units:
            self._units[key] = self.arch.unit_energy_pj(array, unit)
        return self._units[key]

    @property
    def _ops(self) -> dict:
        return self.__dict__.setdefault("_op_cache", {})

    @property
    def _units(self) -> dict:
        return self.__dict__.setdefault("_unit_cache", {})


#: id(arch) -> (arch, Hardware); architectures are immutable but not hashable.
_HW_CACHE: dict[int, tuple[Any, Hardware]] = {}


def _hardware(arch: Any) -> Hardware:
    if isinstance(arch, Hardware):
        return arch
    hit = _HW_CACHE.get(id(arch))
    if hit is None or hit[0] is not arch:
        if len(_HW_CACHE) > 64:
            _HW_CACHE.clear()
        hit = _HW_CACHE[id(arch)] = (arch, Hardware.from_arch(arch))
    return hit[1]


# ==================================================================================================
# Resolution: a Mapping checked against a cascade view and hardware, with every factor fixed
# ==================================================================================================

@dataclass(frozen=True)
class Group:
    einsums: tuple[str, ...]
    pipeline: str
    interleave_rank: str | None


@dataclass(frozen=True)
class Resolved:
    """A mapping checked against a cascade and an architecture; every loop factor resolved."""

    mapping: Mapping
    view: CascadeView
    hw: Hardware
    factors: TMapping[tuple[str, str], int]        # (level, rank) -> factor
    order: TMapping[str, tuple[str, ...]]           # temporal level -> ranks, outer first
    groups: tuple[Group, ...]
    par_ranks: TMapping[str, tuple[str, ...]]       # einsum -> ranks running in parallel
    ii: TMapping[str, float]                        # einsum -> cycles per point per PE
    unit_actions: TMapping[str, TMapping[str, float]]   # einsum -> {unit: actions per point}
    op_energy: TMapping[str, float]                 # einsum -> pJ per point (all ops)

    def factor(self, level: str, rank: str) -> int:
        return self.factors.get((level, rank), 1)

    def loop_nest(self, instances: TMapping[str, int] | None = None) -> str:
        return format_loop_nest(self.mapping, self.factors, array_dims=self.hw.dims, instances=instances)


def _where(mapping: Mapping):
    return lambda *path: mapping.where(*path)


def check_mapping(view: CascadeView, mapping: Mapping, hw: Hardware) -> Resolved:
    """Check ``mapping`` against the cascade and hardware; resolve all factors.

    Raises :class:`MappingError` naming the field for unknown Einsums/ranks, unbound Einsums, ranks
    spread wider than an array dimension, or tilings that do not cover a rank; raises
    :class:`ArchError` when an Einsum is bound to an array with no unit for one of its ops.
    """
    sizes = view.sizes
    where = mapping.where
    bound = mapping.binding
    # names
    for einsum, array in bound.items():
        if einsum not in view.names:
            require_known(view, [einsum], "binding", lambda n, a=array: where("binding", a))
    for e in view.compute_einsums:
        if e.name not in bound:
            raise MappingError(f"Einsum '{e.name}' does arithmetic ({', '.join(e.ops)}) but is not bound to an "
                               "array", location=where("binding"),
                               hint=f"add {e.name} to binding.2d or binding.1d")

    def check_rank(rank: str, *path: Any) -> None:
        if rank not in sizes:
            import difflib
            close = difflib.get_close_matches(rank, list(sizes), n=1)
            raise MappingError(f"unknown rank '{rank}'", location=where(*path),
                               hint=(f"did you mean '{close[0]}'? " if close else "")
                               + f"ranks of {view.name}: {', '.join(sizes)}")

    for array, dims in mapping.spatial.items():
        for dim, ranks in dims.items():
            for r in ranks:
                check_rank(r, "spatial", array, dim)
    for einsum, dims in mapping.spatial_overrides.items():
        require_known(view, [einsum], "spatial_overrides", lambda n: where("spatial_overrides", n))
        for dim, ranks in dims.items():
            for r in ranks:
                check_rank(r, "spatial_overrides", einsum, dim)
    for rank in mapping.tiling:
        check_rank(rank, "tiling", rank)
    for level, ranks in mapping.loop_order.items():
        for r in ranks:
            check_rank(r, "loop_order", level)

    # factors
    spatial_width: dict[str, int] = {}
    for einsum, array in bound.items():
        for dim, ranks in mapping.spatial_for(einsum).items():
            for r in ranks:
                spatial_width[r] = min(spatial_width.get(r, 1 << 62), hw.dims[array][dim])
    factors: dict[tuple[str, str], int] = {}
    iterated = {r for e in bound for r in view.einsum(e).iteration_ranks}
    for rank, size in sizes.items():
        if rank not in iterated:
            continue
        given = dict(mapping.tiling.get(rank, {}))
        if "spatial" not in given and rank in spatial_width:
            given["spatial"] = min(size, spatial_width[rank])
        covered = prod(given.values()) if given else 1
        rest = -(-size // covered)
        if rest > 1:
            target = next((lv for lv in ("DRAM", "GLB", "PE") if rank in mapping.loop_order.get(lv, ())
                           and lv not in given), None)
            if target is None:
                target = "PE" if "PE" not in given else None
            if target is None:
                raise MappingError(f"tiling of {rank} covers {covered} of its {size} elements",
                                   location=where("tiling", rank),
                                   hint=f"make the factors of {rank} multiply to {size}")
            given[target] = rest
        for level, f in given.items():
            if f > 1:
                factors[(level, rank)] = int(f)
    order: dict[str, tuple[str, ...]] = {}
    for level in ("DRAM", "GLB", "PE"):
        listed = list(mapping.loop_order.get(level, ()))
        listed += [r for r in sizes if (level, r) in factors and r not in listed]
        order[level] = tuple(listed)

    # spatial fit and parallel ranks
    par_ranks: dict[str, tuple[str, ...]] = {}
    for einsum, array in bound.items():
        info = view.einsum(einsum)
        par = []
        for dim, ranks in mapping.spatial_for(einsum).items():
            width = hw.dims[array][dim]
            used = prod(factors.get(("spatial", r), 1) for r in ranks)
            if used > width:
                raise MappingError(f"{array} {dim} has {width} PEs but ranks {' x '.join(ranks)} are spread over "
                                   f"{used}", location=where("spatial", array, dim),
                                   hint=f"lower the spatial factors of {', '.join(ranks)}")
            # an iterative rank carries a dependence from one iterate to the next: never parallel
            par += [r for r in ranks if r in info.iteration_ranks and r != info.iterative_rank]
        par_ranks[einsum] = tuple(par)

    # groups
    groups: list[Group] = []
    claimed = {e for g in mapping.groups if g.einsums != ("all",) for e in g.einsums}
    for i, g in enumerate(mapping.groups):
        members = [e for e in bound if e not in claimed] if g.einsums == ("all",) else list(g.einsums)
        require_known(view, members, "groups", lambda n, i=i: where("groups", i, "einsums"))
        members = [e for e in view.names if e in members]           # cascade order
        if g.interleave_rank is not None:
            check_rank(g.interleave_rank, "groups", i, "interleave_rank")
        if g.pipeline == "none":
            groups += [Group((e,), "none", None) for e in members]
        elif members:
            groups.append(Group(tuple(members), g.pipeline, g.interleave_rank))
    grouped = {e for g in groups for e in g.einsums}
    missing = [e for e in bound if e not in grouped]
    if missing:
        groups += [Group((e,), "none", None) for e in missing]
    for t in mapping.spill:
        if t not in view.names or t in view.outputs or t in view.views:
            raise MappingError(f"spill lists '{t}', which is not an intermediate of {view.name}",
                               location=where("spill"),
                               hint="intermediates: " + ", ".join(e.name for e in view.compute_einsums
                                                                  if e.name not in view.outputs))
    dram_tensors = list(view.inputs) + list(view.views) + list(view.outputs) + list(mapping.spill)
    for t in mapping.bypass:
        if t not in dram_tensors:
            known = t in view.names or t in view.inputs
            raise MappingError(f"bypass lists '{t}', which " + ("does not live in DRAM" if known else
                               f"is not a tensor of {view.name}"), location=where("bypass"),
                               hint=("spill it as well (spill: [...]), or " if known else "")
                               + "bypass inputs, outputs or spilled intermediates: " + ", ".join(dram_tensors))

    # per-einsum op costs (an op with no unit on its array raises ArchError here)
    ii: dict[str, float] = {}
    unit_actions: dict[str, dict[str, float]] = {}
    op_energy: dict[str, float] = {}
    for einsum, array in bound.items():
        info = view.einsum(einsum)
        points = info.points(sizes)
        busy: dict[str, float] = {}
        actions: dict[str, float] = {}
        energy = 0.0
        for op, count in info.ops.items():
            try:
                cost = hw.op_cost(array, op)
            except ArchError as err:
                raise ArchError(f"Einsum {einsum} is bound to the {array} array, which cannot run its "
                                f"'{op}' ops: {err.message}", location=where("binding", array),
                                hint=err.hint or f"bind {einsum} to the other array") from None
            per_point = count / points
            unit = max(cost.unit_actions, key=lambda u: cost.unit_actions[u]) if cost.unit_actions else op
            busy[unit] = busy.get(unit, 0.0) + per_point * cost.cycles
            for u, n in cost.unit_actions.items():
                actions[u] = actions.get(u, 0.0) + per_point * n
            energy += per_point * cost.energy_pj
        ii[einsum] = max(busy.values()) if busy else 0.0
        unit_actions[einsum] = actions
        op_energy[einsum] = energy
    return Resolved(mapping, view, hw, factors, order, tuple(groups), par_ranks, ii, unit_actions, op_energy)


def resolve(cascade: Any, mapping: Mapping, arch: Any, workload: Any = None,
            sizes: TMapping[str, int] | None = None) -> Resolved:
    """Build the cascade view for ``workload`` (or ``sizes``) and check ``mapping`` against it."""
    view = _view_for(cascade, mapping, workload, sizes)
    return check_mapping(view, mapping, _hardware(arch))


def _view_for(cascade: Any, mapping: Mapping | None, workload: Any, sizes: TMapping[str, int] | None
              ) -> CascadeView:
    if isinstance(cascade, CascadeView):
        return cascade
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        cascade = load_cascade(cascade)
    ranks = dict(workload.rank_sizes()) if workload is not None else {}
    ranks.update(sizes or {})
    ranks.update(_mapping_params(mapping, cascade))
    return _cached_view(cascade, tuple(sorted(ranks.items())))


def _mapping_params(mapping: Mapping | None, cascade: Any) -> dict[str, int]:
    """Cascade parameters a mapping fixes: a partition tile (``M0``) equals its spatial factor."""
    params = getattr(cascade, "params", {}) or {}
    out = {}
    if mapping is not None and mapping.params:
        return {k: int(v) for k, v in mapping.params.items()}
    if mapping is not None:
        for rank, levels in mapping.tiling.items():
            if rank in params and set(levels) <= {"spatial", "PE", "GLB"}:
                out[rank] = prod(levels.values())
    return out


#: (id(cascade), sizes) -> (view, cascade); the cascade is kept so its id stays unique.
_VIEW_CACHE: dict[tuple[int, tuple], tuple[CascadeView, Any]] = {}


def _cached_view(cascade: Any, key: tuple) -> CascadeView:
    k = (id(cascade), key)
    hit = _VIEW_CACHE.get(k)
    if hit is None:
        if len(_VIEW_CACHE) > 512:
            _VIEW_CACHE.clear()
        hit = (CascadeView.from_cascade(cascade, dict(key)), cascade)
        _VIEW_CACHE[k] = hit
    return hit[0]


# ==================================================================================================
# The vectorized core: a family of mappings that share binding/spatial/order, differing in factors
# ==================================================================================================

def _last_reader(view: CascadeView, tensor: str, bound: TMapping[str, str]) -> str | None:
    readers = [c.name for c, carried in view.consumers(tensor) if not carried and c.name in bound]
    return readers[-1] if readers else None


def _is_dram(loc: Any) -> bool:
    return isinstance(loc, str) and loc == "dram"


def _arr(x: Any, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(a, (n,)) if a.ndim == 0 else a


def evaluate_family(rm: Resolved, overrides: TMapping[tuple[str, str], Any] | None = None, *,
                    instances: int = 1, n: int | None = None) -> dict[str, Any]:
    """Score a family of mappings in one vectorized pass.

    ``overrides`` maps ``(level, rank)`` to an array of factors (one per candidate); every other factor
    is ``rm``'s.  Returns a dict of arrays of length N: ``latency_cycles``, ``energy_pj``,
    ``dram_bytes``, ``glb_bytes`` (worst group's working set), ``feasible`` and breakdowns.
    """
    overrides = dict(overrides or {})
    if n is None:
        n = max([np.size(v) for v in overrides.values()] + [1])
    view, hw, mapping = rm.view, rm.hw, rm.mapping
    sizes = view.sizes
    F: dict[tuple[str, str], np.ndarray] = {k: _arr(v, n) for k, v in rm.factors.items()}
    for k, v in overrides.items():
        F[k] = _arr(v, n)
    one = np.ones(n)

    def f(level: str, rank: str) -> np.ndarray:
        return F.get((level, rank), one)

    sp = {r: f("spatial", r) for r in sizes}
    bound = mapping.binding
    infos = {e: view.einsum(e) for e in bound}

    # ---------------- compute ----------------
    cycles: dict[str, np.ndarray] = {}
    ideal: dict[str, np.ndarray] = {}
    points: dict[str, float] = {}
    feasible = np.ones(n, dtype=bool)
    for e, info in infos.items():
        pts = float(info.points(sizes))
        points[e] = pts
        steps = one.copy()
        for r in info.iteration_ranks:
            steps = steps * (np.ceil(sizes[r] / sp[r]) if r in rm.par_ranks[e] else sizes[r])
        cycles[e] = rm.ii[e] * steps
        ideal[e] = pts / (steps * hw.pes(bound[e]))
        for dim, ranks in mapping.spatial_for(e).items():
            used = prod((sp[r] for r in ranks), start=one)
            feasible &= used <= hw.dims[bound[e]][dim]

    # A reduction split across temporal (DRAM/GLB) loops completes only after them; within a fused
    # group a consumer in the same pass would read partial values, so such tilings are illegal.
    for gi, g in enumerate(rm.groups):
        if g.pipeline == "none":
            continue
        members = set(g.einsums)
        for e in g.einsums:
            info = infos[e]
            same_pass = [c for c, carried in view.consumers(e) if c.name in members and not carried and not any(
                lvl > info.levels.get(root, 0) for root, lvl in c.levels.items())]
            if not same_pass:
                continue
            for r in info.reduced_ranks:
                feasible &= (f("DRAM", r) <= 1) & (f("GLB", r) <= 1)

    # ---------------- tensors: residency ----------------
    group_of = {e: gi for gi, g in enumerate(rm.groups) for e in g.einsums}
    order = {lv: list(rm.order[lv]) for lv in ("DRAM", "GLB", "PE")}
    for (lv, r) in overrides:                  # a factor at a level whose order omits the rank: innermost
        if lv in order and r not in order[lv]:
            order[lv].append(r)
    nest = [(lv, r) for lv in ("DRAM", "GLB") for r in order[lv]]

    def dram_mult(ranks: set[str]) -> np.ndarray:
        mult, seen = one.copy(), np.zeros(n, dtype=bool)
        for r in reversed(order["DRAM"]):
            fr = f("DRAM", r)
            if r in ranks:
                seen |= fr > 1
            else:
                mult = mult * np.where(seen, fr, 1.0)
        return mult

    def glb_tile(ranks: set[str]) -> np.ndarray:
        t = one.copy()
        for s in ranks:
            t = t * f("GLB", s) * sp[s] * f("PE", s)
        return t

    def held_tile(ranks: set[str], held: set[str]) -> np.ndarray:
        """Tile kept from the outermost loop over a held rank inward."""
        t = one.copy()
        for s in ranks:
            t = t * sp[s] * f("PE", s)
        if not held:
            return t
        active = np.zeros(n, dtype=bool)
        for lv, r in nest:
            fr = f(lv, r)
            if r in held:
                active |= fr > 1
            if r in ranks:
                t = t * np.where(active, fr, 1.0)
        return t

    dram_read = {gi: np.zeros(n) for gi in range(len(rm.groups))}
    dram_write = {gi: np.zeros(n) for gi in range(len(rm.groups))}
    dram_by_einsum = {e: np.zeros(n) for e in bound}
    footprint = {gi: np.zeros(n) for gi in range(len(rm.groups))}
    fp_parts: dict[int, dict[str, np.ndarray]] = {gi: {} for gi in range(len(rm.groups))}
    glb_reads, glb_writes = np.zeros(n), np.zeros(n)
    rf_reads = {"2d": np.zeros(n), "1d": np.zeros(n)}
    rf_writes = {"2d": np.zeros(n), "1d": np.zeros(n)}
    location: dict[str, Any] = {}     # tensor -> "dram" | "glb" | bool array (True = RF)

    def ranks_of(t: str) -> set[str]:
        it = view.iterative.get(t)
        return {r for r in view.tensor_ranks[t] if r != it}

    # inputs and partition views
    for t in list(view.inputs) + list(view.views):
        location[t] = "dram"
    for e, info in infos.items():
        t = e
        rt = ranks_of(t)
        consumers = [(c, carried) for c, carried in view.consumers(t) if c.name in bound]
        cross = any(group_of[c.name] != group_of[e] for c, _ in consumers)
        later = [c for c, carried in consumers if not carried and any(
            lvl > info.levels.get(root, 0) for root, lvl in c.levels.items())]
        if t in view.outputs or cross or (t in mapping.spill and later):
            location[t] = "dram"
            continue
        held_r = held_roots(view, t)
        held = {r for r in sizes if view.roots.get(r, frozenset({r})) & held_r}
        if view.iterative.get(t):
            held.add(view.iterative[t])
        tile = held_tile(rt, held)
        arrays = {bound[e]} | {bound[c.name] for c, _ in consumers}
        lanes = prod((sp[r] for r in rm.par_ranks[e] if r in rt), start=one)
        if len(arrays) == 1:
            in_rf = tile / lanes <= hw.rf_entries[bound[e]]
        else:
            in_rf = np.zeros(n, dtype=bool)
        location[t] = in_rf
        gi = group_of[e]
        part = np.where(in_rf, 0.0, tile)
        # In place: an element-wise producer that is the last reader of a same-shaped on-chip operand
        # overwrites it (SN = exp(QK - GM) reuses QK's storage).
        for u in info.inputs:
            if u in fp_parts[gi] and set(view.tensor_ranks.get(u, ())) == set(view.tensor_ranks[t]) and \
                    not info.reduced_ranks and _last_reader(view, u, bound) == e:
                part = np.maximum(part - fp_parts[gi][u], 0.0)
                break
        footprint[gi] = footprint[gi] + part
        fp_parts[gi][t] = part

    # DRAM tensors: traffic and buffer tiles per group.  A bypassed tensor has no buffer tile: each
    # delivery to the array reads DRAM, and results go straight to DRAM.
    bypass = {t for t in mapping.bypass if _is_dram(location.get(t))}   # a spill with no later reader stays on chip
    bypass_read, bypass_write = np.zeros(n), np.zeros(n)

    def deliveries(e: str, t: str) -> np.ndarray:
        """Values of operand ``t`` sent to ``e``'s array (one per multicast group and PE reuse window)."""
        info = infos[e]
        multicast = prod((sp[r] for r in rm.par_ranks[e] if r not in ranks_of(t)), start=one)
        pe_reuse = prod((f("PE", r) for r in info.iteration_ranks if r not in ranks_of(t)), start=one)
        return points[e] / (multicast * pe_reuse)

    def partial_sums(info: EinsumInfo) -> np.ndarray:
        """How many times each output is written when its reduction is split over DRAM/GLB loops."""
        return prod((f(lv, r) for r in info.reduced_ranks for lv in ("DRAM", "GLB")), start=one)

    crossing = {t for t in infos if _is_dram(location.get(t)) and t not in view.outputs and t not in mapping.spill}
    crossing_events: list[tuple[str, int, str, str, np.ndarray]] = []
    for gi, g in enumerate(rm.groups):
        seen_inputs: set[str] = set()
        for e in g.einsums:
            info = infos[e]
            for t in info.inputs:
                if not _is_dram(location.get(t)):
                    continue
                rt = ranks_of(t)
                producer = infos.get(t)
                if t in view.inputs or t in view.views:
                    if t in seen_inputs and t not in bypass:
                        continue
                    seen_inputs.add(t)
                else:
                    same = producer is not None and group_of[producer.name] == gi
                    later = not same or any(lvl > producer.levels.get(root, 0)
                                            for root, lvl in info.levels.items())
                    if not later:
                        continue
                if t in bypass:                     # every delivery to the array comes from DRAM
                    vol = deliveries(e, t)
                    bypass_read = bypass_read + vol
                else:
                    vol = view.tensor_elements(t) * dram_mult(rt)
                dram_read[gi] = dram_read[gi] + vol
                dram_by_einsum[e] = dram_by_einsum[e] + vol
                if t in bypass:
                    continue
                if t in crossing:
                    crossing_events.append((t, gi, e, "read", vol))
                if t not in fp_parts[gi]:
                    tile = glb_tile(rt)
                    fp_parts[gi][t] = tile
                    footprint[gi] = footprint[gi] + tile
            if _is_dram(location.get(e)) and e in bypass:      # results written straight to DRAM
                out_pts, partial = float(info.out_points(sizes)), partial_sums(info)
                dram_write[gi] = dram_write[gi] + out_pts * partial
                dram_read[gi] = dram_read[gi] + out_pts * (partial - 1)
                bypass_write = bypass_write + out_pts * partial
                bypass_read = bypass_read + out_pts * (partial - 1)
                dram_by_einsum[e] = dram_by_einsum[e] + out_pts * partial
            elif _is_dram(location.get(e)):
                rt = ranks_of(e)
                mult = dram_mult(rt)
                vol = view.tensor_elements(e) * mult
                dram_write[gi] = dram_write[gi] + vol
                dram_read[gi] = dram_read[gi] + view.tensor_elements(e) * (mult - 1)
                dram_by_einsum[e] = dram_by_einsum[e] + vol
                if e in crossing:
                    crossing_events.append((e, gi, e, "write", vol + view.tensor_elements(e) * (mult - 1)))
                if e not in fp_parts[gi]:
                    tile = glb_tile(rt)
                    fp_parts[gi][e] = tile
                    footprint[gi] = footprint[gi] + tile

    # An intermediate passed between fusion groups (Unfused: every one) stays in the buffer when the
    # whole tensor fits next to the largest group's working set; otherwise it goes through DRAM.
    capacity = hw.glb_bytes / hw.word_bytes
    for t in [t for t in view.names if t in crossing]:
        whole = float(view.tensor_elements(t))
        largest = np.max(np.stack(list(footprint.values())), axis=0) if footprint else np.zeros(n)
        keep = whole + largest <= capacity
        for (u, gi, e, kind, vol) in crossing_events:
            if u != t:
                continue
            saved = np.where(keep, vol, 0.0)
            if kind == "read":
                dram_read[gi] = dram_read[gi] - saved
            else:
                dram_write[gi] = dram_write[gi] - saved
            dram_by_einsum[e] = dram_by_einsum[e] - saved
        for gi in footprint:
            extra = np.where(keep, whole - fp_parts[gi].get(t, 0.0), 0.0)
            footprint[gi] = footprint[gi] + extra
            fp_parts[gi][t] = fp_parts[gi].get(t, 0.0) + extra

    # ---------------- on-chip accesses ----------------
    # Operands delivered from the buffer go straight to the functional units (multicast over the
    # spatial ranks they do not depend on) unless the PE reuses them over a PE-level loop, in which
    # case they are written to the register file once and read per use.  Accumulations over a
    # PE-level (temporal) reduction read and write the register file per point; spatial reductions
    # and outputs sent to the buffer bypass it.  Intermediates resident in the register file are read
    # from it per use.
    for e, info in infos.items():
        array = bound[e]
        pts = points[e]
        par = rm.par_ranks[e]
        operands = list(info.inputs) + ([e] if info.reads_self else [])
        for t in operands:
            loc = location.get(t)
            rt = ranks_of(t)
            if isinstance(loc, np.ndarray):          # on chip: True = register file
                in_rf = loc
            else:
                in_rf = np.zeros(n, dtype=bool)
            multicast = prod((sp[r] for r in par if r not in rt), start=one)
            pe_reuse = prod((f("PE", r) for r in info.iteration_ranks if r not in rt), start=one)
            delivered = pts / (multicast * pe_reuse)
            if t not in bypass:
                glb_reads = glb_reads + np.where(in_rf, 0.0, delivered)
            kept = in_rf | (pe_reuse > 1)
            rf_reads[array] = rf_reads[array] + np.where(kept, pts, 0.0)
            rf_writes[array] = rf_writes[array] + np.where(in_rf, 0.0, np.where(pe_reuse > 1, delivered, 0.0))
        out_pts = float(info.out_points(sizes))
        temporal_red = prod((f("PE", r) for r in info.reduced_ranks), start=one)
        rf_reads[array] = rf_reads[array] + np.where(temporal_red > 1, pts, 0.0)
        rf_writes[array] = rf_writes[array] + np.where(temporal_red > 1, pts, 0.0)
        partial = partial_sums(info)
        loc = location.get(e)
        out_rf = loc if isinstance(loc, np.ndarray) else np.zeros(n, dtype=bool)
        rf_writes[array] = rf_writes[array] + np.where(out_rf & (temporal_red <= 1), out_pts, 0.0)
        if e in bypass:
            continue
        to_glb = np.where(out_rf, 0.0, out_pts * partial)
        glb_writes = glb_writes + to_glb
        glb_reads = glb_reads + np.where(out_rf, 0.0, out_pts * (partial - 1))

    dram_r = sum(dram_read.values(), np.zeros(n))
    dram_w = sum(dram_write.values(), np.zeros(n))
    glb_writes = glb_writes + dram_r - bypass_read       # fills
    glb_reads = glb_reads + dram_w - bypass_write        # drains
    word = hw.word_bytes

    # ---------------- capacity ----------------
    worst = np.zeros(n)
    for gi in footprint:
        worst = np.maximum(worst, footprint[gi] * word)
    feasible &= worst <= hw.glb_bytes

    # ---------------- latency ----------------
    bpc = hw.dram_bytes_per_cycle
    lat = np.zeros(n)
    busy = {"2d": np.zeros(n), "1d": np.zeros(n)}
    fill = np.zeros(n)
    epochs = prod((f(lv, r) for lv in ("DRAM", "GLB") for r in order[lv]), start=one) * instances
    for gi, g in enumerate(rm.groups):
        b = {"2d": np.zeros(n), "1d": np.zeros(n)}
        for e in g.einsums:
            b[bound[e]] = b[bound[e]] + cycles[e]
        busy["2d"] = busy["2d"] + b["2d"]
        busy["1d"] = busy["1d"] + b["1d"]
        mem = (dram_read[gi] + dram_write[gi]) * word / bpc
        if g.pipeline == "interleave":
            comp = np.maximum(b["2d"], b["1d"])
            fill = fill + np.minimum(b["2d"], b["1d"]) * instances / epochs
            lat = lat + np.maximum(comp, mem)
        elif g.pipeline == "sequential":
            lat = lat + np.maximum(b["2d"] + b["1d"], mem)
        else:
            for e in g.einsums:
                lat = lat + np.maximum(cycles[e], dram_by_einsum[e] * word / bpc)
    total_cycles = lat * instances + fill

    # ---------------- energy ----------------
    e_dram = (dram_r + dram_w) * word / 8.0 * hw.dram_pj_per_access
    e_glb = (glb_reads * hw.glb_read_pj_row + glb_writes * hw.glb_write_pj_row) / hw.values_per_row
    e_rf = {a: rf_reads[a] * hw.rf_read_pj[a] + rf_writes[a] * hw.rf_write_pj[a] for a in ("2d", "1d")}
    e_compute = sum((rm.op_energy[e] * points[e] for e in bound), 0.0)
    energy = (e_dram + e_glb + e_rf["2d"] + e_rf["1d"] + e_compute) * instances

    return {
        "n": n, "feasible": feasible, "latency_cycles": total_cycles, "latency_s": total_cycles / hw.clock_hz,
        "energy_pj": energy, "dram_bytes": (dram_r + dram_w) * word * instances,
        "dram_read_bytes": dram_r * word * instances, "dram_write_bytes": dram_w * word * instances,
        "glb_bytes": worst, "busy": {a: v * instances for a, v in busy.items()}, "fill_cycles": fill,
        "cycles": {e: v * instances for e, v in cycles.items()}, "ideal": ideal, "points": points,
        "glb_reads": glb_reads * instances, "glb_writes": glb_writes * instances,
        "rf_reads": {a: v * instances for a, v in rf_reads.items()},
        "rf_writes": {a: v * instances for a, v in rf_writes.items()},
        "energy_parts": {"dram": e_dram * instances, "global_buffer": e_glb * instances,
                         "rf_2d": e_rf["2d"] * instances, "rf_1d": e_rf["1d"] * instances},
        "footprints": fp_parts, "location": location, "instances": instances,
    }


# ==================================================================================================
# Public API
# ==================================================================================================

@dataclass
class Evaluation:
    """Result of :func:`evaluate` for one (cascade, mapping, architecture, workload).

    ``to_dict()`` keys: latency_s, latency_cycles, energy_pj, util_2d, util_1d (time-weighted spatial
    utilization, the FuseMax artifact's definition), utilization {array: {ideal, spatial_idle, stall,
    fill}}, dram_bytes, energy_breakdown_pj {component: pJ} (DRAM, global buffer, register files, and
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

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "loop_nest"}
        return out

    def table(self) -> str:
        """A readable summary table."""
        lines = [f"cascade {self.cascade}  mapping {self.mapping}  arch {self.arch}  workload {self.workload}",
                 f"  latency      {self.latency_s:.6g} s  ({self.latency_cycles:.6g} cycles)",
                 f"  energy       {self.energy_pj:.6g} pJ",
                 f"  DRAM traffic {self.dram_bytes:.6g} B (read {self.dram_read_bytes:.4g}, "
                 f"write {self.dram_write_bytes:.4g})",
                 f"  buffer       {self.buffer['used_bytes']:.6g} of {self.buffer['capacity_bytes']:.6g} B",
                 f"  area         {self.area_um2 / 1e6:.4g} mm^2"]
        for a in ("2d", "1d"):
            u = self.utilization[a]
            lines.append(f"  util {a}      {u['ideal']:.3f} ideal, {u['spatial_idle']:.3f} spatially idle, "
                         f"{u['stall']:.3f} stalled, {u['fill']:.3f} fill")
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


def _instances(workload: Any) -> tuple[int, str]:
    if workload is None:
        return 1, "-"
    ranks = workload.rank_sizes()
    return int(ranks.get("B", 1)) * int(ranks.get("H", 1)), getattr(workload, "name", "workload")


def evaluate_view(rm: Resolved, *, instances: int = 1, workload_name: str = "-", cascade_name: str | None = None
                  ) -> Evaluation:
    """Evaluate a resolved mapping; raise MappingError if its working set does not fit."""
    res = evaluate_family(rm, instances=instances)
    hw, view, mapping = rm.hw, rm.view, rm.mapping
    word = hw.word_bytes
    used = float(res["glb_bytes"][0])
    tensors = {}
    for gi, parts in res["footprints"].items():
        for t, v in parts.items():
            tensors[t] = max(tensors.get(t, 0.0), float(v[0]) * word)
    if used > hw.glb_bytes:
        top = sorted(tensors.items(), key=lambda kv: -kv[1])[:4]
        detail = ", ".join(f"{t} {b / 2**20:.3g} MiB" for t, b in top)
        raise MappingError(f"working set {used / 2**20:.4g} MiB does not fit the {hw.glb_bytes / 2**20:.4g} MiB "
                           f"global buffer of {hw.name} (largest: {detail})",
                           location=mapping.where("tiling"),
                           hint="shrink the GLB/PE tile factors, spill an intermediate to DRAM, or reorder loops")
    lat = float(res["latency_cycles"][0])
    inst = instances
    activity2, activity1 = {}, {}
    per_cycles = {}
    for e, c in res["cycles"].items():
        c = float(c[0])
        per_cycles[e] = c
        act = c * float(res["ideal"][e][0]) / lat if lat else 0.0
        (activity2 if mapping.binding[e] == "2d" else activity1)[e] = act
    util = {}
    for a, acts in (("2d", activity2), ("1d", activity1)):
        busy = float(res["busy"][a][0]) / lat if lat else 0.0
        ideal = sum(acts.values())
        fill = float(res["fill_cycles"][0]) / lat if lat else 0.0
        util[a] = {"ideal": ideal, "spatial_idle": max(busy - ideal, 0.0), "stall": max(1.0 - busy - fill, 0.0),
                   "fill": fill if busy < 1 else 0.0, "busy": busy}
    # actions and energy by component
    actions: dict[str, float] = {}
    breakdown: dict[str, float] = {}
    for e, array in mapping.binding.items():
        pts = res["points"][e] * inst
        for unit, per_point in rm.unit_actions[e].items():
            key = f"{array}.{unit}"
            count = per_point * pts
            actions[key] = actions.get(key, 0.0) + count
            breakdown[key] = breakdown.get(key, 0.0) + count * hw.unit_energy(array, unit)
    actions["dram.access_64b"] = float(res["dram_bytes"][0]) / 8
    actions["global_buffer.read_values"] = float(res["glb_reads"][0])
    actions["global_buffer.write_values"] = float(res["glb_writes"][0])
    for a in ("2d", "1d"):
        actions[f"{a}.register_file.read"] = float(res["rf_reads"][a][0])
        actions[f"{a}.register_file.write"] = float(res["rf_writes"][a][0])
    for k, v in res["energy_parts"].items():
        breakdown[k] = float(v[0])
    # op energies use op_cost's energy; split by unit above, rescale so the parts sum to the total
    compute_total = sum(rm.op_energy[e] * res["points"][e] for e in mapping.binding) * inst
    unit_total = sum(v for k, v in breakdown.items() if "." in k)
    if unit_total > 0 and abs(unit_total - compute_total) > 1e-6 * compute_total:
        for k in [k for k in breakdown if "." in k]:
            breakdown[k] *= compute_total / unit_total
    by_op: dict[str, float] = {}
    for e, array in mapping.binding.items():
        for op, count in view.einsum(e).ops.items():
            key = f"{array}.{op}"
            by_op[key] = by_op.get(key, 0.0) + count * inst * hw.op_cost(array, op).energy_pj
    energy = float(res["energy_pj"][0])
    try:
        area = float(hw.arch.area_report().total_um2)
    except Exception:  # noqa: BLE001 -- an architecture without area data reports 0, not a crash
        area = 0.0
    nest = rm.loop_nest()
    return Evaluation(
        cascade=cascade_name or view.name, mapping=mapping.name, arch=hw.name, workload=workload_name,
        latency_s=float(res["latency_s"][0]), latency_cycles=lat, energy_pj=energy,
        util_2d=util["2d"]["ideal"], util_1d=util["1d"]["ideal"], utilization=util,
        dram_bytes=float(res["dram_bytes"][0]), dram_read_bytes=float(res["dram_read_bytes"][0]),
        dram_write_bytes=float(res["dram_write_bytes"][0]), energy_breakdown_pj=breakdown, actions=actions,
        per_einsum_activity_2d=activity2, per_einsum_activity_1d=activity1, per_einsum_cycles=per_cycles,
        buffer={"capacity_bytes": hw.glb_bytes, "used_bytes": used, "tensors": tensors},
        area_um2=area, energy_by_op_pj=by_op, loop_nest=nest, rank_sizes=dict(view.sizes), instances=inst)


def evaluate(cascade: Any, mapping: Mapping, arch: Any, workload: Any = None, *,
             sizes: TMapping[str, int] | None = None) -> Evaluation:
    """Evaluate ``cascade`` (a Cascade, a library name, or a CascadeView) under ``mapping`` on ``arch``
    (a cost_models Architecture) for ``workload`` (a cost_models Workload: its rank sizes, and B x H
    instances).  Raises MappingError/ArchError for an invalid or infeasible mapping.
    """
    if isinstance(mapping, str):
        from einloom.mapper.baselines import baseline_mapping
        mapping = baseline_mapping(mapping, cascade, arch, workload)
    rm = resolve(cascade, mapping, arch, workload, sizes)
    inst, wname = _instances(workload)
    name = getattr(cascade, "name", None) if not isinstance(cascade, str) else cascade
    return evaluate_view(rm, instances=inst, workload_name=wname, cascade_name=name)


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


def evaluate_end_to_end(cascade: Any, mapping: Mapping, arch: Any, workload: Any) -> EndToEnd:
    """Attention under ``mapping`` plus the workload's linear layers (Q, K, V, Z, FFN1, FFN2), each a
    GEMM on the 2D array mapped by :func:`einloom.mapper.baselines.linear_layer_mapping`."""
    from einloom.mapper.baselines import evaluate_linear_layers
    attention = evaluate(cascade, mapping, arch, workload)
    return EndToEnd(attention, evaluate_linear_layers(arch, workload))
