"""Mappings: how a cascade runs on a 2D + 1D PE array (binding, tiling, spatial ranks, order, fusion).

A :class:`Mapping` is the schedule half of einloom's three inputs (cascade = algorithm, architecture =
hardware, mapping = schedule).  It says

* **binding** -- which array (``2d`` or ``1d``) runs each Einsum.  Einsums with no arithmetic (the
  rank-partitioning views ``BK``/``BV``) need no binding;
* **spatial** -- which ranks are spread over each array dimension (``2d``: ``rows``/``cols``;
  ``1d``: ``lanes``), with optional per-Einsum overrides;
* **tiling** -- per rank, the factor at each storage level, outermost first: ``DRAM`` (loops whose
  tiles are fetched from DRAM), ``GLB`` (loops over tiles held in the global buffer), ``spatial``
  (PEs), ``PE`` (loops inside a PE, over its register file).  A rank's unassigned remainder goes to
  the first level whose loop order lists it, else to ``PE``;
* **loop_order** -- per temporal level, ranks outermost first;
* **groups** -- fusion groups with their pipelining: ``interleave`` (the group's Einsums on the two
  arrays overlap, consecutive iterations of ``interleave_rank`` interleaved across the arrays, as
  FuseMax does), ``sequential`` (fused on chip but the arrays take turns: one stalls while the other
  works) or ``none`` (each Einsum is its own kernel);
* **spill** -- intermediates kept in DRAM instead of on chip;
* **bypass** -- DRAM tensors (inputs, outputs, spilled intermediates) that stream between DRAM and
  the arrays without a copy in the global buffer (Timeloop's *bypass*): they take no buffer space and
  cost no buffer accesses, but every delivery to the array is a DRAM access (no reuse in the buffer).

YAML form (``einloom map --mapping FILE``)::

    name: fusemax
    cascade: fusemax-1pass
    binding:
      2d: [QK, LM, SLN, SLD, SLNV]
      1d: [RM, PRM, SPD, SPNV, RD, RNV, AV]
    spatial:
      2d: {rows: [M0], cols: [P]}
      1d: {lanes: [P]}
    tiling:
      P: {DRAM: 4, GLB: 128, spatial: 256}
      M0: {spatial: 256}
    loop_order:
      DRAM: [P, M1]
      GLB: [P]
      PE: [E, F]
    groups:
      - {einsums: all, pipeline: interleave, interleave_rank: M1}

:func:`load_mapping` validates it and reports errors with file, line and field.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping as TMapping

from einloom.base.errors import Location, MappingError
from einloom.base.fields import FieldReader, describe
from einloom.base.limits import MAX_FACTOR, MAX_RANK_SIZE
from einloom.base.yamlio import LineMap, load_yaml

#: Temporal storage levels, outermost first.
TEMPORAL_LEVELS: tuple[str, ...] = ("DRAM", "GLB", "PE")
#: All tiling levels in nest order (the spatial level sits between GLB and PE).
LEVELS: tuple[str, ...] = ("DRAM", "GLB", "spatial", "PE")
#: Array dimensions.
ARRAY_DIMS: dict[str, tuple[str, ...]] = {"2d": ("rows", "cols"), "1d": ("lanes",)}
PIPELINE_MODES: tuple[str, ...] = ("interleave", "sequential", "none")


@dataclass(frozen=True)
class FusionGroup:
    """Einsums that run fused, and how their work on the two arrays overlaps.

    ``einsums`` is a tuple of names, or ``("all",)`` for every bound Einsum not in another group.
    """

    einsums: tuple[str, ...]
    pipeline: str = "interleave"
    interleave_rank: str | None = None


@dataclass(frozen=True)
class Mapping:
    """A validated mapping (see the module docstring)."""

    name: str
    binding: TMapping[str, str]
    spatial: TMapping[str, TMapping[str, tuple[str, ...]]]
    tiling: TMapping[str, TMapping[str, int]] = field(default_factory=dict)
    loop_order: TMapping[str, tuple[str, ...]] = field(default_factory=dict)
    groups: tuple[FusionGroup, ...] = (FusionGroup(("all",)),)
    spill: tuple[str, ...] = ()
    bypass: tuple[str, ...] = ()
    spatial_overrides: TMapping[str, TMapping[str, tuple[str, ...]]] = field(default_factory=dict)
    cascade: str | None = None
    description: str = ""
    params: TMapping[str, int] = field(default_factory=dict)
    file: str | None = None
    linemap: LineMap | None = field(default=None, repr=False, compare=False)

    # -- helpers --------------------------------------------------------------------------------
    def where(self, *path: Any) -> Location:
        """Location of a field (with its line when the mapping came from a file)."""
        if self.linemap is not None:
            return self.linemap.at(*path)
        return Location(self.file, None, ".".join(map(str, path)) or None)

    def spatial_for(self, einsum: str) -> dict[str, tuple[str, ...]]:
        """Array dimension -> ranks for ``einsum`` (its override, else its array's default)."""
        array = self.binding[einsum]
        dims = dict(self.spatial.get(array, {}))
        dims.update(self.spatial_overrides.get(einsum, {}))
        return dims

    def replace(self, **changes: Any) -> "Mapping":
        """A copy with some fields changed (used by the search and by the baselines)."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data.update(changes)
        data["linemap"] = None if changes else self.linemap
        return Mapping(**data)

    # -- serialization --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data in the YAML schema; ``mapping_from_dict(m.to_dict())`` round-trips."""
        by_array: dict[str, list[str]] = {}
        for einsum, array in self.binding.items():
            by_array.setdefault(array, []).append(einsum)
        out: dict[str, Any] = {"name": self.name}
        if self.cascade:
            out["cascade"] = self.cascade
        if self.description:
            out["description"] = self.description
        if self.params:
            out["params"] = {k: int(v) for k, v in self.params.items()}
        out["binding"] = by_array
        out["spatial"] = {a: {d: list(r) for d, r in dims.items()} for a, dims in self.spatial.items()}
        if self.spatial_overrides:
            out["spatial_overrides"] = {e: {d: list(r) for d, r in dims.items()}
                                        for e, dims in self.spatial_overrides.items()}
        out["tiling"] = {r: {lv: int(f) for lv, f in lv_f.items()} for r, lv_f in self.tiling.items()}
        out["loop_order"] = {lv: list(r) for lv, r in self.loop_order.items()}
        out["groups"] = [{"einsums": "all" if g.einsums == ("all",) else list(g.einsums),
                          "pipeline": g.pipeline,
                          **({"interleave_rank": g.interleave_rank} if g.interleave_rank else {})}
                         for g in self.groups]
        if self.spill:
            out["spill"] = list(self.spill)
        if self.bypass:
            out["bypass"] = list(self.bypass)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)


