"""The schedule: a cascade, a mapping, an architecture and a workload lowered ONCE into typed facts.

:func:`lower` checks a :class:`~einloom.mapper.mapping.Mapping` against a cascade (at the workload's
rank sizes) and an architecture, resolves every loop factor, and returns a :class:`Schedule`:

* **groups** -- fusion groups in the cascade's topological order, each with its loop nest (per
  storage level: rank, extent, temporal or spatial on a named array dimension);
* **einsums** -- each bound to an array, with its op classes per point, its spatial ranks, its
  initiation interval, and its **mask support**: for an Einsum under a coordinate mask (causal,
  window...), the exact number of valid points and, at the tile the hardware works on, how many tiles
  are full, partial or empty (empty tiles are skipped; partial ones are computed in full, as the
  hardware does);
* **tensors** -- each bound to a storage level (DRAM, global buffer, register file) with its tile
  footprint and the groups that produce and read it;
* **instances** -- the copies of the cascade that run one after another, from the workload's
  instance ranks the cascade does not iterate itself (batch x heads for MHA cascades, batch alone for
  a GQA cascade that iterates J x G): never a second count of heads.

Every consumer reads the schedule: the analytical evaluator (:mod:`einloom.mapper.evaluate`, whose
vectorized core uses the :class:`Resolved` part to score whole families of tilings at once), the
loop-nest printer, ``einloom map --json``.  It prints as a loop nest (:meth:`Schedule.loop_nest`) and
serializes to JSON (:meth:`Schedule.to_dict`).

Validation happens here, at the door, with file, line and field: unknown Einsums, ranks or params in
the mapping (``MO`` for ``M0``), factors that over-cover a rank, a spatial factor on an array
dimension that runs no Einsum using that rank (it would cost nothing and do nothing), a rank the
cascade needs that neither the workload nor ``--ranks`` gives (never a silent default from the spec),
Einsums bound to an array that cannot run their ops.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from math import prod
from typing import Any, Mapping as TMapping

import numpy as np

from einloom.cost_models.arch import ArrayKind, Architecture
from einloom.cost_models.workload import Workload
from einloom.einsum.cascade import Cascade
from einloom.einsum.errors import ArchError, Location, MappingError, WorkloadError
from einloom.mapper.mapping import ARRAY_DIMS, Mapping, format_loop_nest
from einloom.mapper.masks import Mask, TileCounts
from einloom.mapper.model import CascadeView, held_roots, require_known

#: What the mapper accepts as a cascade: a validated Cascade, a library name or spec path, or a view.
CascadeLike = Cascade | CascadeView | str

__all__ = ["Hardware", "Group", "Resolved", "check_mapping", "resolve", "lower", "Schedule", "Loop",
           "ScheduledEinsum", "ScheduledTensor", "ScheduleGroup", "instances_for", "cascade_view"]


# ==================================================================================================
# Hardware view (a thin adapter over einloom.cost_models.Architecture)
# ==================================================================================================

@dataclass(frozen=True)
class Hardware:
    """The numbers the evaluator reads from an architecture (all per value unless noted).

    ``dims``, ``rf_entries``, ``rf_read_pj`` and ``rf_write_pj`` are keyed by array (``2d``, ``1d``):
    the evaluator iterates them, so an architecture with another array is a data change.
    """

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
    concurrent_units: TMapping[str, bool] = field(default_factory=dict)   # array -> PEArray.concurrent_units

    @classmethod
    def from_arch(cls, arch: Architecture) -> "Hardware":
        gb = arch.global_buffer
        table = arch.energy_per_action()
        dims: dict[str, dict[str, int]] = {}
        entries, rf_read, rf_write = {}, {}, {}
        for kind in ArrayKind:
            key, pe_array = kind.value, arch.array(kind)
            names = ARRAY_DIMS[key]
            dims[key] = {"lanes": pe_array.cols} if names == ("lanes",) else \
                dict(zip(names, (pe_array.rows, pe_array.cols)))
            entries[key] = pe_array.register_file.entries
            rf_read[key] = table[f"{kind.key}.register_file.read"]
            rf_write[key] = table[f"{kind.key}.register_file.write"]
        return cls(
            arch=arch, name=arch.name, dims=dims, clock_hz=arch.clock_hz,
            dram_bytes_per_cycle=arch.dram_bytes_per_cycle, glb_bytes=float(gb.capacity_bytes),
            word_bytes=arch.data.bytes, values_per_row=gb.row_bits / arch.data.bits, rf_entries=entries,
            dram_pj_per_access=table["dram.read"], glb_read_pj_row=table["global_buffer.read"],
            glb_write_pj_row=table["global_buffer.write"], rf_read_pj=rf_read, rf_write_pj=rf_write,
            concurrent_units={k.value: bool(getattr(arch.array(k), "concurrent_units", False)) for k in ArrayKind})

    @property
    def arrays(self) -> tuple[str, ...]:
        """The arrays, in the architecture's order."""
        return tuple(self.dims)

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
    """A mapping checked against a cascade and an architecture; every loop factor resolved.

    ``folded`` lists, per Einsum, the ranks with a spatial factor that its own array does not carry:
    for that Einsum they run temporally inside the PE (so the spatial factor counts as a PE-level
    loop, register-file accumulation included).  ``masks`` holds each masked Einsum's
    :class:`~einloom.mapper.masks.Mask`; ``mask_scope`` maps every Einsum that skips empty tiles to the
    masked Einsum whose predicate decides it.
    """

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
    folded: TMapping[str, tuple[str, ...]] = field(default_factory=dict)
    masks: TMapping[str, Mask] = field(default_factory=dict)
    mask_scope: TMapping[str, str] = field(default_factory=dict)
    unit_busy: TMapping[str, TMapping[str, float]] = field(default_factory=dict)   # einsum -> {unit: cycles per point}
    latency: TMapping[str, float] = field(default_factory=dict)   # einsum -> pipeline depth of its ops (in sequence)

    def factor(self, level: str, rank: str) -> int:
        return self.factors.get((level, rank), 1)

    def loop_nest(self, instances: TMapping[str, int] | None = None) -> str:
        return format_loop_nest(self.mapping, self.factors, array_dims=self.hw.dims, instances=instances)


