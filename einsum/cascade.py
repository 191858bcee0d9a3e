"""The typed, validated form of a cascade (what the rest of einloom reads).

A :class:`Cascade` is built only by :func:`einloom.einsum.loader.cascade_from_dict` (from YAML or from
:class:`einloom.einsum.builder.CascadeBuilder`), which checks everything; past that point code trusts it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from einloom.einsum.expr import Access, Expr, to_text


def rank_of(var: str) -> str:
    """The rank a rank variable iterates over (``m1`` -> ``M1``)."""
    return var.upper()


def var_of(rank: str) -> str:
    """The rank variable of a rank (``M1`` -> ``m1``)."""
    return rank.lower()


@dataclass(frozen=True)
class TensorDecl:
    """A tensor and its rank order.  ``iterative_rank`` is set for running-state tensors (``RM``),
    whose storage holds extent + 1 iterates along that rank."""

    name: str
    ranks: tuple[str, ...]
    role: str  # "input", "output", "intermediate"
    iterative_rank: str | None = None


@dataclass(frozen=True)
class Partition:
    """``root`` rank indexed as ``outer * stride + inner`` (e.g. M -> (M1, M0) with stride M0)."""

    root: str
    outer: str
    inner: str
    stride: Expr


@dataclass(frozen=True)
class Einsum:
    """One extended Einsum ``output = expr``.

    Attributes
    ----------
    name
        The output tensor's name (unique in the cascade).
    output_vars
        Left-hand-side rank variables in order (the iterative variable included as itself).
    iterative_var
        The variable written as ``v+1`` on the left, or None.
    reduced_vars
        Variables summed implicitly (absent from the output, not reduced explicitly).
    explicit_reduced_vars
        Variables reduced by explicit ``op[...]`` reductions.
    iteration_vars
        All variables of the iteration space: output first, then reduced ones.
    """

    name: str
    output: Access
    expr: Expr
    text: str
    line: int | None
    output_vars: tuple[str, ...]
    iterative_var: str | None
    implicit_vars: tuple[str, ...]
    explicit_reduced_vars: tuple[str, ...]
    iteration_vars: tuple[str, ...]
    inputs: tuple[str, ...]

    @property
    def reduced_vars(self) -> tuple[str, ...]:
        return self.implicit_vars + tuple(v for v in self.explicit_reduced_vars if v not in self.implicit_vars)

    @property
    def iteration_ranks(self) -> tuple[str, ...]:
        return tuple(rank_of(v) for v in self.iteration_vars)

    @property
    def reduced_ranks(self) -> tuple[str, ...]:
        return tuple(rank_of(v) for v in self.reduced_vars)

    @property
    def iterative_rank(self) -> str | None:
        return rank_of(self.iterative_var) if self.iterative_var else None

    def canonical_text(self) -> str:
        return f"{to_text(self.output)} = {to_text(self.expr)}"


@dataclass(frozen=True)
class InitValue:
    """Initial iterate of an iterative tensor: ``RM[0, p]: -inf``."""

    target: Access
    value: Expr
    line: int | None

    @property
    def tensor(self) -> str:
        return self.target.tensor


@dataclass(frozen=True)
class Cascade:
    """A validated cascade of extended Einsums."""

    name: str
    description: str
    source: str
    params: dict[str, Expr]
    rank_defaults: dict[str, Expr]
    tensors: dict[str, TensorDecl]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    init: tuple[InitValue, ...]
    einsums: tuple[Einsum, ...]
    partitions: tuple[Partition, ...]
    sequence_rank: str
    reference: dict[str, Any] | None = None
    file: str | None = None
    ranks: tuple[str, ...] = field(default=())

    def einsum(self, name: str) -> Einsum:
        for einsum in self.einsums:
            if einsum.name == name:
                return einsum
        raise KeyError(name)

    def producer(self, tensor: str) -> Einsum | None:
        for einsum in self.einsums:
            if einsum.name == tensor:
                return einsum
        return None

    @property
    def intermediates(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.einsums if e.name not in self.outputs)

    def root_ranks(self, rank: str) -> frozenset[str]:
        """The input ranks a rank is partitioned from (itself if it is not a partition)."""
        roots: set[str] = set()
        todo = [rank]
        seen = set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            parents = [p.root for p in self.partitions if current in (p.outer, p.inner)]
            if parents:
                todo.extend(parents)
            else:
                roots.add(current)
        return frozenset(roots)

    def __str__(self) -> str:
        from einloom.einsum.printer import cascade_to_yaml
        return cascade_to_yaml(self)