# ==================================================================================================
# Loading and validation
# ==================================================================================================

_TOP = ("name", "binding", "spatial", "tiling", "loop_order", "groups", "spill", "bypass", "spatial_overrides",
        "cascade", "description", "params")
_GROUP_KEYS = ("einsums", "pipeline", "interleave_rank")


def mapping_from_dict(data: Any, linemap: LineMap | None = None, *, file: str | None = None) -> Mapping:
    """Build and check a :class:`Mapping` from plain data (a parsed YAML/JSON document).

    Checks the structure only (types, known levels, arrays and dimensions, whole positive factors
    within :data:`~einloom.base.limits.MAX_FACTOR`, no NaN/infinity/booleans); whether the names exist
    in a cascade and the tiles fit an architecture is checked against them by the mapper.
    """
    prefix: tuple[Any, ...] = ()
    if isinstance(data, dict) and set(data) == {"mapping"}:
        data, prefix = data["mapping"], ("mapping",)
    r = FieldReader(linemap, MappingError, file=file, prefix=prefix)
    top = r.mapping(data, (), ("name", "binding", "spatial"), _TOP[3:], what="a YAML mapping with name:, binding:, "
                    "spatial:", key_kind="field")
    name = r.string(top["name"], ("name",))

    binding: dict[str, str] = {}
    r.mapping(top["binding"], ("binding",), what="a mapping of array ('2d'/'1d') to a list of Einsums")
    for array, einsums in top["binding"].items():
        r.choice(str(array), ("binding", array), tuple(ARRAY_DIMS), what="array")
        for i, einsum in enumerate(r.names(einsums, ("binding", array), "Einsums")):
            if einsum in binding:
                raise r.fail(("binding", array, i), f"Einsum '{einsum}' is bound twice "
                             f"(to {binding[einsum]} and {array})", "bind each Einsum to one array")
            binding[einsum] = str(array)

    spatial: dict[str, dict[str, tuple[str, ...]]] = {}
    r.mapping(top["spatial"], ("spatial",), what="a mapping of array to {dimension: [ranks]}")
    for array, dims in top["spatial"].items():
        r.choice(str(array), ("spatial", array), tuple(ARRAY_DIMS), what="array")
        spatial[str(array)] = _read_dims(r, dims, str(array), ("spatial", array))

    overrides: dict[str, dict[str, tuple[str, ...]]] = {}
    raw_overrides = r.mapping(top.get("spatial_overrides") or {}, ("spatial_overrides",),
                              what="a mapping of Einsum to {dimension: [ranks]}")
    for einsum, dims in raw_overrides.items():
        if einsum not in binding:
            raise r.fail(("spatial_overrides", einsum), f"spatial override for unbound Einsum '{einsum}'",
                         "bind it first under binding:")
        overrides[einsum] = _read_dims(r, dims, binding[einsum], ("spatial_overrides", einsum))

    tiling: dict[str, dict[str, int]] = {}
    raw_tiling = r.mapping(top.get("tiling") or {}, ("tiling",), what="a mapping of rank to {level: factor}")
    for rank, levels in raw_tiling.items():
        r.mapping(levels, ("tiling", rank), optional=LEVELS, what=f"a mapping of level ({', '.join(LEVELS)}) "
                  "to factor", key_kind="level")
        tiling[str(rank)] = {level: r.integer(factor, ("tiling", rank, level), low=1, high=MAX_FACTOR,
                                              what="a positive whole factor")
                             for level, factor in levels.items()}

    loop_order: dict[str, tuple[str, ...]] = {}
    raw_order = r.mapping(top.get("loop_order") or {}, ("loop_order",), optional=TEMPORAL_LEVELS,
                          what="a mapping of temporal level to a list of ranks", key_kind="temporal level")
    for level, ranks in raw_order.items():
        loop_order[level] = r.names(ranks, ("loop_order", level), "ranks")

    groups: list[FusionGroup] = []
    raw_groups = top.get("groups")
    if raw_groups is None:
        raw_groups = [{"einsums": "all", "pipeline": "interleave"}]
    if not isinstance(raw_groups, list):
        raise r.fail(("groups",), f"groups must be a list of {{einsums, pipeline}}, got {describe(raw_groups)}",
                     "write groups: [{einsums: all, pipeline: interleave, interleave_rank: M1}]")
    seen: dict[str, int] = {}
    for i, g in enumerate(raw_groups):
        r.mapping(g, ("groups", i), ("einsums",), _GROUP_KEYS[1:], what="a group {einsums, pipeline}",
                  key_kind="group field")
        members = ("all",) if g["einsums"] == "all" else r.names(g["einsums"], ("groups", i, "einsums"), "Einsums")
        for e in members:
            if e == "all":
                continue
            if e not in binding:
                raise r.fail(("groups", i, "einsums"), f"group lists unbound Einsum '{e}'",
                             "every grouped Einsum must be bound under binding:")
            if e in seen:
                raise r.fail(("groups", i, "einsums"), f"Einsum '{e}' is in groups {seen[e]} and {i}")
            seen[e] = i
        pipeline = r.choice(g.get("pipeline", "interleave"), ("groups", i, "pipeline"), PIPELINE_MODES,
                            what="pipeline")
        rank = g.get("interleave_rank")
        if rank is not None:
            rank = r.string(rank, ("groups", i, "interleave_rank"), what="a rank name")
        groups.append(FusionGroup(members, pipeline, rank))
    if sum(1 for g in groups if g.einsums == ("all",)) > 1:
        raise r.fail(("groups",), "only one group may be 'all'")

    spill = r.names(top.get("spill") or [], ("spill",), "tensors")
    bypass = r.names(top.get("bypass") or [], ("bypass",), "tensors")
    raw_params = r.mapping(top.get("params") or {}, ("params",), what="a mapping of cascade parameter to an integer")
    params = {str(key): r.integer(value, ("params", key), low=1, high=MAX_RANK_SIZE, what="a positive integer")
              for key, value in raw_params.items()}
    cascade = top.get("cascade")
    if cascade is not None:
        cascade = r.string(cascade, ("cascade",), what="a library name or a path")
    description = top.get("description")
    description = "" if description is None else r.string(description, ("description",), what="text",
                                                           allow_empty=True)
    view = _Shifted(linemap, "mapping") if (prefix and linemap is not None) else linemap
    return Mapping(name=name, binding=binding, spatial=spatial, tiling=tiling, loop_order=loop_order,
                   groups=tuple(groups), spill=spill, bypass=bypass, spatial_overrides=overrides, cascade=cascade,
                   description=description, params=params, file=file, linemap=view)