def _unknown(name: str, known: list[str], what: str, location: Location, of: str) -> MappingError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return MappingError(f"unknown {what} '{name}'", location=location,
                        hint=(f"did you mean '{close[0]}'? " if close else "") + f"{what}s of {of}: "
                        + (", ".join(known) or "none"))


def check_mapping(view: CascadeView, mapping: Mapping, hw: Hardware) -> Resolved:
    """Check ``mapping`` against the cascade and hardware; resolve all factors.

    Raises :class:`MappingError` naming the field for unknown Einsums, ranks or params, unbound
    Einsums, ranks spread wider than an array dimension, tilings that do not cover a rank or whose
    factors over-cover it, and spatial factors that no Einsum can use (a rank on an array dimension
    where no Einsum bound to that array iterates it); raises :class:`ArchError` when an Einsum is bound
    to an array with no unit for one of its ops.
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
    for array in list(bound.values()) + list(mapping.spatial):
        if array not in hw.dims:
            raise MappingError(f"{hw.name} has no '{array}' array", location=where("binding"),
                               hint="arrays: " + ", ".join(hw.dims))

    def check_rank(rank: str, *path: Any) -> None:
        if rank not in sizes:
            raise _unknown(rank, list(sizes), "rank", where(*path), view.name)

    for name in mapping.params:
        if name not in view.params:
            raise _unknown(name, list(view.params), "param", where("params", name), view.name)
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

    # spatial assignments must do something: a rank on an array dimension runs in parallel only for
    # the Einsums of that array that iterate it; with none, the factor would be free and idle.
    carried: dict[str, set[tuple[str, str]]] = {}           # rank -> {(array, dim)} some Einsum uses
    for einsum, array in bound.items():
        info = view.einsum(einsum)
        for dim, ranks in mapping.spatial_for(einsum).items():
            for r in ranks:
                if r in info.iteration_ranks:
                    carried.setdefault(r, set()).add((array, dim))
    for array, dims in mapping.spatial.items():
        for dim, ranks in dims.items():
            for r in ranks:
                if (array, dim) not in carried.get(r, set()):
                    users = [e for e, a in bound.items() if a == array]
                    raise MappingError(
                        f"rank {r} is spread over {array} {dim}, but no Einsum bound to the {array} array "
                        f"iterates {r} there (" + (", ".join(users) or "none bound") + ")",
                        location=where("spatial", array, dim),
                        hint=f"remove {r} from spatial.{array}.{dim}, or bind an Einsum over {r} to {array}")
    for einsum, dims in mapping.spatial_overrides.items():
        info = view.einsum(einsum)
        for dim, ranks in dims.items():
            if dim not in hw.dims[bound[einsum]]:
                raise MappingError(f"the {bound[einsum]} array has no dimension '{dim}'",
                                   location=where("spatial_overrides", einsum, dim),
                                   hint="dimensions: " + ", ".join(hw.dims[bound[einsum]]))
            for r in ranks:
                if r not in info.iteration_ranks:
                    raise MappingError(f"spatial override puts rank {r} on {dim} for {einsum}, which does not "
                                       f"iterate {r}", location=where("spatial_overrides", einsum, dim),
                                       hint=f"ranks of {einsum}: {', '.join(info.iteration_ranks)}")
    for rank, levels in mapping.tiling.items():
        if levels.get("spatial", 1) > 1 and rank not in carried:
            raise MappingError(f"tiling gives {rank} a spatial factor of {levels['spatial']}, but no array "
                               f"dimension carries {rank} for an Einsum that iterates it",
                               location=where("tiling", rank, "spatial"),
                               hint=f"put {rank} under spatial: for an array whose Einsums iterate it, "
                               "or move the factor to a temporal level (DRAM, GLB, PE)")

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
            if rank in mapping.tiling and any(f > 1 for f in mapping.tiling[rank].values()):
                raise MappingError(f"tiling splits rank {rank}, which no bound Einsum iterates",
                                   location=where("tiling", rank), hint=f"remove tiling.{rank}")
            continue
        given = dict(mapping.tiling.get(rank, {}))
        if "spatial" not in given and rank in spatial_width:
            given["spatial"] = min(size, spatial_width[rank])
        elif "spatial" in given:
            given["spatial"] = min(given["spatial"], size)    # a width bound: PEs past the rank stay idle
        covered = prod(given.values()) if given else 1
        for level, f in given.items():
            if f > 1 and covered // f >= size:
                raise MappingError(f"tiling of {rank} over-covers it: factors {given} multiply to {covered} "
                                   f"for {size} elements, and the {level} factor {f} adds nothing",
                                   location=where("tiling", rank, level),
                                   hint=f"make the factors of {rank} multiply to {size} (or the least "
                                   f"product >= {size} for a ragged last tile)")
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

    # spatial fit, parallel ranks, and ranks whose spatial factor is temporal for an Einsum
    par_ranks: dict[str, tuple[str, ...]] = {}
    folded: dict[str, tuple[str, ...]] = {}
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
        folded[einsum] = tuple(r for r in info.iteration_ranks
                               if factors.get(("spatial", r), 1) > 1 and r not in par)

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
    unit_busy: dict[str, dict[str, float]] = {}
    depth: dict[str, float] = {}
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
        unit_busy[einsum] = busy
        depth[einsum] = _pipeline_depth(hw, array, info.ops)
        unit_actions[einsum] = actions
        op_energy[einsum] = energy
    scope = _mask_scope(view, groups, bound)
    return Resolved(mapping, view, hw, factors, order, tuple(groups), par_ranks, ii, unit_actions, op_energy,
                    folded, dict(view.masks), scope, unit_busy, depth)


def _pipeline_depth(hw: Hardware, array: str, ops: TMapping[str, Any]) -> float:
    """Cycles from an Einsum's operands to its result on ``array``: its op classes one after another,
    each the pipeline depth (``latency``, else ``cycles``) of every unit it uses."""
    total = 0.0
    for op, count in ops.items():
        if not count:
            continue
        for unit in hw.op_cost(array, op).unit_actions:
            latency = hw.arch.unit_latency(array, unit) if hasattr(hw.arch, "unit_latency") else None
            total += float(latency if latency is not None else hw.op_cost(array, unit).cycles)
    return total


def _mask_scope(view: CascadeView, groups: tuple[Group, ...] | list[Group], bound: TMapping[str, str]
                ) -> dict[str, str]:
    """Einsum -> the masked Einsum whose empty tiles it skips.

    A fully masked tile is skipped by the masked Einsum, by the Einsums of its fusion group that
    consume it (directly or through others, masked coordinates are absent downstream) and by those
    that only feed it (their values at masked coordinates are dead); each must iterate at least one
    rank of every coordinate of the mask.
    """
    scope: dict[str, str] = {}
    for masked, mask in view.masks.items():
        if not mask.supported or masked not in bound:
            continue
        group = next((g for g in groups if masked in g.einsums), None)
        members = set(group.einsums) if group else {masked}
        coord_ranks = [{r for r, _ in c.components} for c in mask.coordinates if c.components]

        def covers(name: str) -> bool:
            its = set(view.einsum(name).iteration_ranks)
            return all(its & ranks for ranks in coord_ranks)

        inside = {masked}
        changed = True
        while changed:                       # consumers of skipped work
            changed = False
            for e in members - inside:
                info = view.einsum(e)
                if covers(e) and any(t in inside for t in info.inputs if t not in info.carried):
                    inside.add(e)
                    changed = True
        changed = True
        while changed:                       # producers whose every reader skips
            changed = False
            for e in members - inside:
                readers = [c.name for c, _ in view.consumers(e) if c.name in bound]
                if covers(e) and readers and all(r in inside for r in readers):
                    inside.add(e)
                    changed = True
        for e in inside:
            scope.setdefault(e, masked)
    return scope


def resolve(cascade: CascadeLike, mapping: Mapping, arch: Architecture | Hardware, workload: Workload | None = None,
            sizes: TMapping[str, int] | None = None) -> Resolved:
    """Build the cascade view for ``workload`` (or ``sizes``) and check ``mapping`` against it."""
    view = _view_for(cascade, mapping, workload, sizes)
    return check_mapping(view, mapping, _hardware(arch))


# ==================================================================================================
# Rank sizes and instances
# ==================================================================================================

def instances_for(cascade: CascadeLike, workload: Workload | None) -> tuple[int, str]:
    """How many copies of ``cascade`` one workload layer runs, and a note saying which.

    The workload's instance groups (batch B; query heads H = J x G) are multiplied in except where the
    cascade iterates the group itself (H) or its parts (J, G): a GQA cascade iterating J and G runs
    B copies, an MHA cascade B x H.
    """
    if workload is None:
        return 1, "1 instance"
    groups = getattr(workload, "instance_ranks", None)
    if groups is None:
        ranks = workload.rank_sizes()
        return int(ranks.get("B", 1)) * int(ranks.get("H", 1)), "B x H instances"
    iterated = set(getattr(cascade, "ranks", ()) or ()) | {r for t in cascade.tensors.values() for r in t.ranks} \
        if not isinstance(cascade, CascadeView) else set(cascade.sizes)
    total, parts = 1, []
    for group, members in groups().items():
        size = prod(members.values())
        if group in iterated:
            parts.append(f"{group} in the cascade")
            continue
        covered = prod(n for r, n in members.items() if r in iterated)
        left = [r for r in members if r not in iterated]
        count = size // covered
        total *= count
        inside = [r for r in members if r in iterated]
        if inside:
            parts.append(f"{group}={count}" + (f" over {' x '.join(left)}" if left else "")
                         + f" ({' x '.join(inside)} in the cascade)")
        else:
            parts.append(f"{group}={count}")
    return total, ", ".join(parts)


def _needed_roots(cascade: Any) -> list[str]:
    roots: list[str] = []
    for name in list(cascade.inputs) + list(cascade.outputs):
        for r in cascade.tensors[name].ranks:
            for root in sorted(cascade.root_ranks(r)):
                if root not in roots and root not in cascade.params:
                    roots.append(root)
    return roots


def cascade_view(cascade: CascadeLike, workload: Workload | None = None, sizes: TMapping[str, int] | None = None,
                 params: TMapping[str, int] | None = None) -> CascadeView:
    """The cascade at the workload's rank sizes (plus ``sizes``, and ``params`` fixed by a mapping).

    Every root rank of the cascade's inputs and outputs must be given by the workload or ``sizes``:
    a missing one is an error naming it (the spec's own ``ranks:`` defaults are toy sizes for
    ``einloom run``, never used to cost a workload).
    """
    if isinstance(cascade, CascadeView):
        return cascade
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        cascade = load_cascade(cascade)
    ranks = dict(workload.rank_sizes()) if workload is not None else {}
    ranks.update(sizes or {})
    if workload is not None or sizes:
        missing = [r for r in _needed_roots(cascade) if r not in ranks]
        if missing:
            given = ", ".join(sorted(ranks)) or "none"
            who = f"workload {getattr(workload, 'name', '')}".strip() if workload is not None else "--ranks"
            raise WorkloadError(
                f"cascade {cascade.name} needs rank{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
                f"which the {who} does not give (it gives {given})",
                location=Location(getattr(workload, "file", None), None, "workload" if workload is not None
                                  else "--ranks"),
                hint=f"add {', '.join(missing)} to the workload, or pass --ranks "
                + ",".join(f"{r}=N" for r in missing))
    ranks.update(params or {})
    inst, note = instances_for(cascade, workload)
    return _cached_view(cascade, tuple(sorted(ranks.items())), inst, note)


def _view_for(cascade: Any, mapping: Mapping | None, workload: Any, sizes: TMapping[str, int] | None
              ) -> CascadeView:
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        cascade = load_cascade(cascade)
    if isinstance(cascade, CascadeView):
        return cascade
    return cascade_view(cascade, workload, sizes, _mapping_params(mapping, cascade))


def _mapping_params(mapping: Mapping | None, cascade: Any) -> dict[str, int]:
    """Cascade parameters a mapping fixes: a partition tile (``M0``) equals its spatial factor."""
    params = getattr(cascade, "params", {}) or {}
    out = {}
    if mapping is not None and mapping.params:
        return {k: int(v) for k, v in mapping.params.items() if k in params}
    if mapping is not None:
        for rank, levels in mapping.tiling.items():
            if rank in params and set(levels) <= {"spatial", "PE", "GLB"}:
                out[rank] = prod(levels.values())
    return out


#: (id(cascade), sizes, instances) -> (view, cascade); the cascade is kept so its id stays unique.
_VIEW_CACHE: dict[tuple, tuple[CascadeView, Any]] = {}


def _cached_view(cascade: Any, key: tuple, instances: int = 1, note: str = "") -> CascadeView:
    k = (id(cascade), key, instances)
    hit = _VIEW_CACHE.get(k)
    if hit is None or hit[1] is not cascade:
        if len(_VIEW_CACHE) > 512:
            _VIEW_CACHE.clear()
        view = CascadeView.from_cascade(cascade, dict(key))
        view = view.with_instances(instances, note)
        hit = (view, cascade)
        _VIEW_CACHE[k] = hit
    return hit[0]


# ==================================================================================================
# Masks at the tile the hardware works on
# ==================================================================================================

def mask_chunks(rm: Resolved, einsum: str, cover) -> tuple[Any, Any] | None:
    """Coordinates per tile of ``einsum`` along each coordinate of its mask, or None if unmasked.

    ``cover(rank)`` is the extent of ``rank`` one step of the Einsum's array covers (its spatial
    factor if the rank is parallel for this Einsum, times its PE-level factor); scalars or NumPy arrays
    (one value per candidate mapping).  A coordinate made of a partitioned rank (``m1*M0 + m0``) is
    covered innermost first: the outer rank adds to the tile only when the inner one is covered whole,
    and a component the Einsum does not iterate is covered whole.
    """
    masked = rm.mask_scope.get(einsum)
    if masked is None:
        return None
    import numpy as np
    its = set(rm.view.einsum(einsum).iteration_ranks)
    sizes = rm.view.sizes
    chunks = []
    for coord in rm.masks[masked].coordinates:
        chunk = np.asarray(1.0)
        whole = np.asarray(True)
        for rank, _stride in coord.components:
            extent = float(sizes[rank])
            step = np.minimum(np.asarray(cover(rank), dtype=float), extent) if rank in its else np.asarray(extent)
            chunk = chunk * np.where(whole, step, 1.0)
            whole = whole & (step >= extent)
        chunks.append(chunk)
    return chunks[0], chunks[1]


def pe_cover(rm: Resolved, einsum: str, factor) -> Any:
    """``cover(rank)`` for :func:`mask_chunks` from a factor accessor ``factor(level, rank)``."""
    par, folded = set(rm.par_ranks[einsum]), set(rm.folded.get(einsum, ()))

    def cover(rank: str) -> Any:
        spatial = factor("spatial", rank) if rank in par or rank in folded else 1
        return spatial * factor("PE", rank)
    return cover


# ==================================================================================================
# Families of tilings and the residency stage (where each tensor lives): facts of the schedule,
# vectorized over candidate factors so the search can place whole families at once
# ==================================================================================================

def _last_reader(view: CascadeView, tensor: str, bound: TMapping[str, str]) -> str | None:
    readers = [c.name for c, carried in view.consumers(tensor) if not carried and c.name in bound]
    return readers[-1] if readers else None


def _is_dram(loc: Any) -> bool:
    return isinstance(loc, str) and loc == "dram"


def _arr(x: Any, n: int) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return np.broadcast_to(a, (n,)) if a.ndim == 0 else a


class Family:
    """N candidate mappings sharing ``rm``'s binding, spatial ranks and loop orders; factor arrays."""

    def __init__(self, rm: Resolved, overrides: TMapping[tuple[str, str], Any] | None, n: int | None):
        overrides = dict(overrides or {})
        if n is None:
            n = max([np.size(v) for v in overrides.values()] + [1])
        self.rm, self.n = rm, n
        self.view, self.hw, self.mapping = rm.view, rm.hw, rm.mapping
        self.sizes = rm.view.sizes
        self.bound = rm.mapping.binding
        self.infos = {e: rm.view.einsum(e) for e in self.bound}
        self.F = {k: _arr(v, n) for k, v in rm.factors.items()}
        for k, v in overrides.items():
            self.F[k] = _arr(v, n)
        self.one = np.ones(n)
        self.order = {lv: list(rm.order[lv]) for lv in ("DRAM", "GLB", "PE")}
        for (lv, r) in overrides:                  # a factor at a level whose order omits the rank: innermost
            if lv in self.order and r not in self.order[lv]:
                self.order[lv].append(r)
        self.nest = [(lv, r) for lv in ("DRAM", "GLB") for r in self.order[lv]]
        self.group_of = {e: gi for gi, g in enumerate(rm.groups) for e in g.einsums}
        self.arrays = self.hw.arrays

    def f(self, level: str, rank: str) -> np.ndarray:
        return self.F.get((level, rank), self.one)

    def sp(self, rank: str) -> np.ndarray:
        return self.f("spatial", rank)

    def pe(self, einsum: str, rank: str) -> np.ndarray:
        """PE-level loop factor of ``rank`` for ``einsum``: a spatial factor its array does not carry
        runs temporally in the PE (never free)."""
        f = self.f("PE", rank)
        return f * self.sp(rank) if rank in self.rm.folded.get(einsum, ()) else f

    def ranks_of(self, t: str) -> set[str]:
        it = self.view.iterative.get(t)
        return {r for r in self.view.tensor_ranks[t] if r != it}

    def zeros(self) -> np.ndarray:
        return np.zeros(self.n)


