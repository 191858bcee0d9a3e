"""``--mapping`` / ``--search`` for the lane core (2D MAC array + programmable lanes, ``rtl/lane_core.py``).

The lane core's structure is fixed by the cascade (:func:`einloom.rtl.lanes.compile.lane_mapping`):
every multiply-accumulate product with a sum reduction runs on the 2D array with the key tile on the
rows and the queries on the columns; everything else runs in the 1D lanes, one per query column.
:func:`check_lane_schedule` refuses a lowered schedule that binds or places an Einsum otherwise,
naming the Einsum (or mapping field) and the reason.  The lanes run their program in the lane
compiler's own loop order (key tiles inside query blocks, each Einsum over the tile in topological
order), so a mapping's loop order, tiling and fusion pipeline are not what the lane core implements:
the report says so (``loop_order`` in :func:`lane_mapping_report`).
:func:`lane_structure` is the lane core's :class:`~einloom.rtl.schedule.CoreStructure` (counters from
its schedule's loop nest, phases, 1D units from the lanes' op classes).
"""
from __future__ import annotations

from typing import Any

from einloom.base.errors import MappingError

#: What each counter role drives in the lane core (rtl/lane_core.py).
LANE_DRIVES = {
    "run": "one core run per coordinate",
    "query_block": "the Q memory's block address: one block of query columns, one lane each",
    "key_tile": "the K and V memories' tile address: the 2D array's score and value slots and one pass of "
                "the lane program per tile",
    "contraction": "the cycles of the score product's accumulate in the 2D array",
    "value": "the cycles of the value product's accumulate in the 2D array",
}


def check_lane_schedule(schedule: Any, own: Any, arch: Any) -> None:
    """Raise :class:`MappingError` unless ``schedule`` binds and places every Einsum as the lane core
    does (``own``: the lane core's mapping of the same cascade)."""
    from einloom.rtl.schedule import is_sum_product
    mapping = schedule.mapping
    key = own.spatial["2d"]["rows"][0]
    query = own.spatial["2d"]["cols"][0]
    rows, cols = arch.array_2d.rows, arch.array_2d.cols

    def fail(message: str, *path: Any, hint: str) -> MappingError:
        return MappingError(message, location=mapping.where(*path), hint=hint)

    for name, e in schedule.einsums.items():
        want = own.binding.get(name)
        if want is None or e.array == want:
            continue
        if want == "2d":
            raise fail(f"Einsum {name} is a multiply-accumulate product with a sum reduction bound to the 1D lanes; "
                       "the lane core computes such products on its 2D array (the lanes have no dot-product "
                       "unit)", "binding", name, hint=f"bind {name} to 2d")
        what = "is not a multiply-accumulate with a sum reduction" if not is_sum_product(e) else \
            "does not reduce over the key tile"
        raise fail(f"Einsum {name} is bound to the 2D array but {what}; the lane core's 2D array runs only the "
                   "score and value products, everything else runs in the lanes", "binding", name,
                   hint=f"bind {name} to 1d")
    for name, e in schedule.einsums.items():
        if e.array != "2d":
            continue
        spatial = {dim: (r, f) for r, dim, f in e.spatial if f > 1}
        if key in e.iteration_ranks and spatial.get("2d.rows", (None, 0))[0] != key:
            raise fail(f"Einsum {name} does not put the key tile {key} on the 2D rows (it has "
                       f"{spatial.get('2d.rows', ('nothing',))[0]} there); the lane core's products take a "
                       f"tile of {rows} keys on the rows", "spatial",
                       hint=f"spatial: {{2d: {{rows: [{key}], cols: [{query}]}}}}")
        if query in e.iteration_ranks and spatial.get("2d.cols", (None, 0))[0] != query:
            raise fail(f"Einsum {name} does not spread the queries {query} over the {cols} 2D columns (it has "
                       f"{spatial.get('2d.cols', ('nothing',))[0]} there)", "spatial",
                       hint=f"spatial: {{2d: {{rows: [{key}], cols: [{query}]}}}}")
        for r, (rank, f) in ((d, v) for d, v in spatial.items()):
            if rank not in (key, query):
                raise fail(f"Einsum {name} spreads {rank} over {r}; the lane core runs it in time",
                           "spatial", hint=f"remove {rank} from spatial")
    for name, e in schedule.einsums.items():
        if e.array != "1d" or query not in e.iteration_ranks:
            continue
        lanes = {r for r, dim, f in e.spatial if dim == "1d.lanes" and f > 1}
        if lanes and lanes != {query}:
            raise fail(f"Einsum {name} spreads {', '.join(sorted(lanes))} over the 1D lanes; the lane core has one lane "
                       f"per query column ({query})", "spatial", hint=f"spatial: {{1d: {{lanes: [{query}]}}}}")
    if schedule.einsums and own.params:
        for p, v in own.params.items():
            got = schedule.sizes.get(p, schedule.mapping.params.get(p))
            if got is not None and int(got) != int(v):
                raise fail(f"the key tile {p} is {got}; the lane core's is the {rows} rows of the 2D array",
                           "params", p, hint=f"params: {{{p}: {v}}}")


