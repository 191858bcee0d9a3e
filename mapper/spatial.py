"""Per-Einsum spatial assignments: which of an Einsum's ranks to spread over an array's dimensions.

Shared by the search and the baselines.  An assignment maps each dimension of an array (``rows``,
``cols``; ``lanes``) to at most one rank, drawn only from the ranks the Einsum itself iterates (never
its iterative rank, which carries a dependence), so no assignment can put a rank on a dimension that
runs no Einsum using it (the accounting hole: the lowering rejects that).  Its cost is the number of
temporal steps left, ``prod_{r spatial} ceil(|r| / min(|r|, width)) x prod_{r temporal} |r|``, which
is the Einsum's cycles divided by its per-point initiation interval.  Limits: one rank per dimension
(no rank products such as ``cols: [F, E]``), and widths are taken per dimension, so when two
Einsums put one rank on dimensions of different widths the evaluator, not this estimate, has the
final word (the estimate is then a lower bound, which is what a search floor needs).
"""
from __future__ import annotations

import itertools
from math import prod
from typing import Any, Mapping

from einloom.einsum.errors import ArchError
from einloom.mapper.model import EinsumInfo

__all__ = ["Assignment", "runnable_arrays", "assignments", "best_assignment", "steps"]

#: dimension -> ranks on it (one rank, or none: ``()``), the Mapping's ``spatial`` form for one array.
#: Every dimension is listed, so as a ``spatial_overrides`` entry it replaces the array's default whole.
Assignment = dict[str, tuple[str, ...]]


def runnable_arrays(hw: Any, info: EinsumInfo) -> list[str]:
    """The arrays of ``hw`` that have a unit for every op of ``info``."""
    arrays = []
    for array in hw.dims:
        try:
            for op in info.ops:
                hw.op_cost(array, op)
        except ArchError:
            continue
        arrays.append(array)
    return arrays


def steps(info: EinsumInfo, sizes: Mapping[str, int], widths: Mapping[str, int]) -> int:
    """Temporal steps of ``info`` with rank r spread ``min(|r|, widths[r])`` wide (absent: temporal)."""
    return prod(-(-sizes[r] // min(sizes[r], widths[r])) if r in widths and r != info.iterative_rank
                else sizes[r] for r in info.iteration_ranks)


def assignments(info: EinsumInfo, dims: Mapping[str, int], sizes: Mapping[str, int],
                exclude: frozenset[str] | set[str] = frozenset()) -> list[tuple[int, Assignment]]:
    """Every assignment of ``info``'s ranks (but ``exclude``) to the dimensions ``dims`` (name ->
    width), with its steps, fewest steps first (ties: fewer dimensions used, then rank order)."""
    ranks = [r for r in info.iteration_ranks if r != info.iterative_rank and sizes[r] > 1 and r not in exclude]
    names = list(dims)
    out = []
    for combo in itertools.product([None] + ranks, repeat=len(names)):
        used = [r for r in combo if r is not None]
        if len(used) != len(set(used)):
            continue
        widths = {r: dims[d] for d, r in zip(names, combo) if r is not None}
        out.append((steps(info, sizes, widths), len(used),
                    {d: (r,) if r is not None else () for d, r in zip(names, combo)}))
    out.sort(key=lambda t: (t[0], t[1]))
    return [(s, a) for s, _, a in out]


def best_assignment(info: EinsumInfo, dims: Mapping[str, int], sizes: Mapping[str, int],
                    prefer: Assignment | None = None, exclude: frozenset[str] | set[str] = frozenset()
                    ) -> Assignment:
    """The assignment with the fewest steps (ranks in ``exclude`` stay temporal); ``prefer`` wins ties."""
    ranked = assignments(info, dims, sizes, exclude)
    best = ranked[0][0]
    if prefer is not None:
        for s, a in ranked:
            if s == best and a == prefer:
                return a
    return ranked[0][1]