@dataclass
class Residency:
    location: dict[str, Any]                     # tensor -> "dram" | bool array (True = register file)
    footprint: dict[int, np.ndarray]             # group -> buffer values
    parts: dict[int, dict[str, np.ndarray]]      # group -> tensor -> buffer values


def _held_tile(fam: Family, ranks: set[str], held: set[str]) -> np.ndarray:
    """Tile kept from the outermost loop over a held rank inward."""
    t = fam.one.copy()
    for s in ranks:
        t = t * fam.sp(s) * fam.f("PE", s)
    if not held:
        return t
    active = np.zeros(fam.n, dtype=bool)
    for lv, r in fam.nest:
        fr = fam.f(lv, r)
        if r in held:
            active |= fr > 1
        if r in ranks:
            t = t * np.where(active, fr, 1.0)
    return t


def _glb_tile(fam: Family, ranks: set[str]) -> np.ndarray:
    t = fam.one.copy()
    for s in ranks:
        t = t * fam.f("GLB", s) * fam.sp(s) * fam.f("PE", s)
    return t


def _spatial_tile(fam: Family, ranks: set[str]) -> np.ndarray:
    """Values of a tensor spread over the array at once: what must arrive before the first cycle."""
    return prod((fam.sp(r) for r in ranks), start=fam.one)


