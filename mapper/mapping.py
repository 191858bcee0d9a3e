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

from einloom.einsum.errors import Location, MappingError
from einloom.einsum.yamlio import LineMap, load_yaml

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


def _fail(linemap: LineMap | None, file: str | None, path: tuple[Any, ...], message: str,
          hint: str | None = None) -> MappingError:
    loc = linemap.at(*path) if linemap is not None else Location(file, None, ".".join(map(str, path)) or None)
    return MappingError(message, location=loc, hint=hint)


def _names(value: Any, fail, path: tuple[Any, ...], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(path, f"expected a list of {what}", f"write e.g. [{what[:-1].upper()}1, ...]")
    return tuple(value)


def mapping_from_dict(data: Any, linemap: LineMap | None = None, *, file: str | None = None) -> Mapping:
    """Build and check a :class:`Mapping` from plain data (a parsed YAML/JSON document).

    Checks the structure only; whether the names exist in a cascade and the tiles fit an architecture
    is checked by :func:`einloom.mapper.evaluate.check_mapping` against them.
    """

    def fail(path: tuple[Any, ...], message: str, hint: str | None = None) -> MappingError:
        return _fail(linemap, file, path, message, hint)

    if isinstance(data, dict) and set(data) == {"mapping"}:
        data = data["mapping"]
        if linemap is not None:
            linemap = _Shifted(linemap, "mapping")  # type: ignore[assignment]
    if not isinstance(data, dict):
        raise fail((), "a mapping file must be a YAML mapping", "start with 'name: ...' and 'binding: ...'")
    for key in data:
        if key not in _TOP:
            import difflib
            close = difflib.get_close_matches(str(key), _TOP, n=1)
            raise fail((key,), f"unknown field '{key}'",
                       (f"did you mean '{close[0]}'? " if close else "") + "fields: " + ", ".join(_TOP))
    for key in ("name", "binding", "spatial"):
        if key not in data:
            raise fail((), f"missing field '{key}'", "see 'einloom map --help' for the mapping format")
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise fail(("name",), "name must be a non-empty string")

    # binding: {array: [einsums]}
    binding: dict[str, str] = {}
    if not isinstance(data["binding"], dict):
        raise fail(("binding",), "binding must map an array ('2d'/'1d') to a list of Einsums",
                   "write binding: {2d: [QK, AV], 1d: [GM, SN, SD, A]}")
    for array, einsums in data["binding"].items():
        if str(array) not in ARRAY_DIMS:
            raise fail(("binding", array), f"unknown array '{array}'", "use '2d' or '1d'")
        for i, einsum in enumerate(_names(einsums, fail, ("binding", array), "Einsums")):
            if einsum in binding:
                raise fail(("binding", array, i), f"Einsum '{einsum}' is bound twice "
                           f"(to {binding[einsum]} and {array})", "bind each Einsum to one array")
            binding[einsum] = str(array)

    spatial: dict[str, dict[str, tuple[str, ...]]] = {}
    if not isinstance(data["spatial"], dict):
        raise fail(("spatial",), "spatial must map an array to {dimension: [ranks]}",
                   "write spatial: {2d: {rows: [M0], cols: [P]}, 1d: {lanes: [P]}}")
    for array, dims in data["spatial"].items():
        if str(array) not in ARRAY_DIMS:
            raise fail(("spatial", array), f"unknown array '{array}'", "use '2d' or '1d'")
        spatial[str(array)] = _read_dims(dims, str(array), fail, ("spatial", array))

    overrides: dict[str, dict[str, tuple[str, ...]]] = {}
    for einsum, dims in (data.get("spatial_overrides") or {}).items():
        if einsum not in binding:
            raise fail(("spatial_overrides", einsum), f"spatial override for unbound Einsum '{einsum}'",
                       "bind it first under binding:")
        overrides[einsum] = _read_dims(dims, binding[einsum], fail, ("spatial_overrides", einsum))

    tiling: dict[str, dict[str, int]] = {}
    raw_tiling = data.get("tiling") or {}
    if not isinstance(raw_tiling, dict):
        raise fail(("tiling",), "tiling must map a rank to {level: factor}", "write tiling: {P: {DRAM: 4, spatial: 256}}")
    for rank, levels in raw_tiling.items():
        if not isinstance(levels, dict):
            raise fail(("tiling", rank), f"tiling of {rank} must map a level to a factor",
                       f"levels: {', '.join(LEVELS)}")
        tiling[str(rank)] = {}
        for level, factor in levels.items():
            if level not in LEVELS:
                raise fail(("tiling", rank, level), f"unknown level '{level}'", f"levels: {', '.join(LEVELS)}")
            if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
                raise fail(("tiling", rank, level), f"factor must be a positive integer, got {factor!r}")
            tiling[str(rank)][level] = factor

    loop_order: dict[str, tuple[str, ...]] = {}
    raw_order = data.get("loop_order") or {}
    if not isinstance(raw_order, dict):
        raise fail(("loop_order",), "loop_order must map a level to a list of ranks", "write loop_order: {DRAM: [P, M1]}")
    for level, ranks in raw_order.items():
        if level not in TEMPORAL_LEVELS:
            raise fail(("loop_order", level), f"unknown temporal level '{level}'",
                       f"levels: {', '.join(TEMPORAL_LEVELS)}")
        order = _names(ranks, fail, ("loop_order", level), "ranks")
        if len(set(order)) != len(order):
            raise fail(("loop_order", level), "a rank appears twice in one level's loop order")
        loop_order[level] = order

    groups: list[FusionGroup] = []
    raw_groups = data.get("groups")
    if raw_groups is None:
        raw_groups = [{"einsums": "all", "pipeline": "interleave"}]
    if not isinstance(raw_groups, list):
        raise fail(("groups",), "groups must be a list of {einsums, pipeline}",
                   "write groups: [{einsums: all, pipeline: interleave, interleave_rank: M1}]")
    seen: dict[str, int] = {}
    for i, g in enumerate(raw_groups):
        if not isinstance(g, dict) or "einsums" not in g:
            raise fail(("groups", i), "a group needs 'einsums' (a list, or 'all')")
        for key in g:
            if key not in ("einsums", "pipeline", "interleave_rank"):
                raise fail(("groups", i, key), f"unknown group field '{key}'",
                           "fields: einsums, pipeline, interleave_rank")
        members = ("all",) if g["einsums"] == "all" else _names(g["einsums"], fail, ("groups", i, "einsums"),
                                                                  "Einsums")
        for e in members:
            if e == "all":
                continue
            if e not in binding:
                raise fail(("groups", i, "einsums"), f"group lists unbound Einsum '{e}'",
                           "every grouped Einsum must be bound under binding:")
            if e in seen:
                raise fail(("groups", i, "einsums"), f"Einsum '{e}' is in groups {seen[e]} and {i}")
            seen[e] = i
        pipeline = g.get("pipeline", "interleave")
        if pipeline not in PIPELINE_MODES:
            raise fail(("groups", i, "pipeline"), f"unknown pipeline '{pipeline}'",
                       f"one of {', '.join(PIPELINE_MODES)}")
        rank = g.get("interleave_rank")
        if rank is not None and not isinstance(rank, str):
            raise fail(("groups", i, "interleave_rank"), "interleave_rank must be a rank name")
        groups.append(FusionGroup(members, pipeline, rank))
    if sum(1 for g in groups if g.einsums == ("all",)) > 1:
        raise fail(("groups",), "only one group may be 'all'")

    spill = _names(data.get("spill") or [], fail, ("spill",), "tensors")
    bypass = _names(data.get("bypass") or [], fail, ("bypass",), "tensors")
    params: dict[str, int] = {}
    raw_params = data.get("params") or {}
    if not isinstance(raw_params, dict):
        raise fail(("params",), "params must map a cascade parameter to an integer", "write params: {M0: 256}")
    for key, value in raw_params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fail(("params", key), f"parameter {key} must be a positive integer, got {value!r}")
        params[str(key)] = value
    cascade = data.get("cascade")
    if cascade is not None and not isinstance(cascade, str):
        raise fail(("cascade",), "cascade must be a library name or a path")
    return Mapping(name=name, binding=binding, spatial=spatial, tiling=tiling, loop_order=loop_order,
                   groups=tuple(groups), spill=spill, bypass=bypass, spatial_overrides=overrides, cascade=cascade,
                   description=str(data.get("description") or ""), params=params, file=file, linemap=linemap)


class _Shifted:
    """A LineMap view of a document nested under one top-level key."""

    def __init__(self, inner: LineMap, key: str):
        self.inner, self.key, self.file = inner, key, inner.file

    def at(self, *path: Any, field: str | None = None) -> Location:
        loc = self.inner.at(self.key, *path)
        return Location(loc.file, loc.line, field or ".".join(map(str, path)) or None)

    def line(self, path: tuple[Any, ...]) -> int | None:
        return self.inner.line((self.key,) + tuple(path))


def _read_dims(dims: Any, array: str, fail, path: tuple[Any, ...]) -> dict[str, tuple[str, ...]]:
    if not isinstance(dims, dict):
        raise fail(path, f"expected {{dimension: [ranks]}} for the {array} array",
                   f"dimensions of {array}: {', '.join(ARRAY_DIMS[array])}")
    out = {}
    for dim, ranks in dims.items():
        if dim not in ARRAY_DIMS[array]:
            raise fail(path + (dim,), f"the {array} array has no dimension '{dim}'",
                       f"dimensions of {array}: {', '.join(ARRAY_DIMS[array])}")
        out[str(dim)] = _names(ranks, fail, path + (dim,), "ranks")
    return out


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