class _Shifted:
    """A LineMap view of a document nested under one top-level key."""

    def __init__(self, inner: LineMap, key: str):
        self.inner, self.key, self.file = inner, key, inner.file

    def at(self, *path: Any, field: str | None = None) -> Location:
        loc = self.inner.at(self.key, *path)
        return Location(loc.file, loc.line, field or ".".join(map(str, path)) or None)

    def line(self, path: tuple[Any, ...]) -> int | None:
        return self.inner.line((self.key,) + tuple(path))


def _read_dims(r: FieldReader, dims: Any, array: str, path: tuple[Any, ...]) -> dict[str, tuple[str, ...]]:
    r.mapping(dims, path, optional=ARRAY_DIMS[array], what=f"{{dimension: [ranks]}} for the {array} array",
              key_kind=f"dimension of the {array} array:")
    return {str(dim): r.names(ranks, path + (dim,), "ranks") for dim, ranks in dims.items()}


def load_mapping(path: str | Path) -> Mapping:
    """Load and check a mapping from a YAML (or JSON) file; errors name the file, line and field."""
    data, linemap = load_yaml(path, error=MappingError)
    return mapping_from_dict(data, linemap, file=str(path))


# ==================================================================================================
# Loop nest printing (Timeloop style)
# ==================================================================================================

