"""Baseline mappings: Unfused, FLAT and FuseMax attention, and the layer's linear layers.

Each builder returns an ordinary :class:`~einloom.mapper.mapping.Mapping` (printable, serializable,
evaluated like any other); where the baseline's own method chooses a tile size (FuseMax's query tile
``P1``, FLAT's fusion granularity), the builder makes that choice with the evaluator under the same
rule the baseline uses, never with a per-configuration constant.

The builders apply to every softmax-family cascade: they find the Einsums' roles from its structure
(:mod:`einloom.mapper.roles`: the score product, the row max, the exponent, the value product; the
key rank and its tile, the query rank, head and feature ranks) and never read a name.  Below, the
FuseMax names stand for those roles (``M0`` the key tile, ``M1`` the pass rank, ``P`` the query rank,
``E``/``F`` the feature ranks, ``QK`` the score product...).  Head ranks (GQA's ``J``/``G``, MLA's
``H``) are the outermost DRAM loops.  An Einsum that does not iterate its array's spatial ranks
(MLA's projections ``QL`` and ``AV``, a normalization over the query rank only) gets its own spatial
assignment, the one with the fewest steps (:mod:`einloom.mapper.spatial`).

* **FuseMax** (1-pass cascade, MICRO 2024 §V; artifact ``proposal.py``): the 2D array runs the
  Einsums iterating the key tile (QK, LM, SLN, SLD, SLNV) and every other tensor product, keys-in-a-
  tile ``M0`` on the rows and queries ``P`` on the columns; the 1D array runs the per-row bookkeeping
  (RM, PRM, SPD, SPNV, RD, RNV, AV) with ``P`` on its lanes; feature ranks are temporal in each PE;
  one fusion group whose M1 iterations interleave across the two arrays.  ``P`` is split
  ``P2 (DRAM) x P1 (GLB) x cols``; ``P1`` is the largest whose running state, queries and one K/V
  tile fit the buffer (the artifact's rule), so K and V are re-read ``P2`` times.
* **FLAT** (multi-pass cascade, ASPLOS 2023 as FuseMax evaluates it): the 2D array runs the tensor
  products (QK, AV) with the score product's contracted feature ``E`` (the value product's output
  feature ``F`` for AV) across the columns and the key rank ``M`` down the rows (``E/cols`` spatial
  use); the 1D array runs the rest (GM, SN, SD, A) with ``M`` on its lanes; one group interleaving
  operators across row tiles.  Granularity = the row tile ``P1`` (``P1 = P`` is head granularity);
  the intermediates over ``M`` held for a later pass (QK and SN) must be kept for ``P1`` rows, so at
  long sequences FLAT spills them to DRAM, streaming them past the buffer as the artifact's FLAT
  mappings do (``flat_validation.csv``: ``QK_loc``/``A_loc`` ``offchip``, i.e. Timeloop bypass).  The
  builder searches granularity x spill x buffer bypass of the inputs/output, as FLAT's own exhaustive
  search would: fastest first, then least energy.
* **Unfused** (multi-pass): the same binding as FLAT, full-width spatial mappings (``P`` on columns,
  ``M`` on rows), one kernel per tensor product and one per run of 1D Einsums between them (QK |
  softmax | AV) with the intermediates over ``M`` that cross kernels (QK and A) passed through DRAM
  (the artifact's ``unfused.py``); the softmax kernel keeps the held ones (SN) in the buffer, or
  spills them when they do not fit.
* **Linear layers** (Q, K, V, Z, FFN1, FFN2 as GEMMs ``(B*P) x K x N`` on the 2D array, weight tiles
  ``K x N`` spatial, an ``M`` tile of activations resident in the buffer): same latency for any
  architecture with the same array, energy from each architecture's costs (FuseMax §4.2).

:func:`default_mapping` is what ``einloom map`` uses without ``--mapping``: FuseMax for a 1-pass
softmax-family cascade, FLAT for a multi-pass one, else (or when the baseline does not fit) a short
budgeted search.
"""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from einloom.einsum.errors import ArchError, MappingError
from einloom.mapper.evaluate import (Evaluation, Hardware, _hardware, _view_for, check_mapping,
                                     evaluate_family, evaluate_view)
