"""Limits of the attention core's overlapped schedule (:mod:`einloom.rtl.attention`).

The slot timeline (:class:`einloom.sim.rtl_core.Timeline`) absorbs every hand-off between the 2D
and 1D arrays into the slot period, so any array shape and unit latencies give a correct schedule.
What the core cannot build is refused (by :class:`einloom.rtl.config.RtlConfig` with the file and
line, and again by the core):

* a pipelined 2D accumulate (``units.acc_latency`` L > 1) whose E is not a multiple of L, or with
  more rows than L (the 1D array's SLD order), or whose V skew reaches past the tile's SLN;
* a PE multiply pipeline of fewer than 2 registers (the format's ``product_latency``: 3 for fixed
  point, with a fabric register after the DSP's output register, and 3 for bf16).
"""
from __future__ import annotations

from einloom.sim.rtl_core import CoreParams, Timeline


def schedule_problem(params: CoreParams) -> tuple[str, str] | None:
    """None if the core can run this shape and these latencies, else ``(field, message)``."""
    try:
        Timeline(params)
    except ValueError as exc:
        return ("rtl.number_format", str(exc))
    return None


# ------------------------------------------------------------------------------------------------
# The core's structure, derived from the lowered schedule's loop nest
# ------------------------------------------------------------------------------------------------

from dataclasses import dataclass, field  # noqa: E402
from math import prod  # noqa: E402
from typing import Any, Mapping  # noqa: E402

#: What each counter role drives in the generated core.
DRIVES = {
    "run": "one core run per coordinate (the host's loop: reload K/V, restart; manifest query_fold.runs)",
    "query_block": "the Q buffer read address (qaddr), the output block and the causal/window offset of a block",
    "key_tile": "the K buffer read address (kaddr) of the score slot and the V address (vaddr) one slot later; "
                "the running max/denominator/numerator iterate over it",
    "contraction": "the cycles of a slot's score product: K/Q feed into the 2D array (feed_k), one element per cycle",
    "value": "the value product's V feed (feed_v) and the 1D lanes' rescale and output multiply (slnv, out_mul)",
}


@dataclass(frozen=True)
class CoreRanks:
    """The schedule's ranks in the roles the core gives them (found structurally by the caller:
    ``core_form.match_core`` or the lane compiler): ``query`` on the 2D columns and the lanes, ``key``
    (the key tile) on the 2D rows, ``tile`` the rank the key tiles iterate (None: one tile sequence of an
    unpartitioned key rank), ``contraction`` the score product's reduced rank(s), ``value`` the value
    product's feature rank, ``heads`` one run each, ``groups`` folded into the queries of a run."""

    query: str
    key: str
    tile: str | None
    contraction: tuple[str, ...]
    value: str | None
    heads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def role(self, rank: str) -> str | None:
        if rank in self.heads:
            return "run"
        if rank == self.query or rank in self.groups:
            return "query_block"
        if rank == self.tile or (self.tile is None and rank == self.key):
            return "key_tile"
        if rank in self.contraction:
            return "contraction"
        if rank == self.value:
            return "value"
        return None


@dataclass(frozen=True)
class LoopCounter:
    """One counter of the core: the schedule's temporal loops of ``ranks`` (``levels``: (level, rank,
    extent), outer to inner) flattened into ``bound`` iterations, ``width`` bits (counts 0..bound-1)."""

    role: str
    ranks: tuple[str, ...]
    bound: int
    width: int
    levels: tuple[tuple[str, str, int], ...]
    drives: str

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "ranks": list(self.ranks), "bound": self.bound, "width": self.width,
                "levels": [list(x) for x in self.levels], "drives": self.drives}


@dataclass(frozen=True)
class Phase:
    """One Einsum of the fused group, in topological order: its array, op classes and what runs it."""

    einsum: str
    array: str
    ops: tuple[str, ...]
    runs_on: str

    def to_dict(self) -> dict[str, Any]:
        return {"einsum": self.einsum, "array": self.array, "ops": list(self.ops), "runs_on": self.runs_on}


@dataclass(frozen=True)
class BufferNeed:
    """An input buffer: ``resident`` elements the schedule keeps (its reuse residency), the ``words``
    per bank that holds (``banks`` banks of ``word`` elements), and the depth the core is built with."""

    tensor: str
    banks: int
    word: int
    resident: int
    words: int
    built_words: int
    field: str

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "banks": self.banks, "word_elements": self.word,
                "resident_elements": self.resident, "words_per_bank": self.words,
                "built_words_per_bank": self.built_words, "sized_by": self.field}