def lane_structure(schedule: Any, structure: Any, cascade: Any, arch: Any, *, heads: tuple[str, ...] = (),
                   groups: tuple[str, ...] = ()) -> Any:
    """The lane core's :class:`~einloom.rtl.schedule.CoreStructure` (``structure``: the lane compiler's
    :class:`~einloom.rtl.lanes.compile.Structure` of the cascade: key, outer, lane, value ranks).

    ``schedule`` is the lane plan's (binding and spatial placement); its loop nest is lowered again in
    the order the lanes run it: one run per head with its own K/V (``heads``: the lane plan's looped
    ranks), query blocks (the queries with the ``groups`` folded into them), then key tiles, then the
    products' feature ranks in the PEs."""
    from einloom.mapper.lower import lower
    contraction = tuple(dict.fromkeys(r for n in structure.scores if n in schedule.einsums
                                      for r in schedule.einsums[n].reduced_ranks))
    feature = contraction + ((structure.value,) if structure.value else ())
    tiles = (structure.outer,) if structure.outer else (structure.key,)
    ordered = schedule.mapping.replace(
        loop_order={"GLB": tuple(heads) + tuple(groups) + (structure.lane,) + tiles, "PE": feature},
        tiling={**{r: dict(v) for r, v in schedule.mapping.tiling.items()},
                **{r: {"PE": schedule.sizes[r]} for r in feature}})
    schedule = lower(cascade, ordered, arch, None, sizes={r: schedule.sizes[r] for r in schedule.sizes
                                                         if r not in (cascade.params or {})})
    from einloom.rtl.lanes.units import COMB, FN_UNITS, UNITS
    from einloom.rtl.schedule import CoreRanks, derive_structure
    ranks = CoreRanks(query=structure.lane, key=structure.key, tile=structure.outer, contraction=contraction,
                      value=structure.value, heads=tuple(heads), groups=tuple(groups))
    units = {op: op for op in list(UNITS) + list(COMB)}
    units.update({"mac": "mul + add", **{f"fn:{n}": n for n in FN_UNITS}})
    rtl = arch.rtl or {}
    rows, cols = arch.array_2d.rows, arch.array_2d.cols
    capacity = {}
    from einloom.rtl.core_form import input_views
    cascade_views = input_views(cascade)
    for t, own in cascade_views.items():
        if structure.lane in own:
            capacity[t] = (-(-int(rtl.get("max_queries", 64)) // cols), "rtl.max_queries")
        else:
            capacity[t] = (-(-int(rtl.get("max_keys", 64)) // rows), "rtl.max_keys")
    return derive_structure(schedule, ranks, rows=rows, cols=cols, units_1d=units, capacity=capacity,
                            views=cascade_views, drives=LANE_DRIVES)


def lane_mapping_report(plan: Any, arch: Any, *, mapping: Any = None, search: bool = False) -> dict[str, Any]:
    """The mapping the lane core implements for ``plan``: ``mapping`` (checked by
    :func:`check_lane_schedule`), or with ``search`` the best buildable one
    (:func:`einloom.rtl.select.choose_mapping`); manifest data with the lines to print (``lines``)."""
    from einloom.mapper.lower import lower
    from einloom.rtl.lanes.compile import lane_mapping
    cascade, sizes = plan.cascade, {r: plan.sizes[r] for r in _root_sizes(plan)}
    own = lane_mapping(cascade, arch, sizes=sizes)

    def lower_at(mapping: Any) -> Any:
        return lower(cascade, mapping, arch, None, sizes=sizes)

    def check(schedule: Any) -> None:
        check_lane_schedule(schedule, own, arch)

    note = ("the lane core implements the mapping's binding and spatial placement; its loop order, tiling and "
            "fusion pipeline are the lane program's own (key tiles inside query blocks, Einsums in topological "
            "order)")
    if search:
        from einloom.rtl.select import choose_mapping
        choice = choose_mapping(cascade, arch, None, sizes, lower_fn=lower_at, check=check, pin_binding=own.binding,
                                own=own)
        return {"search": choice.to_dict(), "loop_order": note, "lines": choice.lines() + [f"  ({note})"]}
    schedule = lower_at(mapping)
    check(schedule)
    return {"mapping": mapping.to_dict(), "schedule": schedule.to_dict(), "loop_order": note,
            "lines": [f"mapping {mapping.name}: buildable by the lane core ({note})"]}


def _root_sizes(plan: Any) -> list[str]:
    cascade = plan.cascade
    roots = []
    for t in list(cascade.inputs) + list(cascade.outputs):
        for r in cascade.tensors[t].ranks:
            if r in plan.sizes and r not in roots and r not in (cascade.params or {}):
                roots.append(r)
    return roots