def format_loop_nest(mapping: Mapping, factors: TMapping[tuple[str, str], int],
                     einsum_ranks: TMapping[str, Iterable[str]] | None = None,
                     array_dims: TMapping[str, TMapping[str, int]] | None = None,
                     instances: TMapping[str, int] | None = None) -> str:
    """The mapping as an indented loop nest, one line per loop, levels as comments.

    ``factors`` maps ``(level, rank)`` to the resolved factor (see
    :meth:`einloom.mapper.evaluate.ResolvedMapping.factor`).  Loops with factor 1 are omitted.
    """
    lines = [f"mapping {mapping.name}" + (f" ({mapping.description})" if mapping.description else "")]
    indent = 0

    def emit(text: str) -> None:
        lines.append("  " * indent + text)

    for rank, n in (instances or {}).items():
        if n > 1:
            emit(f"for {rank.lower()} in [0:{n})          # instances (batch x heads)")
            indent += 1
    for level in ("DRAM", "GLB"):
        emit(f"--- {level} " + "-" * 40)
        for rank in mapping.loop_order.get(level, ()):
            f = factors.get((level, rank), 1)
            if f > 1:
                emit(f"for {rank.lower()}_{level.lower()} in [0:{f})")
                indent += 1
    emit("--- spatial " + "-" * 37)
    for array in ("2d", "1d"):
        dims = mapping.spatial.get(array, {})
        parts = []
        for dim, ranks in dims.items():
            width = (array_dims or {}).get(array, {}).get(dim)
            used = 1
            for r in ranks:
                used *= factors.get(("spatial", r), 1)
            parts.append(f"{dim}: {' x '.join(ranks) or '-'} ({used}" + (f"/{width}" if width else "") + ")")
        bound = [e for e, a in mapping.binding.items() if a == array]
        emit(f"parallel-for {array} [{'; '.join(parts)}]  runs {', '.join(bound) or '(nothing)'}")
    for e, dims in mapping.spatial_overrides.items():
        emit(f"  override {e}: " + "; ".join(f"{d}: {' x '.join(r)}" for d, r in dims.items()))
    emit("--- PE " + "-" * 42)
    indent += 1
    for rank in mapping.loop_order.get("PE", ()):
        f = factors.get(("PE", rank), 1)
        if f > 1:
            emit(f"for {rank.lower()}_pe in [0:{f})")
            indent += 1
    groups = []
    for g in mapping.groups:
        members = "all" if g.einsums == ("all",) else ",".join(g.einsums)
        extra = f" over {g.interleave_rank}" if g.interleave_rank else ""
        groups.append(f"[{members}] {g.pipeline}{extra}")
    lines.append("fusion: " + "; ".join(groups) + (f"; spilled to DRAM: {', '.join(mapping.spill)}"
                                                     if mapping.spill else "")
                 + (f"; bypass the buffer: {', '.join(mapping.bypass)}" if mapping.bypass else ""))
    return "\n".join(lines)