def _step_tile(fam: Family, ranks: set[str]) -> np.ndarray:
    """Values of a tensor one array step holds (its spatial x PE-level tile): what is left to drain
    after the last step."""
    return _held_tile(fam, ranks, set())


def stage_residency(fam: Family) -> Residency:
    """Where each intermediate lives (DRAM, global buffer or a PE's register file) and the buffer
    values each group keeps for it."""
    view, rm, hw = fam.view, fam.rm, fam.hw
    location: dict[str, Any] = {t: "dram" for t in list(view.inputs) + list(view.views)}
    footprint = {gi: fam.zeros() for gi in range(len(rm.groups))}
    parts: dict[int, dict[str, np.ndarray]] = {gi: {} for gi in range(len(rm.groups))}
    for e, info in fam.infos.items():
        consumers = [(c, carried) for c, carried in view.consumers(e) if c.name in fam.bound]
        cross = any(fam.group_of[c.name] != fam.group_of[e] for c, _ in consumers)
        later = [c for c, carried in consumers if not carried and any(
            lvl > info.levels.get(root, 0) for root, lvl in c.levels.items())]
        if e in view.outputs or cross or (e in fam.mapping.spill and later):
            location[e] = "dram"
            continue
        held_r = held_roots(view, e)
        held = {r for r in fam.sizes if view.roots.get(r, frozenset({r})) & held_r}
        if view.iterative.get(e):
            held.add(view.iterative[e])
        rt = fam.ranks_of(e)
        tile = _held_tile(fam, rt, held)
        arrays = {fam.bound[e]} | {fam.bound[c.name] for c, _ in consumers}
        lanes = prod((fam.sp(r) for r in rm.par_ranks[e] if r in rt), start=fam.one)
        in_rf = tile / lanes <= hw.rf_entries[fam.bound[e]] if len(arrays) == 1 else np.zeros(fam.n, dtype=bool)
        location[e] = in_rf
        gi = fam.group_of[e]
        part = np.where(in_rf, 0.0, tile)
        # Interleaved across arrays (FuseMax: the 2D array on iteration i+1 of the interleave rank while
        # the 1D array finishes iteration i): a tensor passed between the arrays has two iterations'
        # tiles in the buffer at once, so it is double-buffered.
        if len(arrays) > 1 and rm.groups[gi].pipeline == "interleave":
            part = 2.0 * part
        # In place: an element-wise producer that is the last reader of a same-shaped on-chip operand
        # overwrites it (SN = exp(QK - GM) reuses QK's storage).
        for u in info.inputs:
            if u in parts[gi] and set(view.tensor_ranks.get(u, ())) == set(view.tensor_ranks[e]) and \
                    not info.reduced_ranks and _last_reader(view, u, fam.bound) == e:
                part = np.maximum(part - parts[gi][u], 0.0)
                break
        footprint[gi] = footprint[gi] + part
        parts[gi][e] = part
    return Residency(location, footprint, parts)


