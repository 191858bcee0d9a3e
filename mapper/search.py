"""Mapping search: bindings x spatial assignments x loop orders x spills x tilings, scored in families.

The space, for a cascade on an architecture:

* the partition tile of a partitioned rank (``M0``) in ``{rows/4, rows/2, rows}`` of the 2D array
  (each a separate cascade view);
* a **spatial assignment**: one rank (or none) per 2D dimension, one rank per 1D lane dimension,
  each spread ``min(|rank|, width)`` wide;
* a **binding** of every Einsum to an array that can run all its ops;
* the **loop orders** of the DRAM and GLB levels over the ranks left temporal;
* **spills**: none, or every intermediate that must be held for a later pass;
* a **tiling**: every split of each rank's temporal extent over (DRAM, GLB, PE) (head-dimension ranks:
  all in the PE or all in the GLB).

Candidates sharing everything but the tiling form a *family*, scored in one vectorized call of
:func:`einloom.mapper.evaluate.evaluate_family`.  Bounds prune before that: every binding of a
spatial assignment gets, at once with matrix products, a latency floor (each array's op cycles /
parallelism, max over arrays) and an energy floor (its ops, plus one buffer write and read per element
of every intermediate that crosses from one array to the other); the ``keep_bindings`` best of each
assignment become families, and a family whose floor cannot beat the incumbent is skipped (branch
and bound).  Op energy barely depends on the binding, so for the ``energy`` objective families are
tried in order of their EDP floor instead, and the search runs to ``max_families`` (or
``patience``/``time_budget_s``) rather than stopping at the first floor above the incumbent.
Infeasible tilings (working set above the buffer) score infinity.  Nothing here knows any
particular accelerator: FuseMax's mapping is one point of the space.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from math import prod
from typing import Any

import numpy as np

from einloom.einsum.errors import ArchError, MappingError
from einloom.mapper.evaluate import (Evaluation, Resolved, _hardware, _instances, _view_for, check_mapping,
                                     evaluate_family, evaluate_view)
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.mapper.model import CascadeView, held_roots

OBJECTIVES = ("latency", "energy", "edp")
HEAD_RANKS = ("E", "F")


@dataclass
class SearchResult:
    """The best mapping found and how the search went."""

    best_mapping: Mapping
    best: Evaluation
    evaluated: int                 # candidate mappings fully scored
    screened: int                  # bindings ranked by the compute floor
    families: int
    seconds: float
    objective: str
    top: list[tuple[float, Mapping]] = field(default_factory=list)

    @property
    def mapping(self) -> Mapping:
        """The best mapping (alias of ``best_mapping``)."""
        return self.best_mapping

    @property
    def mappings_per_s(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        return (f"search ({self.objective}): {self.evaluated} mappings evaluated in {self.families} families "
                f"({self.screened} bindings screened) in {self.seconds:.2f} s = {self.mappings_per_s:,.0f} mappings/s")


def _splits(extent: int, head: bool) -> list[tuple[int, int, int]]:
    """(DRAM, GLB, PE) factor triples whose product covers ``extent``."""
    if extent <= 1:
        return [(1, 1, 1)]
    if head:
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


def _runnable(hw, info) -> list[str]:
    arrays = []
    for array in ("2d", "1d"):
        try:
            for op in info.ops:
                hw.op_cost(array, op)
        except ArchError:
            continue
        arrays.append(array)
    return arrays


def _ii(hw, info, array: str, points: float) -> float:
    busy: dict[str, float] = {}
    for op, count in info.ops.items():
        cost = hw.op_cost(array, op)
        unit = max(cost.unit_actions, key=lambda u: cost.unit_actions[u]) if cost.unit_actions else op
        busy[unit] = busy.get(unit, 0.0) + count / points * cost.cycles
    return max(busy.values()) if busy else 0.0


def _energy_floor(hw, info, array: str) -> float:
    return sum(count * hw.op_cost(array, op).energy_pj for op, count in info.ops.items())


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


def search(cascade: Any, arch: Any, workload: Any, *, objective: str = "latency", max_families: int = 4000,
           family_cap: int = 20_000, keep_bindings: int = 3, partition_tiles: tuple[int, ...] | None = None,
           time_budget_s: float | None = None, patience: int | None = None) -> SearchResult:
    """Search mappings of ``cascade`` on ``arch`` for ``workload`` minimizing ``objective``.

    Families are tried best floor first (for ``energy``: best EDP floor first, see below) until the
    floor proves no further family can win, ``max_families`` have been scored, ``patience`` families
    in a row have improved the best score by less than 0.01%, or ``time_budget_s`` has passed.

    Returns the best feasible mapping with its :class:`Evaluation`; raises MappingError if nothing fits.
    """
    if objective not in OBJECTIVES:
        raise MappingError(f"unknown objective '{objective}'", hint=f"one of {', '.join(OBJECTIVES)}")
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        cascade = load_cascade(cascade)
    hw = _hardware(arch)
    wname = _instances(workload)[1]
    rows, cols, lanes = hw.dims["2d"]["rows"], hw.dims["2d"]["cols"], hw.dims["1d"]["lanes"]
    params = getattr(cascade, "params", {}) or {}
    partition_params = [p.inner for p in getattr(cascade, "partitions", ()) if p.inner in params]
    tiles = partition_tiles or tuple(sorted({max(rows // 4, 1), max(rows // 2, 1), rows}))
    param_choices = [dict(zip(partition_params, combo))
                     for combo in itertools.product(tiles, repeat=len(partition_params))] or [{}]

    start = time.perf_counter()
    evaluated = screened = families = last_gain = 0
    best_score = np.inf
    best: tuple[Resolved, dict, int] | None = None
    top: list[tuple[float, Mapping]] = []

    def score(res: dict) -> np.ndarray:
        lat, en = res["latency_cycles"], res["energy_pj"]
        s = lat if objective == "latency" else en if objective == "energy" else lat * en
        return np.where(res["feasible"], s, np.inf)

    # ---- enumerate (view, spatial, binding) with their floors -----------------------------------
    plans = []
    for pchoice in param_choices:
        view = _view_for(cascade, None, workload, pchoice)
        compute = view.compute_einsums
        ranks = [r for r in view.sizes if view.sizes[r] > 1 and any(r in e.iteration_ranks for e in compute)]
        choices = {e.name: _runnable(hw, e) for e in compute}
        for e in compute:
            if not choices[e.name]:
                raise ArchError(f"no array of {hw.name} can run all ops of Einsum {e.name} "
                                f"({', '.join(e.ops)})", hint="add the missing unit to one of the arrays")
        both = [e for e in compute if len(choices[e.name]) == 2]
        fixed = {e.name: choices[e.name][0] for e in compute if len(choices[e.name]) == 1}
        masks = np.array(list(itertools.product((0, 1), repeat=len(both))), dtype=float).reshape(-1, len(both))
        # per point cycles and total op energy of each Einsum on each array it can run on (independent
        # of the spatial assignment, so computed once per view)
        unit_cost = {(e.name, a): (_ii(hw, e, a, float(e.points(view.sizes))), _energy_floor(hw, e, a))
                     for e in compute for a in choices[e.name]}
        cross_floor = _cross_array_floor(hw, view, both, fixed, masks)
        for r2, c2, l1 in itertools.product([None] + ranks, [None] + ranks, ranks):
            if r2 is not None and r2 == c2:
                continue
            sp = {}
            for r, w in ((r2, rows), (c2, cols), (l1, lanes)):
                if r is not None:
                    sp[r] = min(view.sizes[r], w, sp.get(r, 1 << 62))
            spatial = {"2d": {d: (r,) for d, r in (("rows", r2), ("cols", c2)) if r is not None},
                       "1d": {"lanes": (l1,)}}
            cyc = {}
            for e in compute:
                for array in choices[e.name]:
                    par = [r for d in spatial[array].values() for r in d
                           if r in e.iteration_ranks and r != e.iterative_rank]
                    steps = prod(-(-view.sizes[r] // sp[r]) if r in par else view.sizes[r]
                                 for r in e.iteration_ranks)
                    ii, energy = unit_cost[(e.name, array)]
                    cyc[(e.name, array)] = (ii * steps, energy)
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
            # The floor bounds the objective (a family whose floor cannot beat the incumbent is skipped).
            # The order in which families are tried is a separate question: op energy hardly depends on
            # the binding, so energy floors nearly tie and would rank bindings arbitrarily; the energy
            # search therefore tries bindings in order of their EDP floor (fast and frugal first).
            order_key = floor if objective != "energy" else lat_floor * en_floor
            screened += len(floor)
            k = min(keep_bindings, len(floor))
            # the k smallest keys, ties in index order (what a stable argsort would take), in O(n)
            ties = np.nonzero(order_key <= np.partition(order_key, k - 1)[k - 1])[0]
            for i in ties[np.argsort(order_key[ties], kind="stable")][:k]:
                binding = dict(fixed)
                for j, e in enumerate(both):
                    binding[e.name] = "2d" if masks[i, j] else "1d"
                plans.append((float(order_key[i]), float(floor[i]), pchoice, view, spatial, sp, binding))
    plans.sort(key=lambda p: p[0])

    # ---- families -------------------------------------------------------------------------------
    for _key, floor, pchoice, view, spatial, sp, binding in plans:
        if families >= max_families or (patience is not None and families - last_gain > patience):
            break
        if floor >= best_score:
            if objective != "energy":
                break                    # plans are in floor order: no later one can win either
            continue
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            break
        temporal = {r: -(-view.sizes[r] // sp.get(r, 1)) for r in view.sizes}
        seq = [r for r in view.sizes if temporal[r] > 1 and r not in HEAD_RANKS
               and any(r in e.iteration_ranks for e in view.compute_einsums)]
        heads = [r for r in view.sizes if temporal[r] > 1 and r in HEAD_RANKS]
        held = tuple(e.name for e in view.compute_einsums if e.name not in view.outputs and held_roots(view, e.name))
        spills = [()] + ([held] if held else [])
        split_options = {r: _splits(temporal[r], r in HEAD_RANKS) for r in seq + heads}
        combos = list(itertools.product(*[range(len(split_options[r])) for r in seq + heads]))
        if len(combos) > family_cap:
            step = len(combos) / family_cap
            combos = [combos[int(i * step)] for i in range(family_cap)]
        idx = np.array(combos, dtype=int).reshape(len(combos), len(seq + heads))
        overrides: dict[tuple[str, str], np.ndarray] = {}
        for k, r in enumerate(seq + heads):
            table = np.array(split_options[r], dtype=float)
            for lv_i, lv in enumerate(("DRAM", "GLB", "PE")):
                overrides[(lv, r)] = table[idx[:, k], lv_i]
        for dram_order in itertools.permutations(seq):
            for glb_order in (itertools.permutations(seq) if len(seq) > 1 else [tuple(seq)]):
                for spill in spills:
                    if time_budget_s is not None and best is not None and \
                            time.perf_counter() - start > time_budget_s:
                        break
                    tiling = {r: {"spatial": int(s)} for r, s in sp.items()}
                    mapping = Mapping(
                        name=f"search-{objective}", cascade=getattr(cascade, "name", None), params=pchoice,
                        description=f"found by search ({objective})", binding=binding, spatial=spatial,
                        tiling=tiling, loop_order={"DRAM": dram_order, "GLB": tuple(glb_order) + tuple(heads),
                                                   "PE": tuple(heads) + tuple(seq)},
                        groups=(FusionGroup(("all",), "interleave", seq[-1] if seq else None),), spill=spill)
                    try:
                        rm = check_mapping(view, mapping, hw)
                    except (MappingError, ArchError):
                        continue
                    res = evaluate_family(rm, overrides, n=len(combos))
                    families += 1
                    evaluated += len(combos)
                    s = score(res)
                    i = int(np.argmin(s))
                    if s[i] < best_score * (1 - 1e-4):
                        last_gain = families
                    if s[i] < best_score:
                        best_score = float(s[i])
                        best = (rm, overrides, i)
    if best is None:
        raise MappingError(f"no mapping of {getattr(cascade, 'name', cascade)} fits {hw.name} for {wname}",
                           hint="try a larger global buffer")
    rm, overrides, i = best
    tiling: dict[str, dict[str, int]] = {}
    for (lv, r), f in rm.factors.items():
        tiling.setdefault(r, {})[lv] = int(f)
    for (lv, r), arr in overrides.items():
        tiling.setdefault(r, {})[lv] = int(arr[i])
    tiling = {r: {lv: f for lv, f in lvs.items() if f > 1 or lv == "spatial"} for r, lvs in tiling.items()}
    params_used = {k: int(v) for k, v in rm.view.sizes.items() if k in params}
    best_mapping = rm.mapping.replace(tiling=tiling, params=params_used)
    rm_best = check_mapping(rm.view, best_mapping, hw)
    evaluation = evaluate_view(rm_best, workload_name=wname,
                               cascade_name=getattr(cascade, "name", None))
    return SearchResult(best_mapping, evaluation, evaluated, screened, families, time.perf_counter() - start,
                        objective)