@dataclass(frozen=True)
class CoreStructure:
    """The core a schedule describes: counters (outer to inner), phases, the 2D template's Einsums,
    the 1D units (op class -> Einsums), the input buffers; ``queries_per_run`` and ``runs``."""

    counters: tuple[LoopCounter, ...]
    phases: tuple[Phase, ...]
    template_2d: tuple[str, ...]
    units_1d: Mapping[str, tuple[str, ...]]
    buffers: tuple[BufferNeed, ...]
    queries_per_run: int
    keys: int
    runs: int
    notes: tuple[str, ...] = field(default=())

    def counter(self, role: str) -> LoopCounter | None:
        return next((c for c in self.counters if c.role == role), None)

    def bound(self, role: str) -> int:
        c = self.counter(role)
        return c.bound if c is not None else 1

    def to_dict(self) -> dict[str, Any]:
        return {"loop_nest": [c.to_dict() for c in self.counters], "phases": [p.to_dict() for p in self.phases],
                "template_2d": list(self.template_2d), "units_1d": {k: list(v) for k, v in self.units_1d.items()},
                "buffers": [b.to_dict() for b in self.buffers], "queries_per_run": self.queries_per_run,
                "keys": self.keys, "runs": self.runs}


def is_sum_product(einsum: Any) -> bool:
    """A scheduled Einsum that is a multiply-accumulate with a sum reduction (the 2D template's op)."""
    return "mac" in einsum.ops_per_point and bool(einsum.reduced_ranks)


