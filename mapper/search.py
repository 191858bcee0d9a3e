"""Mapping search driven by the cascade's structure: bindings x per-Einsum spatial assignments x loop
orders (up to reuse equivalence) x spills x tilings, scored in families.

The space, for a cascade on an architecture:

* the **free partition tiles**: the inner rank of a partition (``M0``) whose size is a free parameter
  of the cascade takes ``{rows/4, rows/2, rows}`` of the 2D array (each a separate cascade view); a
  tile defined from another parameter (Lightning's ``P0: M0``) is derived by the cascade, never drawn;
* a **binding** of every Einsum to an array that can run all its ops;
* a **spatial assignment per Einsum**: each Einsum spreads its own ranks over its array's dimensions
  (:mod:`einloom.mapper.spatial`: the assignments with the fewest temporal steps; a rank that is
  iterative in any Einsum, such as FuseMax's pass rank ``M1``, is never spread).  Per array, the
  assignments most Einsums share become the array's default and the others ``spatial_overrides``;
  a rank is only ever put on a dimension by an Einsum that iterates it (no accounting hole: a rank on
  an array dimension where no Einsum bound to that array iterates it is never generated);
* the **loop orders** of the DRAM and GLB levels over the ranks left temporal, *up to reuse
  equivalence*: the evaluator's traffic and residency depend only on the relative order of two ranks
  when some tensor that moves to or from DRAM (an input, a partition view, an output, an intermediate
  that may be spilled) carries exactly one of them (Timeloop's reuse rule), or when one is a rank a
  held intermediate is kept along and the other one of its ranks; one order per class is tried
  (GQA: the query heads G and the queries P are carried together by every such tensor, so their
  relative order is never varied);
* **spills**: none, or every intermediate that must be held for a later pass;
* a **tiling**: every split of each rank's temporal extent over (DRAM, GLB, PE); feature ranks
  (:func:`einloom.mapper.roles.feature_ranks`: contracted or value-side head-dimension ranks such as
  ``E``, ``F``, MLA's ``C``/``R``) are all in the PE or all in the GLB and keep their place innermost.

Candidates sharing everything but the tiling form a *family*, scored in one vectorized call of
:func:`einloom.mapper.evaluate.evaluate_family`.  Bounds prune before that: every binding gets, at
once with matrix products, a latency floor (each array's op cycles under each Einsum's best spatial
assignment, max over arrays) and an energy floor (its ops, plus one buffer write and read per element
of every intermediate that crosses from one array to the other); the ``keep_bindings`` best become
families, and a family whose floor cannot beat the incumbent is skipped (branch and bound).  Op
energy barely depends on the binding, so for the ``energy`` objective families are tried in order of
their EDP floor instead, and the search runs to ``max_families`` (or ``patience``/``time_budget_s``)
rather than stopping at the first floor above the incumbent.  Infeasible tilings (working set above
the buffer) score infinity.  Nothing here knows any particular accelerator or Einsum name.

``time_budget_s`` bounds the whole search, enumeration included (checked between families, so it is
overrun by at most one family's scoring and the final evaluation of the best); when it runs out the
result is the best found so far and says so (``budget_exhausted``), and if nothing feasible was found
by then the search raises a MappingError saying the budget was too short.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable

import numpy as np

from einloom.einsum.errors import ArchError, MappingError
from einloom.mapper.evaluate import (Evaluation, _hardware, _view_for, check_mapping,
                                     evaluate_family, evaluate_view)
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.mapper.model import CascadeView, held_roots
from einloom.mapper.roles import feature_ranks
from einloom.mapper.spatial import assignments, runnable_arrays

OBJECTIVES = ("latency", "energy", "edp")


@dataclass
class SearchResult:
    """The best mapping found and how the search went.

    ``evaluated`` counts raw candidates scored; ``distinct`` (with ``track_distinct``) the candidates
    with different schedules (binding, spatial assignment, spill, resolved factors and the loop order
    of the loops that remain, i.e. factor > 1).  ``best_at_s`` is when the final best was found.
    """

    best_mapping: Mapping
    best: Evaluation
    evaluated: int                 # candidate mappings fully scored
    screened: int                  # bindings ranked by the compute floor
    families: int
    seconds: float
    objective: str
    top: list[tuple[float, Mapping]] = field(default_factory=list)
    budget_exhausted: bool = False  # True: the time budget ran out, this is the best so far
    best_at_s: float = 0.0
    distinct: int | None = None
    accepted: int = 0              # families ``accept`` kept (0 without ``accept``)
    rejected: int = 0              # families ``accept`` skipped, unscored
    first_rejection: str | None = None

    @property
    def mapping(self) -> Mapping:
        """The best mapping (alias of ``best_mapping``)."""
        return self.best_mapping

    @property
    def mappings_per_s(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        return (f"search ({self.objective}): {self.evaluated} mappings evaluated in {self.families} families "
                f"({self.screened} bindings screened) in {self.seconds:.2f} s = {self.mappings_per_s:,.0f} mappings/s"
                + ("; time budget exhausted: best so far" if self.budget_exhausted else ""))


def _splits(extent: int, feature: bool) -> list[tuple[int, int, int]]:
    """(DRAM, GLB, PE) factor triples whose product covers ``extent``."""
    if extent <= 1:
        return [(1, 1, 1)]
    if feature:
        return [(1, 1, extent), (1, extent, 1)]
    divs = [d for d in range(1, extent + 1) if extent % d == 0] if extent <= 1 << 12 else \
        sorted({d for i in range(1, int(extent ** 0.5) + 1) if extent % i == 0 for d in (i, extent // i)})
    out = []
    for d in divs:
        rest = extent // d
        for g in divs:
            if g > rest:
                break
            if rest % g == 0:
                out.append((d, g, rest // g))
    return out


def _ii(hw, info, array: str, points: float) -> float:
    busy: dict[str, float] = {}
    for op, count in info.ops.items():
        cost = hw.op_cost(array, op)
        unit = max(cost.unit_actions, key=lambda u: cost.unit_actions[u]) if cost.unit_actions else op
        busy[unit] = busy.get(unit, 0.0) + count / points * cost.cycles
    return max(busy.values()) if busy else 0.0


def _energy_floor(hw, info, array: str) -> float:
    return sum(count * hw.op_cost(array, op).energy_pj for op, count in info.ops.items())


def _least_fraction(view: CascadeView, einsum) -> float:
    """The smallest share of ``einsum``'s points any mapping executes: the valid share of a mask over
    ranks it iterates (a mapping with one-point tiles skips everything else), else 1.  Keeps the
    floors lower bounds when masks skip tiles."""
    least = 1.0
    for mask in view.masks.values():
        if not mask.supported:
            continue
        coords = [c for c in mask.coordinates if c.components]
        if coords and all(any(r in einsum.iteration_ranks for r, _ in c.components) for c in coords):
            total = prod(c.padded for c in coords)
            least = min(least, (mask.valid_points() or 0) / total if total else 1.0)
    return least


def _cross_array_floor(hw, view: CascadeView, both: list, fixed: dict[str, str], masks: np.ndarray) -> np.ndarray:
    """Energy no mapping of each binding can avoid: an intermediate produced on one array and read on
    the other goes through the global buffer, at least one write and one read per element (one
    iterate for a running state).  One value per row of ``masks`` (1 = the Einsum of ``both`` on 2D)."""
    per_value = (hw.glb_read_pj_row + hw.glb_write_pj_row) / hw.values_per_row
    column = {e.name: j for j, e in enumerate(both)}

    def on_2d(name: str) -> np.ndarray | float:
        return masks[:, column[name]] if name in column else float(fixed[name] == "2d")

    total = np.zeros(len(masks))
    for e in view.compute_einsums:
        for c, _ in view.consumers(e.name):
            if c.is_view or c.name not in column and c.name not in fixed:
                continue
            total = total + np.abs(on_2d(e.name) - on_2d(c.name)) * view.tensor_elements(e.name) * per_value
    return total


# ---- the pieces of the space ------------------------------------------------------------------------

def free_partition_params(cascade: Any) -> list[str]:
    """Inner ranks of partitions whose size is a free parameter (a number in ``params``); a tile
    defined from another parameter (``P0: M0``) is derived by the cascade and not drawn."""
    from einloom.einsum.expr import Num
    params = getattr(cascade, "params", {}) or {}
    out = []
    for p in getattr(cascade, "partitions", ()) or ():
        if p.inner in params and isinstance(params[p.inner], Num) and p.inner not in out:
            out.append(p.inner)
    return out


def _spatial_plans(view: CascadeView, hw, binding: dict[str, str], best_sets: dict, variants: int,
                   pass_ranks: set[str]):
    """Up to ``variants`` per array of (array default, per-Einsum overrides), see the module docstring."""
    per_array = []
    for array in hw.dims:
        members = [e for e, a in binding.items() if a == array]
        votes: dict[tuple, float] = {}
        for e in members:
            weight, sets = best_sets[(e, array)]
            for asg in sets:
                key = tuple(sorted(asg.items()))
                votes[key] = votes.get(key, 0.0) + weight + 1e-9
        # ties: prefer assignments that spread no outer rank of a partition (the pass over the tiles)
        ranked = sorted(votes, key=lambda k: (-votes[k], sum(r in pass_ranks for _, rs in k for r in rs))
                        )[:variants] or [()]
        # the array default lists only the dimensions it uses
        options = []
        for key in ranked:
            full = dict(key)
            default = {d: rs for d, rs in full.items() if rs}
            overrides = {}
            for e in members:
                sets = best_sets[(e, array)][1]
                if full not in sets:
                    overrides[e] = max(sets, key=lambda a: len(set(a.items()) & set(full.items())))
            options.append((array, default, overrides))
        per_array.append(options)
    for combo in itertools.product(*per_array):
        spatial = {array: default for array, default, _ in combo}
        overrides = {e: o for _, _, ov in combo for e, o in ov.items()}
        yield spatial, overrides


def _spatial_factors(view: CascadeView, hw, binding: dict[str, str], spatial: dict, overrides: dict) -> dict:
    """rank -> spatial factor: ``min(|r|, width)`` over every dimension any Einsum puts it on."""
    sp: dict[str, int] = {}
    for e, array in binding.items():
        dims = overrides.get(e, spatial.get(array, {}))
        for dim, ranks in dims.items():
            for r in ranks:
                sp[r] = min(view.sizes[r], hw.dims[array][dim], sp.get(r, 1 << 62))
    return sp


def _order_pairs(view: CascadeView, ranks: list[str]) -> list[tuple[str, str]]:
    """Pairs of ``ranks`` whose relative loop order can change the evaluation (module docstring)."""
    pairs = set()
    # tensors whose traffic follows the DRAM loop order: inputs, partition views, outputs, and the
    # intermediates that may be spilled (held for a later pass); the rest stay on chip
    moved = set(view.inputs) | set(view.views) | set(view.outputs) | {
        e.name for e in view.compute_einsums if held_roots(view, e.name)}
    tensors = [set(r) - {view.iterative.get(t)} for t, r in view.tensor_ranks.items() if t in moved]
    for i, a in enumerate(ranks):
        for b in ranks[i + 1:]:
            if any((a in t) != (b in t) for t in tensors):
                pairs.add((a, b))
    for e in view.compute_einsums:
        roots = held_roots(view, e.name)
        if not roots and not e.iterative_rank:
            continue
        held = {r for r in ranks if view.roots.get(r, frozenset({r})) & roots} | {e.iterative_rank}
        own = set(view.tensor_ranks.get(e.name, ()))
        for h in held & set(ranks):
            for r in own & set(ranks):
                if r != h:
                    pairs.add(tuple(sorted((h, r), key=ranks.index)))
    return sorted(pairs, key=lambda p: (ranks.index(p[0]), ranks.index(p[1])))


def distinct_orders(view: CascadeView, ranks: list[str], limit: int = 50_000) -> list[tuple[str, ...]]:
    """One loop order of ``ranks`` per reuse-equivalence class (the given order first)."""
    if len(ranks) <= 1:
        return [tuple(ranks)]
    pairs = _order_pairs(view, ranks)
    seen = set()
    out = []
    for order in itertools.islice(itertools.permutations(ranks), limit):
        pos = {r: i for i, r in enumerate(order)}
        sig = tuple(pos[a] < pos[b] for a, b in pairs)
        if sig not in seen:
            seen.add(sig)
            out.append(order)
    return out


# ---- the search ------------------------------------------------------------------------------------

def search(cascade: Any, arch: Any, workload: Any, *, objective: str = "latency", max_families: int = 4000,
           family_cap: int = 20_000, keep_bindings: int = 3, partition_tiles: tuple[int, ...] | None = None,
           time_budget_s: float | None = None, patience: int | None = None, spatial_variants: int = 3,
           max_orders: int = 64, refine_plans: int = 3, order_patience: int | None = 8,
           track_distinct: bool = False, sizes: dict[str, int] | None = None,
           pin_binding: dict[str, str] | None = None,
           accept: Callable[[Mapping], str | None] | None = None) -> SearchResult:
    """Search mappings of ``cascade`` on ``arch`` for ``workload`` minimizing ``objective``.

    Families are tried best floor first (for ``energy``: best EDP floor first, see the module
    docstring) until the floor proves no further family can win, ``max_families`` have been scored,
    ``patience`` families in a row have improved the best score by less than 0.01%, or
    ``time_budget_s`` has passed (counted from the call, enumeration included).  ``spatial_variants``
    array defaults are tried per array and binding.  Phase 1 scores every plan (binding, spatial
    assignment, partition tiles) in one loop order; phase 2 tries up to ``max_orders`` reuse-distinct
    (DRAM, GLB) order pairs of the ``refine_plans`` plans that scored best (every plan while nothing
    fits), leaving a plan after ``order_patience`` orders in a row that did not improve it (None: try
    them all).  ``track_distinct`` counts distinct schedules (``SearchResult.distinct``; costs a little).
    ``sizes`` gives rank sizes beside (or instead of) the workload's.

    A consumer that builds only some mappings (the RTL generator) narrows the space: ``pin_binding``
    fixes the array of the Einsums it names (the others are searched), and ``accept`` is asked about
    every family's mapping (binding, spatial assignment, loop orders, spill; the tiling holds only the
    spatial factors) before it is scored: a reason string skips the family, ``None`` keeps it.
    ``SearchResult.accepted``/``rejected`` count the families it kept and skipped, ``first_rejection``
    is the reason given for the first one skipped.  The role-found baseline is only returned when
    ``accept`` keeps it too.

    Returns the best feasible mapping with its :class:`Evaluation` (the role-found baseline where it
    scores better: the search is never worse than ``einloom map``'s default); raises MappingError if
    nothing fits.
    """
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown objective '{objective}'", hint=f"one of {', '.join(OBJECTIVES)}")
    start = time.perf_counter()
    deadline = start + time_budget_s if time_budget_s is not None else float("inf")
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        cascade = load_cascade(cascade)
    hw = _hardware(arch)
    wname = getattr(workload, "name", "-") if workload is not None else "-"
    rows = hw.dims["2d"]["rows"]
    sequence_rank = getattr(cascade, "sequence_rank", None)
    free = free_partition_params(cascade)
    tiles = partition_tiles or tuple(sorted({max(rows // 4, 1), max(rows // 2, 1), rows}))
    param_choices = [dict(zip(free, combo)) for combo in itertools.product(tiles, repeat=len(free))] or [{}]

    screened = 0
    exhausted = False
    seen_schedules: set = set()

    def score(res: dict) -> np.ndarray:
        lat, en = res["latency_cycles"], res["energy_pj"]
        s = lat if objective == "latency" else en if objective == "energy" else lat * en
        return np.where(res["feasible"], s, np.inf)

    def late() -> bool:
        return time.perf_counter() > deadline

    # ---- enumerate (view, binding, spatial plan) with their floors ------------------------------
    plans = []
    for pchoice in param_choices:
        if late():
            exhausted = True
            break
        view = _view_for(cascade, None, workload, {**(sizes or {}), **pchoice})
        vsizes = view.sizes
        compute = view.compute_einsums
        choices = {e.name: runnable_arrays(hw, e) for e in compute}
        for name, array in (pin_binding or {}).items():
            if name in choices and array in choices[name]:
                choices[name] = [array]
        for e in compute:
            if not choices[e.name]:
                raise ArchError(f"no array of {hw.name} can run all ops of Einsum {e.name} "
                                f"({', '.join(e.ops)})", hint="add the missing unit to one of the arrays")
        # a rank that is iterative anywhere carries a dependence from one iterate to the next: no
        # Einsum spreads it (the running state would have to be rebuilt from the parallel partials)
        carried = frozenset(e.iterative_rank for e in compute if e.iterative_rank)
        pass_ranks = set(carried) | {p.outer for p in getattr(cascade, "partitions", ()) or ()}
        # per Einsum and array: cycles and op energy under its best spatial assignments
        best_sets: dict[tuple[str, str], tuple[float, list[dict]]] = {}
        cyc: dict[tuple[str, str], tuple[float, float]] = {}
        for e in compute:
            for a in choices[e.name]:
                ranked = assignments(e, hw.dims[a], vsizes, exclude=carried)
                fewest = ranked[0][0]
                ii = _ii(hw, e, a, float(e.points(vsizes)))
                least = _least_fraction(view, e)      # a mask may skip all but its valid points
                cyc[(e.name, a)] = (ii * fewest * least, _energy_floor(hw, e, a) * least)
                best_sets[(e.name, a)] = (ii * fewest, [asg for s, asg in ranked if s <= fewest])
        both = [e for e in compute if len(choices[e.name]) == 2]
        fixed = {e.name: choices[e.name][0] for e in compute if len(choices[e.name]) == 1}
        if len(both) > 16:          # fix the cheapest to their faster array: 2^16 bindings is plenty
            extra = sorted(both, key=lambda e: min(cyc[(e.name, a)][0] for a in choices[e.name]))[:len(both) - 16]
            for e in extra:
                fixed[e.name] = min(choices[e.name], key=lambda a: cyc[(e.name, a)][0])
            both = [e for e in both if e.name not in fixed]
        masks = np.array(list(itertools.product((0, 1), repeat=len(both))), dtype=float).reshape(
            2 ** len(both), len(both))
        cross_floor = _cross_array_floor(hw, view, both, fixed, masks)
        base2 = sum(cyc[(n, a)][0] for n, a in fixed.items() if a == "2d")
        base1 = sum(cyc[(n, a)][0] for n, a in fixed.items() if a == "1d")
        v2 = np.array([cyc[(e.name, "2d")][0] for e in both])
        v1 = np.array([cyc[(e.name, "1d")][0] for e in both])
        busy2 = base2 + masks @ v2 if len(both) else np.array([base2])
        busy1 = base1 + (1 - masks) @ v1 if len(both) else np.array([base1])
        lat_floor = np.maximum(busy2, busy1) * view.instances
        efix = sum(cyc[(n, a)][1] for n, a in fixed.items())
        e2 = np.array([cyc[(e.name, "2d")][1] for e in both])
        e1 = np.array([cyc[(e.name, "1d")][1] for e in both])
        en_floor = (efix + (masks @ e2 if len(both) else 0) + ((1 - masks) @ e1 if len(both) else 0)
                    + cross_floor) * view.instances
        floor = lat_floor if objective == "latency" else en_floor if objective == "energy" \
            else lat_floor * en_floor
        # Families are tried in floor order, except for energy: op energy hardly depends on the
        # binding, so energy floors nearly tie; the energy search tries bindings by EDP floor.
        order_key = floor if objective != "energy" else lat_floor * en_floor
        screened += len(floor)
        k = min(keep_bindings, len(floor))
        ties = np.nonzero(order_key <= np.partition(order_key, k - 1)[k - 1])[0]
        for i in ties[np.argsort(order_key[ties], kind="stable")][:k]:
            binding = dict(fixed)
            for j, e in enumerate(both):
                binding[e.name] = "2d" if masks[i, j] else "1d"
            binding = {e.name: binding[e.name] for e in compute}
            for spatial, overrides in _spatial_plans(view, hw, binding, best_sets, spatial_variants, pass_ranks):
                sp = _spatial_factors(view, hw, binding, spatial, overrides)
                plans.append((float(order_key[i]), float(floor[i]), pchoice, view, binding, spatial, overrides, sp))
    plans.sort(key=lambda p: p[0])

    # ---- families: phase 1 scores every plan in its first loop order, phase 2 tries the other
    # reuse-distinct orders of the ``refine_plans`` plans that did best ------------------------------
    state = {"families": 0, "evaluated": 0, "distinct": 0, "last_gain": 0, "best_score": np.inf,
             "best": None, "best_at": 0.0, "exhausted": False, "accepted": 0, "rejected": 0,
             "first_rejection": None}
    contexts: dict[int, dict] = {}

    def context(plan_id: int) -> dict:
        if plan_id in contexts:
            return contexts[plan_id]
        _key, _floor, pchoice, view, binding, spatial, overrides_sp, sp = plans[plan_id]
        compute = view.compute_einsums
        temporal = {r: -(-view.sizes[r] // sp.get(r, 1)) for r in view.sizes}
        iterated = [r for r in view.sizes if temporal[r] > 1 and any(r in e.iteration_ranks for e in compute)]
        features = set(feature_ranks(view, sequence_rank))
        seq = [r for r in iterated if r not in features]
        heads = [r for r in iterated if r in features]
        held = tuple(e.name for e in compute if e.name not in view.outputs and held_roots(view, e.name))
        split_options = {r: _splits(temporal[r], r in features) for r in seq + heads}
        idx = _tilings([len(split_options[r]) for r in seq + heads], family_cap)
        overrides: dict[tuple[str, str], np.ndarray] = {}
        for k, r in enumerate(seq + heads):
            table = np.array(split_options[r], dtype=float)
            for lv_i, lv in enumerate(("DRAM", "GLB", "PE")):
                overrides[(lv, r)] = table[idx[:, k], lv_i]
        orders = distinct_orders(view, seq)
        iterative = [e.iterative_rank for e in compute if e.iterative_rank in seq]
        ctx = dict(pchoice=pchoice, view=view, binding=binding, spatial=spatial, overrides_sp=overrides_sp,
                   sp=sp, seq=seq, heads=heads, n=len(idx), overrides=overrides,
                   spills=[()] + ([held] if held else []),
                   order_pairs=list(itertools.islice(itertools.product(orders, orders), max_orders)),
                   interleave=iterative[0] if iterative else (seq[-1] if seq else None), best=np.inf)
        contexts[plan_id] = ctx
        return ctx

    def stop() -> bool:
        if state["families"] >= max_families or \
                (patience is not None and state["families"] - state["last_gain"] > patience):
            return True
        if late():
            state["exhausted"] = True
            return True
        return False

    def run(plan_id: int, ctx: dict, dram_order: tuple, glb_order: tuple, spill: tuple) -> None:
        view, seq, heads = ctx["view"], ctx["seq"], ctx["heads"]
        mapping = Mapping(
            name=f"search-{objective}", cascade=getattr(cascade, "name", None), params=ctx["pchoice"],
            description=f"found by search ({objective})", binding=ctx["binding"], spatial=ctx["spatial"],
            spatial_overrides=ctx["overrides_sp"], tiling={r: {"spatial": int(s)} for r, s in ctx["sp"].items()},
            loop_order={"DRAM": dram_order, "GLB": tuple(glb_order) + tuple(heads), "PE": tuple(heads) + tuple(seq)},
            groups=(FusionGroup(("all",), "interleave", ctx["interleave"]),), spill=spill)
        try:
            rm = check_mapping(view, mapping, hw)
        except (MappingError, ArchError):
            return
        if accept is not None:
            reason = accept(mapping)
            if reason is not None:
                state["rejected"] += 1
                state["first_rejection"] = state["first_rejection"] or reason
                return
            state["accepted"] += 1
        overrides = ctx["overrides"]
        res = evaluate_family(rm, overrides, n=ctx["n"])
        state["families"] += 1
        state["evaluated"] += ctx["n"]
        if track_distinct:
            state["distinct"] += _new_schedules(seen_schedules, (plan_id, spill), dram_order, glb_order,
                                                overrides, seq)
        s = score(res)
        i = int(np.argmin(s))
        ctx["best"] = min(ctx["best"], float(s[i]))
        if s[i] < state["best_score"] * (1 - 1e-4):
            state["last_gain"] = state["families"]
        if s[i] < state["best_score"]:
            state["best_score"] = float(s[i])
            state["best"] = (rm, overrides, i)
            state["best_at"] = time.perf_counter() - start

    done = False
    for plan_id, plan in enumerate(plans):                       # phase 1
        if plan[1] >= state["best_score"]:
            if objective != "energy":
                break                    # plans are in floor order: no later one can win either
            continue
        ctx = context(plan_id)
        for spill in ctx["spills"]:
            if stop():
                done = True
                break
            run(plan_id, ctx, *ctx["order_pairs"][0], spill)
        if done:
            break
    if not done:                                                 # phase 2
        ranked = sorted(contexts, key=lambda pid: contexts[pid]["best"])
        found = np.isfinite(state["best_score"])
        ranked = ranked[:refine_plans] if found else ranked     # nothing fits yet: try every plan
        for plan_id in ranked:
            ctx = contexts[plan_id]
            since, best_here = 0, ctx["best"]
            for pair in ctx["order_pairs"][1:]:
                if objective != "energy" and plans[plan_id][1] >= state["best_score"]:
                    break                # the plan's floor is reached: no order of it can do better
                if order_patience is not None and since >= order_patience:
                    break
                since = 0 if ctx["best"] < best_here * (1 - 1e-4) else since + 1
                best_here = min(best_here, ctx["best"])
                for spill in ctx["spills"]:
                    if stop():
                        done = True
                        break
                    run(plan_id, ctx, *pair, spill)
                if done:
                    break
            if done:
                break
    families, evaluated, best = state["families"], state["evaluated"], state["best"]
    exhausted = exhausted or state["exhausted"]
    best_at, distinct = state["best_at"], state["distinct"]
    if best is None:
        name = getattr(cascade, "name", cascade)
        if exhausted:
            raise MappingError(f"no feasible mapping of {name} on {hw.name} for {wname} found within the "
                               f"{time_budget_s:g} s budget ({families} families scored)",
                               hint="raise the budget (--budget), or use a larger global buffer")
        raise MappingError(f"no mapping of {name} fits {hw.name} for {wname}", hint="try a larger global buffer")
    rm, overrides, i = best
    tiling: dict[str, dict[str, int]] = {}
    for (lv, r), f in rm.factors.items():
        tiling.setdefault(r, {})[lv] = int(f)
    for (lv, r), arr in overrides.items():
        tiling.setdefault(r, {})[lv] = int(arr[i])
    tiling = {r: {lv: f for lv, f in lvs.items() if f > 1 or lv == "spatial"} for r, lvs in tiling.items()}
    best_mapping = rm.mapping.replace(tiling=tiling)
    rm_best = check_mapping(rm.view, best_mapping, hw)
    evaluation = evaluate_view(rm_best, workload_name=wname,
                               cascade_name=getattr(cascade, "name", None))
    seeded = _role_baseline(cascade, arch, workload) if accept is None and pin_binding is None and not sizes \
        else None
    if seeded is not None and _score(seeded[1], objective) < _score(evaluation, objective):
        best_mapping, evaluation = seeded
    return SearchResult(best_mapping, evaluation, evaluated, screened, families, time.perf_counter() - start,
                        objective, budget_exhausted=exhausted, best_at_s=best_at,
                        distinct=distinct if track_distinct else None, accepted=state["accepted"],
                        rejected=state["rejected"], first_rejection=state["first_rejection"])


def _score(evaluation: Any, objective: str) -> float:
    return {"latency": evaluation.latency_s, "energy": evaluation.energy_pj,
            "edp": evaluation.latency_s * evaluation.energy_pj}[objective]


def _role_baseline(cascade: Any, arch: Any, workload: Any) -> tuple[Mapping, Any] | None:
    """The role-found baseline (FuseMax for a 1-pass softmax, FLAT for a multi-pass one) and its
    evaluation, the search's floor: the search never returns a mapping worse than the one ``einloom
    map`` would use without it (None: no baseline applies)."""
    from einloom.mapper.baselines import baseline_mapping, default_baseline
    from einloom.mapper.evaluate import evaluate
    try:
        choice = default_baseline(cascade, workload)
        if choice is None:
            return None
        mapping = baseline_mapping(choice, cascade, arch, workload)
        return mapping, evaluate(cascade, mapping, arch, workload)
    except (MappingError, ArchError):
        return None


def _tilings(radices: list[int], cap: int) -> np.ndarray:
    """Rows of split indices, one column per rank: every combination, or ``cap`` evenly spaced ones in
    the mixed-radix order of ``itertools.product`` (never materializing the whole product)."""
    total = prod(radices)
    if total <= cap:
        flat = np.arange(total, dtype=np.int64)
    else:
        flat = np.array([i * total // cap for i in range(cap)], dtype=object)
    idx = np.zeros((len(flat), len(radices)), dtype=np.int64)
    rest = flat
    for k in range(len(radices) - 1, -1, -1):
        idx[:, k] = (rest % radices[k]).astype(np.int64)
        rest = rest // radices[k]
    return idx


def _new_schedules(seen: set, static: tuple, dram_order: tuple, glb_order: tuple,
                   overrides: dict[tuple[str, str], np.ndarray], seq: list[str]) -> int:
    """How many of a family's candidates are schedules not seen before.  Candidates of one plan share
    their tilings across families, so a candidate repeats one of another family exactly when the loops
    left (factor > 1) come in the same order at each level."""
    n = len(next(iter(overrides.values()))) if overrides else 1
    if not seq:
        key = (static, (), ())
        if key in seen:
            return 0
        seen.add(key)
        return n
    active = np.stack([overrides[(lv, r)] > 1 for lv in ("DRAM", "GLB") for r in seq], axis=1) \
        if overrides else np.zeros((1, 0), dtype=bool)
    patterns, counts = np.unique(active, axis=0, return_counts=True)
    new = 0
    k = len(seq)
    for pattern, count in zip(patterns, counts):
        dram_on = {r for j, r in enumerate(seq) if pattern[j]}
        glb_on = {r for j, r in enumerate(seq) if pattern[k + j]}
        key = (static, tuple(r for r in dram_order if r in dram_on), tuple(r for r in glb_order if r in glb_on),
               tuple(pattern))
        if key not in seen:
            seen.add(key)
            new += int(count)
    return new