def dram_tiles(fam: Family, res: Residency) -> None:
    """Add to each group's buffer footprint the tile of every DRAM tensor it streams through the
    buffer: inputs (once per group), intermediates from another group or an earlier pass, and its
    DRAM results (bypassed tensors keep no tile)."""
    view, loc = fam.view, res.location
    bypass = {t for t in fam.mapping.bypass if _is_dram(loc.get(t))}

    def keep(gi: int, t: str) -> None:
        if t not in res.parts[gi]:
            tile = _glb_tile(fam, fam.ranks_of(t))
            res.parts[gi][t] = tile
            res.footprint[gi] = res.footprint[gi] + tile

    for gi, g in enumerate(fam.rm.groups):
        for e in g.einsums:
            info = fam.infos[e]
            for t in info.inputs:
                if not _is_dram(loc.get(t)) or t in bypass:
                    continue
                producer = fam.infos.get(t)
                if not (t in view.inputs or t in view.views):
                    same = producer is not None and fam.group_of[producer.name] == gi
                    if same and not any(lvl > producer.levels.get(root, 0) for root, lvl in info.levels.items()):
                        continue
                keep(gi, t)
            if _is_dram(loc.get(e)) and e not in bypass:
                keep(gi, e)


def crossing_tensors(fam: Family, res: Residency) -> list[str]:
    """Intermediates passed between fusion groups through DRAM (Unfused: every one), cascade order."""
    return [t for t in fam.view.names if t in fam.infos and _is_dram(res.location.get(t))
            and t not in fam.view.outputs and t not in fam.mapping.spill]