from einloom.mapper.mapping import FusionGroup, Mapping
from einloom.mapper.model import CascadeView, EinsumInfo, held_roots
from einloom.mapper.roles import Roles, find_roles, is_contraction
from einloom.mapper.spatial import best_assignment, runnable_arrays

BASELINES = ("fusemax", "flat", "unfused")


def _dims(arch: Any) -> tuple[int, int, int]:
    hw = _hardware(arch)
    return hw.dims["2d"]["rows"], hw.dims["2d"]["cols"], hw.dims["1d"]["lanes"]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] if n <= 4096 else \
        sorted({d for i in range(1, int(n ** 0.5) + 1) if n % i == 0 for d in (i, n // i)})


def _load(cascade: Any) -> Any:
    if isinstance(cascade, str):
        from einloom.einsum import load_cascade
        return load_cascade(cascade)
    return cascade


def _name(cascade: Any) -> str | None:
    return getattr(cascade, "name", None)


def _roles(view: CascadeView, cascade: Any, baseline: str, one_pass: bool) -> Roles:
    """The cascade's roles, or a MappingError saying why ``baseline`` does not apply."""
    roles = find_roles(view, cascade)
    if roles is None:
        raise MappingError(f"{baseline} maps softmax attention, and {view.name} is not of the softmax family "
                           "(no score product, row max over the keys, exponent and value product found)",
                           hint="map it with --search, or give a mapping file")
    if roles.one_pass != one_pass:
        kind = "a 1-pass cascade (the value product reduces a key tile M0 inside a pass over M1)" if one_pass \
            else "a multi-pass cascade (the value product reduces the unpartitioned sequence rank)"
        raise MappingError(f"{baseline} maps {kind}; {view.name} is not one",
                           hint=f"use {'flat or unfused' if one_pass else 'fusemax'}, or --search")
    return roles


def _iterated(view: CascadeView) -> list[str]:
    """Ranks some arithmetic Einsum iterates, in the view's order."""
    return [r for r in view.sizes if any(r in e.iteration_ranks for e in view.compute_einsums)]


def _bind(view: CascadeView, hw: Hardware, on_2d) -> dict[str, str]:
    """``on_2d(info)`` picks the 2D array; an Einsum the chosen array cannot run goes to the other."""
    binding = {}
    for e in view.compute_einsums:
        arrays = runnable_arrays(hw, e)
        want = "2d" if on_2d(e) else "1d"
        binding[e.name] = want if want in arrays or not arrays else arrays[0]
    return {e: a for array in hw.dims for e, a in binding.items() if a == array}   # grouped by array


def _overrides(view: CascadeView, hw: Hardware, binding: dict[str, str],
               spatial: dict[str, dict[str, tuple[str, ...]]],
               fixed: dict[str, dict[str, tuple[str, ...]]] | None = None, temporal: set[str] = frozenset()
               ) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per-Einsum assignments for Einsums that do not iterate every rank of their array's default
    (ranks in ``temporal``, which the baseline tiles temporally, are never made spatial)."""
    out = dict(fixed or {})
    for name, array in binding.items():
        if name in out:
            continue
        info = view.einsum(name)
        ranks = {r for rs in spatial.get(array, {}).values() for r in rs}
        if not ranks <= (set(info.iteration_ranks) - {info.iterative_rank}):
            out[name] = best_assignment(info, hw.dims[array], view.sizes, exclude=temporal)
    return out


def _spread(view: CascadeView, hw: Hardware, binding: dict[str, str], spatial: dict, overrides: dict,
            skip: set[str]) -> dict[str, dict[str, int]]:
    """Tiling of ranks first made spatial by an override (``min(|r|, width)`` wide, the rest in PE)."""
    tiling: dict[str, dict[str, int]] = {}
    for name, dims in overrides.items():
        for dim, ranks in dims.items():
            width = hw.dims[binding[name]][dim]
            for r in ranks:
                if r in skip:
                    continue
                s = min(view.sizes[r], width, tiling.get(r, {}).get("spatial", 1 << 62))
                tiling[r] = {"spatial": s, **({"PE": -(-view.sizes[r] // s)} if view.sizes[r] > s else {})}
    return tiling


# ------------------------------------------------------------------------------------------------
# FuseMax
# ------------------------------------------------------------------------------------------------

def fusemax_mapping(arch: Any, workload: Any, cascade: Any = "fusemax-1pass", *, p1: int | None = None
                    ) -> Mapping:
    """FuseMax's mapping of a 1-pass softmax-family cascade (see the module docstring)."""
    cascade = _load(cascade)
    hw = _hardware(arch)
    rows, cols, lanes = _dims(arch)
    roles = _roles(_view_for(cascade, None, workload, None), cascade, "FuseMax", one_pass=True)
    key, outer, q = roles.key_rank, roles.key_outer, roles.query_rank
    params = getattr(cascade, "params", {}) or {}
    root = dict(workload.rank_sizes()).get(roles.sequence_rank, rows)
    tile = {key: min(rows, root)} if key in params else {}
    view = _view_for(cascade, None, workload, tile)
    sizes = view.sizes
    p_tiles = -(-sizes[q] // cols)
    binding = _bind(view, hw, lambda e: key in e.iteration_ranks or is_contraction(e))
    spatial = {"2d": {"rows": (key,), "cols": (q,)}, "1d": {"lanes": (q,)}}
    heads = [r for r in _iterated(view) if r in roles.head_ranks and sizes[r] > 1]
    overrides = _overrides(view, hw, binding, spatial, temporal={outer, *heads})
    others = [r for r in _iterated(view) if r not in {key, outer, q, *heads} and r not in roles.key_ranks]
    spread = _spread(view, hw, binding, spatial, overrides, {key, q, *heads})

    def build(p1_: int) -> Mapping:
        tiling = {key: {"spatial": min(rows, sizes[key])},
                  q: {"DRAM": p_tiles // p1_, "GLB": p1_, "spatial": min(cols, lanes, sizes[q])},
                  **{r: {"DRAM": sizes[r]} for r in heads},
                  **{r: spread.get(r, {"PE": sizes[r]}) for r in others}}
        return Mapping(
            name="fusemax", cascade=_name(cascade), params=tile,
            description=f"1-pass; {key} on rows, {q} on columns/lanes, {outer} iterations interleaved across arrays",
            binding=binding, spatial=spatial, spatial_overrides=overrides, tiling=tiling,
            loop_order={"DRAM": (*heads, q, outer), "GLB": (q,), "PE": tuple(others)},
            groups=(FusionGroup(("all",), "interleave", outer),))

    if p1 is not None:
        return build(p1)
    candidates = [d for d in _divisors(p_tiles)]
    base = build(1)
    rm = check_mapping(_view_for(cascade, base, workload, None), base, hw)
    cand = np.array(candidates, dtype=float)
    res = evaluate_family(rm, {("DRAM", q): p_tiles / cand, ("GLB", q): cand})
    ok = np.nonzero(res["feasible"])[0]
    if len(ok) == 0:
        raise MappingError(f"FuseMax: no query tile {q}1 gives a feasible schedule on {rm.hw.name} (even {q}1 = 1 "
                           "overflows the buffer, or a reduction over the pass rank is read before it completes)",
                           hint="use a larger global buffer or a smaller array, or --search")
    return build(int(cand[ok[-1]]))


# ------------------------------------------------------------------------------------------------
# FLAT and Unfused (multi-pass cascades)
# ------------------------------------------------------------------------------------------------

def _multipass(arch: Any, workload: Any, cascade: Any, baseline: str):
    cascade = _load(cascade)
    hw = _hardware(arch)
    view = _view_for(cascade, None, workload, None)
    roles = _roles(view, cascade, baseline, one_pass=False)
    binding = _bind(view, hw, is_contraction)
    heads = [r for r in _iterated(view) if r in roles.head_ranks and view.sizes[r] > 1]
    return cascade, hw, view, roles, binding, heads


def _held_over_keys(view: CascadeView, roles: Roles) -> list[str]:
    """Intermediates over a key rank held on chip for a later pass (QK and SN in the 3-pass form)."""
    return [e.name for e in view.compute_einsums if e.name not in view.outputs
            and set(view.tensor_ranks[e.name]) & roles.key_ranks
            and roles.sequence_rank in held_roots(view, e.name)]


def _dram_io(cascade: Any) -> tuple[str, ...]:
    return tuple(cascade.inputs) + tuple(cascade.outputs)


def flat_mapping(arch: Any, workload: Any, cascade: Any = "softmax-3pass", *, p1: int | None = None,
                 spill: tuple[str, ...] | None = None, bypass: tuple[str, ...] | None = None) -> Mapping:
    """FLAT's fused mapping of a multi-pass softmax-family cascade (see the module docstring).

    Without ``p1``/``spill``/``bypass`` the builder searches them as FLAT's own exhaustive search
    would: every row granularity ``P1`` (a divisor of ``P``), spilling the held intermediates over the
    keys (QK and SN) or not, and staging the inputs and output in the buffer or streaming them past
    it; it keeps the fastest feasible candidates (within 0.1%) and of those the one with the least
    energy.
    """
    cascade, hw, view, roles, binding, heads = _multipass(arch, workload, cascade, "FLAT")
    rows, cols, lanes = _dims(arch)
    sizes = view.sizes
    key, q = roles.key_rank, roles.query_rank
    P, M = sizes[q], sizes[key]
    m0 = min(rows, M)
    score = view.einsum(roles.score_products[0])
    e_rank = next(r for r in score.reduced_ranks)
    fixed = {}
    for v in roles.value_products:
        f_rank = next((r for r in view.tensor_ranks[v] if r not in roles.key_ranks and r != q and r not in heads),
                      None)
        if f_rank is not None and binding[v] == "2d":
            fixed[v] = {"rows": (key,), "cols": (f_rank,)}
    spatial = {"2d": {"rows": (key,), "cols": (e_rank,)}, "1d": {"lanes": (key,)}}
    overrides = _overrides(view, hw, binding, spatial, fixed, temporal={q, *heads})
    spatial_ranks = {r for dims in overrides.values() for rs in dims.values() for r in rs} | {e_rank}
    others = [r for r in _iterated(view) if r not in {key, q, *heads} and r not in roles.key_ranks]
    spread = {r: {"spatial": min(sizes[r], cols)} for r in others if r in spatial_ranks}
    spread.update({r: t for r, t in _spread(view, hw, binding, spatial, overrides, {key, q, *heads}).items()
                   if r not in spread})
    held = tuple(_held_over_keys(view, roles))
    io = _dram_io(cascade)
    passes = max(e.levels.get(roles.sequence_rank, 1) for e in view.compute_einsums)

    def build(p1_: int, spill_: tuple[str, ...], bypass_: tuple[str, ...]) -> Mapping:
        gran = "head" if p1_ == P else f"row ({p1_} rows)"
        streamed = [t for t in bypass_ if t not in spill_]
        return Mapping(
            name="flat", cascade=_name(cascade),
            description=f"{passes}-pass fused at {gran} granularity, "
                        f"{e_rank} across the columns"
                        + (f", {'+'.join(spill_)} spilled" if spill_ else "")
                        + (f", {'+'.join(bypass_)} bypassing the buffer" if bypass_ else ""),
            binding=binding, spatial=spatial, spatial_overrides=overrides,
            tiling={key: {"DRAM": -(-M // m0), "spatial": m0}, q: {"DRAM": P // p1_, "PE": p1_},
                    **{r: {"DRAM": sizes[r]} for r in heads},
                    **{r: spread[r] for r in others if r in spread}},
            loop_order={"DRAM": (*heads, q, key), "PE": (q,)},
            groups=(FusionGroup(("all",), "interleave", q),), spill=spill_,
            bypass=tuple(spill_) + tuple(streamed))

    if p1 is not None:
        return build(p1, tuple(spill or ()), tuple(bypass or ()))
    cand = np.array([d for d in _divisors(P)], dtype=float)
    spills = (((), held) if held else ((),)) if spill is None else (tuple(spill),)
    bypasses = ((), io) if bypass is None else (tuple(bypass),)
    scored: list[tuple[float, float, int, tuple[str, ...], tuple[str, ...]]] = []
    for spill_ in spills:
        for bypass_ in bypasses:
            base = build(1, spill_, bypass_)
            rm = check_mapping(_view_for(cascade, base, workload, None), base, hw)
            res = evaluate_family(rm, {("DRAM", q): P / cand, ("PE", q): cand})
            for i in np.nonzero(res["feasible"])[0]:
                scored.append((float(res["latency_cycles"][i]), float(res["energy_pj"][i]), int(cand[i]),
                               spill_, bypass_))
    if not scored:
        raise MappingError(f"FLAT: no row granularity gives a feasible schedule on {hw.name} (each overflows the "
                           f"buffer, or a reduction split over the {key} tiles is read within its pass)",
                           hint="use a larger global buffer or a smaller array, or --search")
    fastest = min(s[0] for s in scored)
    _, _, p1_, spill_, bypass_ = min((s for s in scored if s[0] <= fastest * 1.001), key=lambda s: (s[1], -s[2]))
    return build(p1_, spill_, bypass_)


def _kernels(view: CascadeView, binding: dict[str, str]) -> tuple[FusionGroup, ...]:
    """One kernel per 2D Einsum, one sequential kernel per run of 1D Einsums between them."""
    groups: list[FusionGroup] = []
    run: list[str] = []
    for e in view.compute_einsums:
        if binding[e.name] == "2d":
            if run:
                groups.append(FusionGroup(tuple(run), "sequential"))
                run = []
            groups.append(FusionGroup((e.name,), "none"))
        else:
            run.append(e.name)
    if run:
        groups.append(FusionGroup(tuple(run), "sequential"))
    return tuple(groups)


def unfused_mapping(arch: Any, workload: Any, cascade: Any = "softmax-3pass", *,
                    spill: tuple[str, ...] | None = None, bypass: tuple[str, ...] | None = None) -> Mapping:
    """The unfused baseline of a multi-pass softmax-family cascade (see the module docstring).

    One kernel per tensor product and per run of 1D Einsums, as the FuseMax artifact's ``Unfused``
    runs them (QK | softmax | AV): the intermediates over the keys that cross kernels (QK, A) go
    through DRAM, the softmax kernel keeps its held ones (SN) in the buffer between its passes.
    Without ``spill``/``bypass`` the builder also tries spilling those (needed once 256 rows of SN
    outgrow the buffer) and streaming the inputs/output past the buffer, and keeps the fastest (then
    least-energy) feasible choice.
    """
    cascade, hw, view, roles, binding, heads = _multipass(arch, workload, cascade, "Unfused")
    rows, cols, lanes = _dims(arch)
    sizes = view.sizes
    key, q = roles.key_rank, roles.query_rank
    P, M = sizes[q], sizes[key]
    m0, p0 = min(rows, M), min(cols, P)
    spatial = {"2d": {"rows": (key,), "cols": (q,)}, "1d": {"lanes": (q,)}}
    overrides = _overrides(view, hw, binding, spatial, temporal=set(heads))
    others = [r for r in _iterated(view) if r not in {key, q, *heads} and r not in roles.key_ranks]
    spread = _spread(view, hw, binding, spatial, overrides, {key, q, *heads})
    groups = _kernels(view, binding)
    group_of = {e: i for i, g in enumerate(groups) for e in g.einsums}
    crossing = tuple(e.name for e in view.compute_einsums if e.name not in view.outputs
                     and set(view.tensor_ranks[e.name]) & roles.key_ranks
                     and any(group_of.get(c.name) != group_of[e.name] for c, _ in view.consumers(e.name)))
    held = tuple(t for t in _held_over_keys(view, roles) if t not in crossing)
    names = [g.einsums[0] if len(g.einsums) == 1 else "softmax" if g.einsums else "" for g in groups]

    def build(spill_: tuple[str, ...], bypass_: tuple[str, ...]) -> Mapping:
        extra = [t for t in spill_ if t not in crossing]
        return Mapping(
            name="unfused", cascade=_name(cascade),
            description=f"{len(groups)} kernels ({' | '.join(names)}), {' and '.join(crossing)} through DRAM"
                        + (f", {'+'.join(extra)} spilled" if extra else ""),
            binding=binding, spatial=spatial, spatial_overrides=overrides,
            tiling={key: {"DRAM": -(-M // m0), "spatial": m0}, q: {"DRAM": -(-P // p0), "spatial": p0},
                    **{r: {"DRAM": sizes[r]} for r in heads},
                    **{r: spread.get(r, {"PE": sizes[r]}) for r in others}},
            loop_order={"DRAM": (*heads, q, key), "PE": tuple(others)},
            groups=groups, spill=spill_, bypass=bypass_)

    if spill is not None or bypass is not None:
        spill_ = tuple(spill) if spill is not None else crossing
        return build(spill_, tuple(bypass) if bypass is not None else spill_)
    scored = []
    for spill_ in ((crossing, crossing + held) if held else (crossing,)):
        for streamed in ((), _dram_io(cascade)):
            mapping = build(spill_, spill_ + streamed)
            rm = check_mapping(_view_for(cascade, mapping, workload, None), mapping, hw)
            res = evaluate_family(rm)
            if res["feasible"][0]:
                scored.append((float(res["latency_cycles"][0]), float(res["energy_pj"][0]), mapping))
    if not scored:
        raise MappingError(f"Unfused: the softmax kernel does not fit the buffer of {hw.name}",
                           hint="use a larger global buffer or a smaller array")
    fastest = min(t[0] for t in scored)
    return min((t for t in scored if t[0] <= fastest * 1.001), key=lambda t: t[1])[2]


def baseline_cascade(name: str) -> str:
    """The library cascade a baseline was written for (used when no cascade is given)."""
    return "fusemax-1pass" if name == "fusemax" else "softmax-3pass"


def baseline_mapping(name: str, cascade: Any, arch: Any, workload: Any) -> Mapping:
    """Build baseline ``name`` (fusemax, flat, unfused) of ``cascade`` for ``arch`` and ``workload``."""
    key = name.lower()
    if key not in BASELINES:
        import difflib
        close = difflib.get_close_matches(key, BASELINES, n=1)
        raise MappingError(f"unknown baseline mapping '{name}'",
                           hint=(f"did you mean '{close[0]}'? " if close else "")
                           + f"baselines: {', '.join(BASELINES)}, or a mapping file")
    if cascade is None:
        cascade = baseline_cascade(key)
    return {"fusemax": fusemax_mapping, "flat": flat_mapping, "unfused": unfused_mapping}[key](
        arch, workload, cascade)


def default_baseline(cascade: Any, workload: Any) -> str | None:
    """The baseline that fits ``cascade``'s structure: fusemax (1-pass softmax), flat (multi-pass
    softmax), or None when the cascade is not of the softmax family."""
    cascade = _load(cascade)
    roles = find_roles(_view_for(cascade, None, workload, None), cascade)
    if roles is None:
        return None
    return "fusemax" if roles.one_pass else "flat"


def default_mapping(cascade: Any, arch: Any, workload: Any, *, budget_s: float = 10.0,
                    objective: str = "latency") -> tuple[Mapping, str]:
    """The mapping ``einloom map`` uses without ``--mapping``: the role-matched baseline, or (for a
    cascade outside the softmax family, or when the baseline does not fit) a search of at most
    ``budget_s`` seconds.  Returns the mapping and a one-line note saying how it was chosen."""
    cascade = _load(cascade)
    choice = default_baseline(cascade, workload)
    why = "not of the softmax family"
    if choice is not None:
        try:
            return baseline_mapping(choice, cascade, arch, workload), f"baseline {choice} (found by role)"
        except (MappingError, ArchError) as err:
            why = f"baseline {choice} does not apply ({err.message})"
    from einloom.mapper.search import search
    result = search(cascade, arch, workload, objective=objective, time_budget_s=budget_s)
    note = f"search ({why}; {budget_s:g} s budget" + (", best so far" if result.budget_exhausted else "") + ")"
    return result.best_mapping, note


# ------------------------------------------------------------------------------------------------
# Linear layers
# ------------------------------------------------------------------------------------------------

def gemm_view(name: str, m: int, k: int, n: int) -> CascadeView:
    """``Z[m, n] = X[m, k] * W[k, n]`` as a one-Einsum cascade view."""
    z = EinsumInfo("Z", ("M", "N", "K"), ("K",), ("X", "W"), {"mac": m * k * n})
    return CascadeView.from_parts(name, [z], {"M": m, "N": n, "K": k},
                                  {"X": ("M", "K"), "W": ("K", "N"), "Z": ("M", "N")}, ["X", "W"], ["Z"])


def linear_layer_mapping(arch: Any, m: int, k: int, n: int, m_tile: int = 1) -> Mapping:
    """Weight tile ``K x N`` spatial (rows x columns); ``m_tile`` activation rows resident per tile."""
    rows, cols, _ = _dims(arch)
    k0, n0 = min(rows, k), min(cols, n)
    return Mapping(
        name="linear", description="weight-stationary GEMM, activation rows streamed per weight tile",
        binding={"Z": "2d"}, spatial={"2d": {"rows": ("K",), "cols": ("N",)}},
        tiling={"K": {"GLB": -(-k // k0), "spatial": k0}, "N": {"DRAM": -(-n // n0), "spatial": n0},
                "M": {"DRAM": -(-m // m_tile), "PE": m_tile}},
        loop_order={"DRAM": ("M", "N"), "GLB": ("K",), "PE": ("M",)},
        groups=(FusionGroup(("all",), "none"),))


def evaluate_linear_layers(arch: Any, workload: Any) -> dict[str, Evaluation]:
    """Each linear layer with the activation tile (a power of two that fits) that is fastest within
    0.1%, then cheapest in energy."""
    hw = _hardware(arch)
    out = {}
    for name, (m, k, n) in workload.linear_layers().items():
        view = gemm_view(name, m, k, n)
        base = linear_layer_mapping(arch, m, k, n, 1)
        rm = check_mapping(view, base, hw)
        tiles = np.array([1 << i for i in range(0, max(m, 1).bit_length())], dtype=float)
        res = evaluate_family(rm, {("DRAM", "M"): np.ceil(m / tiles), ("PE", "M"): tiles})
        lat = np.where(res["feasible"], res["latency_cycles"], np.inf)
        # fastest within 0.1% (a larger first tile is exposed longer), then least energy
        near = lat <= lat.min() * 1.001
        i = int(np.argmin(np.where(near, res["energy_pj"], np.inf)))
        mapping = linear_layer_mapping(arch, m, k, n, int(tiles[i]))
        out[name] = evaluate_view(check_mapping(view, mapping, hw), instances=1,
                                  workload_name=getattr(workload, "name", "-"), cascade_name=f"linear-{name}")
    return out
