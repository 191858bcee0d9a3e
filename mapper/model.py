"""What the mapper needs to know about a cascade, in one flat, hardware-agnostic view.

:class:`CascadeView` gathers, for one set of rank sizes, each Einsum's iteration space, reduced
ranks, operands and op counts (from :func:`einloom.einsum.analysis.analyse`), every tensor's ranks,
which tensors are inputs, outputs and partition views (``BK``, ``BV``: Einsums without arithmetic
that only re-index an input), and the pass level of every Einsum along each root rank.  The evaluator
reads only this view, so tests can build one by hand (:meth:`CascadeView.from_parts`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, Iterable, Mapping

from einloom.einsum.errors import MappingError


@dataclass(frozen=True)
class EinsumInfo:
    """One Einsum as the mapper sees it.

    ``inputs`` excludes the Einsum's own previous iterate; ``carried`` lists the inputs read at the
    previous iterate of an iterative rank (``RD`` in ``SPD = PRM * RD[m1]``), which do not order the
    Einsums within one iteration.
    """

    name: str
    iteration_ranks: tuple[str, ...]
    reduced_ranks: tuple[str, ...]
    inputs: tuple[str, ...]
    ops: Mapping[str, int]
    iterative_rank: str | None = None
    carried: tuple[str, ...] = ()
    reads_self: bool = False
    levels: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_view(self) -> bool:
        """True for Einsums with no arithmetic (rank-partitioning views such as ``BK``)."""
        return not any(self.ops.values())

    def points(self, sizes: Mapping[str, int]) -> int:
        """Points of the iteration space."""
        return prod(sizes[r] for r in self.iteration_ranks)

    def out_points(self, sizes: Mapping[str, int]) -> int:
        """Output elements written (every iterate counted for an iterative rank)."""
        return prod(sizes[r] for r in self.iteration_ranks if r not in self.reduced_ranks)


@dataclass(frozen=True)
class CascadeView:
    """A cascade at fixed rank sizes (see the module docstring)."""

    name: str
    einsums: tuple[EinsumInfo, ...]
    sizes: Mapping[str, int]
    tensor_ranks: Mapping[str, tuple[str, ...]]
    inputs: frozenset[str]
    outputs: frozenset[str]
    views: Mapping[str, str]                 # view tensor -> the input it re-indexes
    roots: Mapping[str, frozenset[str]]      # rank -> root ranks it is partitioned from
    iterative: Mapping[str, str] = field(default_factory=dict)   # tensor -> its iterative rank
    params: Mapping[str, Any] = field(default_factory=dict)
    masks: Mapping[str, Any] = field(default_factory=dict)      # einsum -> masks.Mask (coordinate masks)
    instances: int = 1                                          # copies run one after another
    instance_note: str = ""

    def with_instances(self, instances: int, note: str = "") -> "CascadeView":
        """The same view run ``instances`` times (see :func:`einloom.mapper.lower.instances_for`)."""
        from dataclasses import replace
        return replace(self, instances=int(instances), instance_note=note)

    # -- lookups --------------------------------------------------------------------------------
    def einsum(self, name: str) -> EinsumInfo:
        for e in self.einsums:
            if e.name == name:
                return e
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.einsums)

    @property
    def compute_einsums(self) -> tuple[EinsumInfo, ...]:
        """Einsums that do arithmetic (everything but partition views)."""
        return tuple(e for e in self.einsums if not e.is_view)

    def consumers(self, tensor: str) -> list[tuple[EinsumInfo, bool]]:
        """``(einsum, carried)`` for every Einsum that reads ``tensor`` (not its own iterate)."""
        out = []
        for e in self.einsums:
            if tensor in e.inputs and e.name != tensor:
                out.append((e, tensor in e.carried))
        return out

    def tensor_elements(self, tensor: str) -> int:
        """Elements of one instance of ``tensor`` (one iterate for running state)."""
        it = self.iterative.get(tensor)
        return prod(self.sizes[r] for r in self.tensor_ranks[tensor] if r != it)

    def is_dram_input(self, tensor: str) -> bool:
        return tensor in self.inputs or tensor in self.views

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_parts(cls, name: str, einsums: Iterable[EinsumInfo], sizes: Mapping[str, int],
                   tensor_ranks: Mapping[str, Iterable[str]], inputs: Iterable[str], outputs: Iterable[str],
                   views: Mapping[str, str] | None = None,
                   roots: Mapping[str, Iterable[str]] | None = None) -> "CascadeView":
        """Build a view by hand (tests, GEMMs of the linear layers)."""
        einsums = tuple(einsums)
        roots = {r: frozenset(v) for r, v in (roots or {}).items()}
        for r in sizes:
            roots.setdefault(r, frozenset({r}))
        iterative = {e.name: e.iterative_rank for e in einsums if e.iterative_rank}
        return cls(name, einsums, dict(sizes), {t: tuple(r) for t, r in tensor_ranks.items()},
                   frozenset(inputs), frozenset(outputs), dict(views or {}), roots, iterative)

    @classmethod
    def from_cascade(cls, cascade: Any, sizes: Mapping[str, int]) -> "CascadeView":
        """Analyse ``cascade`` at ``sizes`` (only ranks and params the cascade declares are used)."""
        from einloom.einsum.analysis import analyse

        known = set(getattr(cascade, "ranks", ()) or ()) | set(getattr(cascade, "params", {}) or {})
        for t in cascade.tensors.values():
            known.update(t.ranks)
        use = {k: int(v) for k, v in sizes.items() if k in known}
        analysis = analyse(cascade, use)
        rank_sizes = dict(analysis.rank_sizes)
        ops = analysis.op_counts
        levels = {e.name: dict(e.levels) for e in analysis.einsums}
        carried: dict[str, set[str]] = {}
        for src, dst, data in analysis.graph.edges(data=True):
            if data.get("kind") == "carried":
                carried.setdefault(dst, set()).add(src)
        infos = []
        views: dict[str, str] = {}
        for e in cascade.einsums:
            inputs = tuple(t for t in dict.fromkeys(e.inputs) if t != e.name)
            info = EinsumInfo(e.name, tuple(e.iteration_ranks), tuple(e.reduced_ranks), inputs,
                              {k: int(v) for k, v in ops.get(e.name, {}).items() if v},
                              e.iterative_rank, tuple(sorted(carried.get(e.name, set()) - {e.name})),
                              e.name in e.inputs, levels.get(e.name, {}))
            if info.is_view and len(inputs) == 1 and inputs[0] in cascade.inputs:
                views[e.name] = inputs[0]
            infos.append(info)
        tensor_ranks = {name: tuple(t.ranks) for name, t in cascade.tensors.items()}
        roots = {r: frozenset(cascade.root_ranks(r)) for r in rank_sizes}
        iterative = {name: t.iterative_rank for name, t in cascade.tensors.items() if t.iterative_rank}
        params = dict(analysis.params or {})
        return cls(cascade.name, tuple(infos), rank_sizes, tensor_ranks, frozenset(cascade.inputs),
                   frozenset(cascade.outputs), views, roots, iterative, params,
                   _masks(cascade, rank_sizes, params))


def _masks(cascade: Any, sizes: Mapping[str, int], params: Mapping[str, float]) -> dict[str, Any]:
    """Each Einsum's coordinate mask (see :mod:`einloom.mapper.masks`)."""
    from einloom.mapper.masks import build_mask, mask_predicate

    partitions = [(p.root, p.outer, p.inner, int(sizes[p.inner])) for p in getattr(cascade, "partitions", ())
                  if p.inner in sizes and p.outer in sizes and p.root in sizes]
    out = {}
    for e in cascade.einsums:
        predicate = mask_predicate(e.expr, set(cascade.tensors))
        if predicate is not None:
            out[e.name] = build_mask(e.name, predicate, e.text, tuple(e.iteration_ranks), partitions, sizes, params)
    return out


def held_roots(view: CascadeView, tensor: str) -> frozenset[str]:
    """Root ranks along which ``tensor`` must be held on chip for a later pass.

    A tensor is held along root rank R when one of its (non-carried) consumers runs in a later pass
    over R than its producer (FuseMax §III): the consumer needs values the producer wrote during an
    earlier traversal of R.
    """
    try:
        producer = view.einsum(tensor)
    except KeyError:
        return frozenset()
    held = set()
    for consumer, carried in view.consumers(tensor):
        if carried:
            continue
        for root, level in consumer.levels.items():
            if level > producer.levels.get(root, 0):
                held.add(root)
    return frozenset(held)


def require_known(view: CascadeView, names: Iterable[str], what: str, where) -> None:
    """Raise MappingError (at ``where(name)``) for a name the cascade does not have."""
    import difflib
    known = set(view.names)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            raise MappingError(f"unknown Einsum '{name}' in {what} (cascade {view.name})",
                               location=where(name),
                               hint=(f"did you mean '{close[0]}'? " if close else "")
                               + "Einsums: " + ", ".join(view.names))
