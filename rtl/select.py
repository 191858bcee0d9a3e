"""``--search`` for the RTL: the mapper's search, narrowed to the mappings a core can build, ranked by
the core's cycles.

:func:`choose_mapping` runs :func:`einloom.mapper.search.search` twice on the architecture and rank
sizes: once free (the mapper's own best, whatever the RTL can build), then with the core's binding
pinned and every family's mapping put to the core's check (``check``: raises :class:`MappingError`
with the field and reason when the core cannot build the lowered schedule).  The buildable
candidates (each family the check kept, in its canonical tiling; the narrowed search's best; the
core's own mapping) are ranked by the cycles the core would take on each lowered schedule
(``core_cycles``: the simulator configured as the core, ``sim/rtl_core``, = RTL), ties broken by the
mapper's model; a family's temporal splits do not change the core (its counters flatten them), so
its canonical tiling stands for it.  :class:`Choice` says how many mappings were searched, how many
families were buildable and skipped, how many distinct cores the buildable ones give, the chosen
one's core and mapper-model cycles, and the free best's mapper-model cycles with the reason the core
does not build it: model against model, labelled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from einloom.base.errors import MappingError


@dataclass
class Choice:
    """The mapping ``--search`` chose for a core, and what the search saw."""

    mapping: Any
    schedule: Any
    objective: str
    searched: int                     # mappings scored by both searches
    families: int                     # families scored by both searches
    buildable: int                    # families of the narrowed search the core's check kept (scored), + the core's own
    unbuildable: int                  # families of the narrowed search the check refused (unscored)
    chosen_cycles: float
    free_cycles: float
    free_mapping: Any
    free_reason: str | None           # None: the free search's best is the chosen one
    first_rejection: str | None
    unscored: str | None = None       # the chosen (the core's own) mapping has no mapper score: why
    core_cycles: int | None = None    # the core's cycles (= RTL) for the chosen mapping's schedule
    candidates: tuple[tuple[str, int, float], ...] = ()   # buildable candidates: (what, core cycles, mapper cycles)

    @property
    def gives_up(self) -> float:
        """Chosen over free latency (1.0: the RTL gives up nothing; NaN: the chosen one is unscored)."""
        return self.chosen_cycles / self.free_cycles if self.free_cycles else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "chosen": self.mapping.to_dict(), "searched_mappings": self.searched,
                "families": self.families, "buildable_families": self.buildable,
                "unbuildable_families": self.unbuildable,
                "chosen_latency_cycles": None if self.unscored is not None else self.chosen_cycles,
                "chosen_unscored": self.unscored,
                "best_unbuildable": None if self.free_reason is None else {
                    "latency_cycles": self.free_cycles, "reason": self.free_reason,
                    "mapping": self.free_mapping.to_dict()},
                "first_rejection": self.first_rejection, "chosen_core_cycles": self.core_cycles,
                "ranked_by": "the core's cycles (sim/rtl_core, = RTL), ties by the mapper's model",
                "buildable_candidates": [{"candidate": w, "core_cycles": c, "mapper_cycles": m}
                                         for w, c, m in self.candidates]}

    def lines(self) -> list[str]:
        """What the user reads on stdout."""
        out = [f"search ({self.objective}): {self.searched:,} mappings scored in {self.families} families; "
               f"narrowed to the core's binding: {self.buildable} families buildable (the core's own mapping "
               f"included), {self.unbuildable} refused"]
        model = f"{self.chosen_cycles:,.0f} cycles (mapper model)" if self.unscored is None else \
            f"no mapper-model score ({self.unscored})"
        core = f"{self.core_cycles:,} cycles (the core = RTL)" if self.core_cycles is not None else ""
        out.append(f"chosen: {self.mapping.name}: {_describe(self.mapping, self.schedule)}; "
                   + "; ".join(x for x in (core, model) if x))
        if self.candidates:
            distinct = sorted({c for _, c, _ in self.candidates})
            if len(distinct) == 1:
                out.append(f"ranked by the core's cycles: all {len(self.candidates)} buildable candidates give the "
                           f"same core ({distinct[0]:,} cycles; the core fixes the tiles: R keys on the rows, C "
                           "queries on the columns, E and F in time), the mapper's model breaks the tie")
            else:
                out.append(f"ranked by the core's cycles: {len(self.candidates)} buildable candidates, cores of "
                           + ", ".join(f"{c:,}" for c in distinct) + " cycles; chosen the fastest")
        if self.free_reason is None:
            out.append("the mapper's best mapping is buildable: the RTL gives up nothing")
        elif self.unscored is not None:
            out.append(f"best unbuildable: {self.free_cycles:,.0f} cycles (mapper model); refused: {self.free_reason}")
        elif self.chosen_cycles <= self.free_cycles:
            out.append(f"best unbuildable found: {self.free_cycles:,.0f} cycles (mapper model), no faster than the "
                       f"chosen's {self.chosen_cycles:,.0f} (mapper model): the RTL gives up nothing; refused: "
                       f"{self.free_reason}")
        else:
            out.append(f"best unbuildable: {self.free_cycles:,.0f} cycles (mapper model; the chosen: "
                       f"{self.chosen_cycles:,.0f} mapper model, {self.gives_up:.2f}x); refused: {self.free_reason}")
        return out


def _describe(mapping: Any, schedule: Any) -> str:
    on_2d = [e for e, a in mapping.binding.items() if a == "2d"]
    spatial = "; ".join(f"{a}: " + ", ".join(f"{d}={'*'.join(rs)}" for d, rs in dims.items())
                        for a, dims in mapping.spatial.items())
    order = " > ".join(f"{lp.rank}@{lp.level} {lp.extent}" for g in schedule.groups for lp in g.loops
                       if lp.kind == "temporal")
    groups = ", ".join(f"{g.pipeline}" + (f" over {g.interleave_rank}" if g.interleave_rank else "")
                       for g in mapping.groups)
    return f"2D runs {', '.join(on_2d) or '-'}; {spatial}; loops {order}; {groups}"


def _reason(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return text.split(" (hint:")[0]


def choose_mapping(cascade: Any, arch: Any, workload: Any, sizes: Mapping[str, int] | None, *,
                   lower_fn: Callable[[Any], Any], check: Callable[[Any], Any], pin_binding: Mapping[str, str],
                   in_pe: Mapping[str, int] | None = None, own: Any = None, objective: str = "latency",
                   time_budget_s: float = 60.0, core_cycles: Callable[[Any], int] | None = None) -> Choice:
    """Search, narrow to what ``check`` accepts and choose (see the module docstring).

    ``lower_fn(mapping)`` lowers a mapping at the run's sizes; ``check(schedule)`` raises
    :class:`MappingError` for a schedule the core cannot build; ``in_pe``: ranks the core runs in time
    inside its PEs (with their sizes): a family is judged, and a best tiling the core cannot run is
    replaced, with those ranks whole in the PE and the other temporal factors where the lowering puts them;
    ``own``: the core's own mapping, a candidate of its own (the search's spatial plans may not include
    the core's placement): the choice is never worse than it; ``core_cycles(schedule)``: the core's
    cycles for a buildable schedule, by which the buildable candidates are ranked (None: by the
    mapper's model)."""
    def canonical(mapping: Any) -> Any:
        if not in_pe:
            return mapping
        tiling = {r: dict(lv) for r, lv in mapping.tiling.items()}
        for r, n in in_pe.items():
            if "spatial" not in tiling.get(r, {}):
                tiling[r] = {"PE": int(n)}
        return mapping.replace(tiling=tiling)

    from einloom.einsum.errors import ArchError, WorkloadError
    from einloom.mapper.search import search
    kw = dict(objective=objective, sizes=dict(sizes or {}) or None, time_budget_s=time_budget_s)
    free = search(cascade, arch, workload, **kw)
    free_reason = None
    try:
        check(lower_fn(free.best_mapping))
    except MappingError as exc:
        free_reason = _reason(exc)

    buildable: list[Any] = []

    def accept(mapping: Any) -> str | None:
        try:
            check(lower_fn(canonical(mapping)))
        except (MappingError, ArchError, WorkloadError) as exc:
            return _reason(exc)
        buildable.append(canonical(mapping))
        return None

    from einloom.mapper.evaluate import evaluate
    own_eval, own_note = None, None
    if own is not None:
        check(lower_fn(own))
        try:
            own_eval = evaluate(cascade, own, arch, workload, sizes=sizes or None)
        except (MappingError, ArchError, WorkloadError) as exc:     # buildable, but the mapper's model refuses it
            own_note = _reason(exc)
    try:        # the narrowed search also counts the buildable families when the free best is one of them
        narrow = search(cascade, arch, workload, pin_binding=dict(pin_binding), accept=accept, **kw)
    except MappingError as exc:
        if free_reason is not None and own is None:
            raise MappingError(f"--search found no mapping the core can build ({_reason(exc)}); the mapper's best "
                               f"is refused: {free_reason}", hint="leave --search out (the core's own mapping)") from None
        narrow = None
    if free_reason is None:
        chosen, evaluation = free.best_mapping, free.best
    elif narrow is None or (own_eval is not None and own_eval.latency_cycles <= narrow.best.latency_cycles):
        chosen, evaluation = own, own_eval      # own_eval None: no score (own_note says why)
    else:
        chosen, evaluation = narrow.best_mapping, narrow.best
        try:
            check(lower_fn(chosen))
        except MappingError:
            # the family passed the check in its canonical tiling; its best tiling did not: keep the canonical
            chosen = canonical(chosen.replace(tiling={r: {"spatial": lv["spatial"]} for r, lv in chosen.tiling.items()
                                                      if "spatial" in lv}))
            evaluation = evaluate(cascade, chosen, arch, workload, sizes=sizes or None)
    candidates: list[tuple[str, int, float]] = []
    if core_cycles is not None:
        chosen, evaluation, candidates = _rank_by_core(
            [("the mapper's best buildable" if chosen is not own else "the core's own", chosen, evaluation)]
            + ([("the core's own", own, own_eval)] if own is not None and chosen is not own else [])
            + [(f"family {i + 1}", m, None) for i, m in enumerate(buildable)],
            lower_fn=lower_fn, core_cycles=core_cycles,
            score=lambda m: evaluate(cascade, m, arch, workload, sizes=sizes or None))
    schedule = lower_fn(chosen)
    check(schedule)
    searched = free.evaluated + (narrow.evaluated if narrow else 0)
    families = free.families + (narrow.families if narrow else 0)
    note = own_note if chosen is own and own_eval is None else None
    return Choice(chosen, schedule, objective, searched, families,
                  (narrow.accepted if narrow else 0) + (own is not None), (narrow.rejected if narrow else 0),
                  float(evaluation.latency_cycles) if evaluation is not None else float("nan"),
                  float(free.best.latency_cycles), free.best_mapping, free_reason,
                  narrow.first_rejection if narrow else None, note,
                  core_cycles(schedule) if core_cycles is not None else None, tuple(candidates))


def _rank_by_core(candidates: list[tuple[str, Any, Any]], *, lower_fn: Callable[[Any], Any],
                  core_cycles: Callable[[Any], int], score: Callable[[Any], Any]
                  ) -> tuple[Any, Any, list[tuple[str, int, float]]]:
    """The fastest candidate by the core's cycles (ties: the mapper's model, then the first listed):
    ``(mapping, its evaluation or None, [(what, core cycles, mapper cycles)])``.  A candidate the
    core cannot build at its best tiling is left out (the caller's check kept its family)."""
    from einloom.einsum.errors import ArchError, WorkloadError
    ranked = []
    for i, (what, mapping, evaluation) in enumerate(candidates):
        try:
            cycles = int(core_cycles(lower_fn(mapping)))
        except (MappingError, ArchError, WorkloadError):
            continue
        if evaluation is None:
            try:
                evaluation = score(mapping)
            except (MappingError, ArchError, WorkloadError):
                evaluation = None
        model = float(evaluation.latency_cycles) if evaluation is not None else float("inf")
        ranked.append((cycles, model, i, what, mapping, evaluation))
    if not ranked:
        return candidates[0][1], candidates[0][2], []
    ranked.sort(key=lambda x: (x[0], x[1], x[2]))
    best = ranked[0]
    return best[4], best[5], [(w, c, m) for c, m, _i, w, _mp, _ev in ranked]