def keep_crossing(fam: Family, res: Residency) -> dict[str, np.ndarray]:
    """Which kernel-crossing intermediates stay in the global buffer: one stays when the whole tensor
    fits next to the largest group's working set (footprints after :func:`dram_tiles`, growing with
    each tensor kept, in cascade order); otherwise it goes through DRAM.  Updates ``res``."""
    capacity = fam.hw.glb_bytes / fam.hw.word_bytes
    kept: dict[str, np.ndarray] = {}
    for t in crossing_tensors(fam, res):
        whole = float(fam.view.tensor_elements(t))
        largest = np.max(np.stack(list(res.footprint.values())), axis=0) if res.footprint else fam.zeros()
        kept[t] = whole + largest <= capacity
        for gi in res.footprint:
            extra = np.where(kept[t], whole - res.parts[gi].get(t, 0.0), 0.0)
            res.footprint[gi] = res.footprint[gi] + extra
            res.parts[gi][t] = res.parts[gi].get(t, 0.0) + extra
    return kept


# ==================================================================================================
# The schedule
# ==================================================================================================

@dataclass(frozen=True)
class Loop:
    """One loop of a nest: ``extent`` iterations of ``rank`` at storage ``level`` (DRAM, GLB, spatial,
    PE); ``spatial_dim`` names the array dimension a spatial loop is spread over (``2d.rows``)."""

    rank: str
    extent: int
    level: str
    spatial_dim: str | None = None

    @property
    def kind(self) -> str:
        return "spatial" if self.spatial_dim else "temporal"