def derive_structure(schedule: Any, ranks: CoreRanks, *, rows: int, cols: int, units_1d: Mapping[str, str],
                     capacity: Mapping[str, tuple[int, str]], views: Mapping[str, tuple[str, ...]] = {},
                     drives: Mapping[str, str] = DRIVES) -> CoreStructure:
    """The core's structure from ``schedule`` (one fused group; see :class:`CoreStructure`).

    ``units_1d``: op class -> the 1D unit of the core that runs it; ``capacity``: input tensor ->
    (words per bank the core can build, the arch field that sets it); ``views``: input tensor -> the
    ranks its partition views iterate (``M`` -> ``M1, M0``).  Raises :class:`MappingError` naming the
    mapping field (loop_order, binding, groups, tiling) or an arch field when the core cannot run it.
    ``drives``: role -> what that counter drives in the core being built (default: the fixed core's)."""
    from einloom.base.errors import MappingError
    mapping = schedule.mapping

    def fail(message: str, *path: Any, hint: str) -> MappingError:
        return MappingError(message, location=mapping.where(*path), hint=hint)

    if len(schedule.groups) != 1:
        raise fail(f"the schedule has {len(schedule.groups)} fusion groups; the core runs one group with every "
                   "Einsum interleaved", "groups", hint="write groups: [{einsums: all, pipeline: interleave}]")
    group = schedule.groups[0]
    # ---- counters: the temporal loops, per role, outer to inner --------------------------------
    per_role: dict[str, list[tuple[str, str, int]]] = {}
    order: list[str] = []
    first_at: dict[str, int] = {}
    last_at: dict[str, int] = {}
    for i, lp in enumerate(group.loops):
        if lp.kind != "temporal":
            continue
        role = ranks.role(lp.rank)
        if role is None:
            raise fail(f"the schedule loops over {lp.rank} ({lp.extent} at {lp.level}); the core has no counter for "
                       f"a rank that is neither a head, the queries, the key tiles nor a product's feature rank",
                       "tiling", lp.rank, hint=f"give {lp.rank} one coordinate, or leave --mapping out")
        if role not in per_role:
            order.append(role)
            first_at[role] = i
        per_role.setdefault(role, []).append((lp.level, lp.rank, lp.extent))
        last_at[role] = i
    sequence = ("run", "query_block", "key_tile", "contraction", "value")

    def level_of(role: str, at: dict[str, int]) -> str:
        lp = group.loops[at[role]]
        return f"{lp.rank} at {lp.level}"

    for outer_i, outer in enumerate(sequence):
        for inner in sequence[outer_i + 1:]:
            if outer in per_role and inner in per_role and first_at[inner] < last_at[outer]:
                if {outer, inner} == {"contraction", "value"}:
                    continue        # the two products' feature loops are separate slot phases
                lvl = group.loops[first_at[inner]].level
                raise fail(f"the loop nest has {level_of(inner, first_at)} outside {level_of(outer, last_at)}: the "
                           f"core's {inner.replace('_', ' ')} counter runs inside its {outer.replace('_', ' ')} "
                           f"counter ({'it keeps the running state of one query block only' if inner == 'key_tile' else 'one slot at a time'})",
                           "loop_order", lvl, hint=f"order the loops {' > '.join(per_role[r][0][1] for r in sequence if r in per_role)}, "
                                                   "or leave --mapping out")
    for role in ("contraction", "value"):
        for level, rank, _extent in per_role.get(role, []):
            if level != "PE":
                raise fail(f"the schedule loops over {rank} at {level}; the core runs {rank} in time inside each PE "
                           "(one element per cycle of a slot)", "tiling", rank,
                           hint=f"tile {rank} in the PE: tiling: {{{rank}: {{PE: {schedule.sizes[rank]}}}}}")
    sizes = schedule.sizes
    queries = prod(sizes.get(r, 1) for r in (ranks.query,) + ranks.groups)
    on_cols = max((f for e in schedule.einsums.values() for r, dim, f in e.spatial
                   if r == ranks.query and dim == "2d.cols"), default=1)
    counters = []
    for role in sequence:
        if role not in per_role:
            continue
        levels = tuple(per_role[role])
        bound = prod(x[2] for x in levels)
        if role == "query_block":       # a run's queries of every group are one block sequence (query_fold)
            bound = -(-queries // on_cols)
        counters.append(LoopCounter(role, tuple(dict.fromkeys(x[1] for x in levels)), bound,
                                    max(1, (bound - 1).bit_length()), levels, drives[role]))
    # ---- phases, 2D template, 1D units ------------------------------------------------------------
    phases, template, units = [], [], {}
    for name in group.einsums:
        e = schedule.einsums[name]
        ops = tuple(sorted(e.ops_per_point))
        if e.array == "2d":
            if not is_sum_product(e):
                raise fail(f"Einsum {name} ({', '.join(ops)}) is bound to the 2D array, whose template runs only "
                           "multiply-accumulates with a sum reduction", "binding", name,
                           hint=f"bind {name} to 1d")
            spatial = {dim: r for r, dim, f in e.spatial if f > 1}
            if ranks.key in e.iteration_ranks and spatial.get("2d.rows") != ranks.key:
                raise fail(f"Einsum {name} does not put the key tile {ranks.key} on the 2D rows (it has "
                           f"{spatial.get('2d.rows', 'nothing')} there)", "spatial", hint=f"spatial: {{2d: {{rows: [{ranks.key}]}}}}")
            stationary = "output-stationary" if ranks.key not in e.reduced_ranks else "weight-stationary"
            template.append(name)
            phases.append(Phase(name, "2d", ops, f"2D template ({stationary} multiply-accumulate over "
                                                  f"{', '.join(e.reduced_ranks)})"))
            continue
        if is_sum_product(e) and any(r == ranks.key for r in e.reduced_ranks):
            raise fail(f"Einsum {name} is a product summed over the keys bound to the 1D array; the core's lanes "
                       "have no dot-product unit (the 2D template computes it)", "binding", name, hint=f"bind {name} to 2d")
        used = []
        for op in ops:
            unit = units_1d.get(op)
            if unit is None:
                raise fail(f"Einsum {name} needs a 1D '{op}' unit, which the core's lanes do not have (they have "
                           f"{', '.join(sorted(units_1d))})", "binding", name,
                           hint="the fixed core runs the softmax family; other op classes run on the lane core")
            units.setdefault(op, []).append(name)
            used.append(unit)
        phases.append(Phase(name, "1d", ops, "1D lanes: " + ", ".join(dict.fromkeys(used))))
    # ---- buffers from the residency ------------------------------------------------------------
    keys = sizes[ranks.key] * (sizes[ranks.tile] if ranks.tile else 1)
    runs = prod(sizes.get(r, 1) for r in ranks.heads)
    buffers = []
    for tensor, (built, fld) in capacity.items():
        own = set(views.get(tensor, ()))
        resident = _resident(group.loops, own)
        banks = cols if ranks.query in own else rows
        word = next((sizes[r] for r in (ranks.contraction + ((ranks.value,) if ranks.value else ())) if r in own), 1)
        words = -(-resident // (banks * word))
        # the load protocol stores a run's queries and keys whole before it computes
        words = max(words, -(-(queries if tensor_is_query(own, ranks) else keys) // banks))
        if words > built:
            raise MappingError(f"the schedule keeps {resident} elements of {tensor} resident ({words} words per bank), "
                               f"but the core's buffer holds {built} words per bank ({fld})",
                               location=mapping.where("tiling"),
                               hint=f"raise {fld} in the architecture, or use a shorter sequence")
        buffers.append(BufferNeed(tensor, banks, word, resident, words, built, fld))
    return CoreStructure(tuple(counters), tuple(phases), tuple(template),
                         {k: tuple(v) for k, v in units.items()}, tuple(buffers), queries, keys, runs)


def tensor_is_query(own: set[str], ranks: CoreRanks) -> bool:
    return ranks.query in own


def _resident(loops: Any, own: set[str]) -> int:
    """Elements of a tensor indexed by ``own`` that the loop nest keeps resident: the extents of its
    ranks' loops (temporal and spatial) below the outermost loop over a rank it does not carry (the
    loop that re-reads it), over all loops when none."""
    start = next((i for i, lp in enumerate(loops) if lp.kind == "temporal" and lp.rank not in own), -1)
    seen: dict[tuple[str, str], int] = {}
    for lp in loops[start + 1:]:
        if lp.rank in own:
            key = (lp.rank, lp.level if lp.kind == "temporal" else "spatial")
            seen[key] = max(seen.get(key, 1), lp.extent) if lp.kind != "temporal" else seen.get(key, 1) * lp.extent
    return prod(seen.values()) if seen else 1