@dataclass(frozen=True)
class ScheduledEinsum:
    """An Einsum bound to an array.

    ``ops_per_point`` are op classes per point of the iteration space; ``cycles_per_point`` is the
    initiation interval of one PE; ``spatial`` lists ``(rank, array.dim, factor)``; ``temporal_in_pe``
    ranks whose spatial factor another array carries (here they loop inside the PE).  Under a mask,
    ``masked_by`` names the Einsum whose predicate decides which tiles run, ``tiles`` counts them at
    this Einsum's tile, ``executed_fraction`` is the share of the dense points computed, and
    ``valid_points`` (on the masked Einsum itself) the exact number of points the mask keeps.
    """

    name: str
    array: str
    iteration_ranks: tuple[str, ...]
    reduced_ranks: tuple[str, ...]
    spatial: tuple[tuple[str, str, int], ...]
    temporal_in_pe: tuple[str, ...]
    ops_per_point: TMapping[str, float]
    cycles_per_point: float
    points: int
    masked_by: str | None = None
    tiles: TileCounts | None = None
    executed_fraction: float = 1.0
    valid_points: int | None = None


@dataclass(frozen=True)
class ScheduledTensor:
    """A tensor bound to a storage level (``DRAM``, ``GLB`` or ``RF``), with the elements of the tile
    it keeps there (0 for DRAM tensors streamed past the buffer), the group that produces it and the
    groups that read it (its lifetime).  ``kept_between_groups``: a DRAM-level intermediate passed
    from one fusion group to the next that stays whole in the global buffer instead
    (:func:`keep_crossing`; it costs no DRAM traffic)."""

    name: str
    role: str
    level: str
    tile_elements: float
    producer_group: int | None
    reader_groups: tuple[int, ...]
    bypass: bool = False
    kept_between_groups: bool = False


@dataclass(frozen=True)
class ScheduleGroup:
    """A fusion group: Einsums in topological order, how the arrays overlap, and its loop nest."""

    index: int
    einsums: tuple[str, ...]
    pipeline: str
    interleave_rank: str | None
    loops: tuple[Loop, ...]


@dataclass(frozen=True)
class Schedule:
    """The lowered form every consumer reads (see the module docstring)."""

    cascade: str
    arch: str
    workload: str
    mapping: Mapping
    sizes: TMapping[str, int]
    instances: int
    instance_note: str
    groups: tuple[ScheduleGroup, ...]
    einsums: TMapping[str, ScheduledEinsum]
    tensors: TMapping[str, ScheduledTensor]
    resolved: Resolved = field(repr=False, compare=False)

    def loop_nest(self) -> str:
        """The schedule as an indented loop nest (Timeloop style), with its instances and masks."""
        text = self.resolved.loop_nest({"instances": self.instances})
        notes = []
        if self.instances > 1:
            notes.append(f"instances: {self.instances} ({self.instance_note})")
        groups: dict[tuple, list[str]] = {}
        for e in self.einsums.values():
            if e.tiles is not None:
                groups.setdefault((e.masked_by, e.tiles), []).append(e.name)
        for (masked, t), names in groups.items():
            valid = self.einsums[masked].valid_points
            notes.append(f"mask of {masked}: {t.tiles} tiles of {t.chunk[0]}x{t.chunk[1]}: {t.empty} empty "
                         f"(skipped), {t.partial} partial, {t.full} full; {t.work_fraction:.3f} of the dense work"
                         + (f"; {valid:,} valid points" if valid is not None else "")
                         + f"; skipped by {', '.join(names)}")
        return text + ("\n" + "\n".join(notes) if notes else "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``json.dumps``-able)."""
        def tiles(t: TileCounts | None) -> dict[str, Any] | None:
            return None if t is None else {"chunk": list(t.chunk), "tiles": t.tiles, "empty": t.empty,
                                            "full": t.full, "partial": t.partial, "work_fraction": t.work_fraction}
        return {
            "cascade": self.cascade, "arch": self.arch, "workload": self.workload, "mapping": self.mapping.to_dict(),
            "sizes": dict(self.sizes), "instances": self.instances, "instance_note": self.instance_note,
            "groups": [{"index": g.index, "einsums": list(g.einsums), "pipeline": g.pipeline,
                        "interleave_rank": g.interleave_rank,
                        "loops": [{"rank": lp.rank, "extent": lp.extent, "level": lp.level, "kind": lp.kind,
                                   "spatial_dim": lp.spatial_dim} for lp in g.loops]} for g in self.groups],
            "einsums": {n: {"array": e.array, "iteration_ranks": list(e.iteration_ranks),
                            "reduced_ranks": list(e.reduced_ranks),
                            "spatial": [list(s) for s in e.spatial], "temporal_in_pe": list(e.temporal_in_pe),
                            "ops_per_point": dict(e.ops_per_point), "cycles_per_point": e.cycles_per_point,
                            "points": e.points, "masked_by": e.masked_by, "tiles": tiles(e.tiles),
                            "executed_fraction": e.executed_fraction, "valid_points": e.valid_points}
                        for n, e in self.einsums.items()},
            "tensors": {n: {"role": t.role, "level": t.level, "tile_elements": t.tile_elements,
                            "producer_group": t.producer_group, "reader_groups": list(t.reader_groups),
                            "bypass": t.bypass} for n, t in self.tensors.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def lower(cascade: CascadeLike, mapping: Mapping, arch: Architecture | Hardware, workload: Workload | None = None, *,
          sizes: TMapping[str, int] | None = None) -> Schedule:
    """Lower (cascade, mapping, architecture, workload) into a :class:`Schedule` (errors at the door)."""
    rm = resolve(cascade, mapping, arch, workload, sizes)
    fam = Family(rm, None, 1)
    res = stage_residency(fam)
    location, tiles = {}, {}
    for t, loc in res.location.items():
        if _is_dram(loc):
            location[t] = "dram"
            tiles[t] = 0.0 if t in mapping.bypass else float(_glb_tile(fam, fam.ranks_of(t))[0])
        else:
            location[t] = "rf" if bool(loc[0]) else "glb"
            tiles[t] = float(max((p.get(t, np.zeros(1))[0] for p in res.parts.values()), default=0.0))
    dram_tiles(fam, res)
    kept = {t for t, k in keep_crossing(fam, res).items() if bool(k[0])}
    return schedule_of(rm, workload_name=getattr(workload, "name", "-"), location=location, tiles=tiles, kept=kept)


def schedule_of(rm: Resolved, *, workload_name: str = "-", location: TMapping[str, Any] | None = None,
                tiles: TMapping[str, float] | None = None, kept: frozenset[str] | set[str] = frozenset()) -> Schedule:
    """The :class:`Schedule` of a resolved mapping (``location``: tensor -> "dram" / "glb" / "rf" and
    ``tiles``: tensor -> tile elements, as the evaluator's residency stage found them)."""
    view, mapping, hw = rm.view, rm.mapping, rm.hw
    bound = mapping.binding
    factor = rm.factor
    einsums: dict[str, ScheduledEinsum] = {}
    for name in view.names:
        if name not in bound:
            continue
        info = view.einsum(name)
        array = bound[name]
        spatial = tuple((r, f"{array}.{dim}", factor("spatial", r))
                        for dim, ranks in mapping.spatial_for(name).items() for r in ranks
                        if r in rm.par_ranks[name])
        points = info.points(view.sizes)
        masked_by, counts, fraction, valid = rm.mask_scope.get(name), None, 1.0, None
        if masked_by is not None:
            chunk = mask_chunks(rm, name, pe_cover(rm, name, factor))
            counts = rm.masks[masked_by].tiles((int(chunk[0]), int(chunk[1])))
            fraction = counts.work_fraction
        if name in rm.masks and rm.masks[name].supported:
            valid = rm.masks[name].valid_points()
        einsums[name] = ScheduledEinsum(
            name, array, info.iteration_ranks, info.reduced_ranks, spatial, tuple(rm.folded.get(name, ())),
            {op: n / points for op, n in info.ops.items()}, rm.ii[name], points, masked_by, counts, fraction, valid)
    groups = []
    group_of: dict[str, int] = {}
    for gi, g in enumerate(rm.groups):
        its = {r for e in g.einsums for r in view.einsum(e).iteration_ranks}
        loops = []
        for level in ("DRAM", "GLB"):
            loops += [Loop(r, factor(level, r), level) for r in rm.order[level] if r in its and factor(level, r) > 1]
        for e in g.einsums:
            for r, dim, f in einsums[e].spatial:
                if f > 1 and not any(lp.rank == r and lp.spatial_dim == dim for lp in loops):
                    loops.append(Loop(r, f, "spatial", dim))
        loops += [Loop(r, factor("PE", r), "PE") for r in rm.order["PE"] if r in its and factor("PE", r) > 1]
        groups.append(ScheduleGroup(gi, g.einsums, g.pipeline, g.interleave_rank, tuple(loops)))
        for e in g.einsums:
            group_of[e] = gi
    tensors: dict[str, ScheduledTensor] = {}
    location = dict(location or {})
    for t in list(view.inputs) + list(view.views) + [n for n in view.names if n in bound]:
        if t in tensors:
            continue
        readers = tuple(sorted({group_of[c.name] for c, _ in view.consumers(t) if c.name in group_of}))
        role = "input" if t in view.inputs else "view" if t in view.views else \
            "output" if t in view.outputs else "intermediate"
        level = {"dram": "DRAM", "glb": "GLB", "rf": "RF"}.get(location.get(t, ""), "DRAM" if role != "intermediate"
                                                             else "GLB")
        tensors[t] = ScheduledTensor(t, role, level, float((tiles or {}).get(t, 0.0)), group_of.get(t), readers,
                                     t in mapping.bypass, t in kept)
    return Schedule(view.name, hw.name, workload_name, mapping, dict(view.sizes), view.instances,
                    view.instance_note, tuple(groups), einsums, tensors, rm)
