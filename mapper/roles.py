"""Roles of a cascade's Einsums and ranks, found from its structure (never from names).

The baselines (FuseMax, FLAT, Unfused) and the search need to know which Einsum is the score
product, which the row max, the exponent and the value product, and which ranks are key (sequence)
ranks, the query rank, head ranks and feature (head-dimension) ranks.  Everything here is read off
the :class:`~einloom.mapper.model.CascadeView` plus the cascade's declared ``sequence_rank`` and
``partitions``:

* **key ranks**: the sequence rank and every rank partitioned from it (``M``, ``M1``, ``M0``; in
  Lightning also the query block ``P0``).
* a **contraction** is an Einsum with multiply-accumulate ops that reduces a rank.
* **score products**: contractions that reduce no key rank and whose output carries a key rank and
  otherwise only ranks the row max iterates (``QK = Q . K``; MLA's ``QKL`` and ``QKR``; the 2-pass
  recompute ``RQK``; not MLA's key projection ``KH[h, e, m]``, which carries the feature ``E``).
* **value products**: contractions that reduce a key rank (``SLNV``, ``AV = A . V``).
* **row max**: an Einsum with ``max`` ops that reduces a key rank (``LM``, ``GM``).
* **exponents**: Einsums with ``exp`` ops over a key rank downstream of a score product (``SLN``).
* **query rank**: the largest non-key rank of a score product's output that the row max also
  iterates (``P``); the other such ranks are **head ranks** (GQA's ``J``/``G``, MLA's ``H``).
* **feature ranks** (rule, see :func:`feature_ranks`): not a key rank, and either reduced by a
  contraction (``E``, MLA's ``C`` and ``R``) or a rank of some but not all of the inputs that carry
  the sequence rank (``F``: in ``V`` but not in ``K``).  Ranks shared by every key-side input (GQA's
  ``J``) or absent from them and never contracted (``P``, ``G``, ``H``) are not features.  Limit: a
  feature that enters only through a weight and is never contracted (MLA-absorbed's ``F``, from
  ``W_UV``) is not recognised; the search then merely tries more tilings for it.

A cascade is of the **softmax family** when it has a score product, a row max, an exponent and a
value product; it is **1-pass** when its value product reduces the inner rank of a partition of the
sequence rank (the key tile ``M0``), iterating the outer rank (``M1``) as the pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from einloom.mapper.model import CascadeView, EinsumInfo

__all__ = ["Roles", "find_roles", "feature_ranks", "key_ranks", "is_contraction"]


@dataclass(frozen=True)
class Roles:
    """What each Einsum and rank of a softmax-family cascade does (see the module docstring)."""

    sequence_rank: str
    key_ranks: frozenset[str]
    key_rank: str                      # the rank the value product reduces (M, or the key tile M0)
    key_outer: str | None              # the pass rank (M1) of a 1-pass cascade, else None
    query_rank: str
    head_ranks: tuple[str, ...]
    feature_ranks: tuple[str, ...]
    score_products: tuple[str, ...]
    row_max: tuple[str, ...]
    exponents: tuple[str, ...]
    value_products: tuple[str, ...]

    @property
    def one_pass(self) -> bool:
        return self.key_outer is not None


def is_contraction(info: EinsumInfo) -> bool:
    """True for a multiply-accumulate Einsum that reduces a rank (a tensor product)."""
    return bool(info.reduced_ranks) and info.ops.get("mac", 0) > 0


def key_ranks(view: CascadeView, sequence_rank: str | None) -> frozenset[str]:
    """The sequence rank and every rank partitioned from it."""
    if not sequence_rank:
        return frozenset()
    return frozenset(r for r in view.sizes if sequence_rank in view.roots.get(r, frozenset({r})))


def _output_ranks(info: EinsumInfo) -> set[str]:
    return {r for r in info.iteration_ranks if r not in info.reduced_ranks and r != info.iterative_rank}


def feature_ranks(view: CascadeView, sequence_rank: str | None) -> tuple[str, ...]:
    """Feature (head-dimension) ranks of ``view``, in the view's rank order (rule: module docstring)."""
    keys = key_ranks(view, sequence_rank)
    contracted = {r for e in view.compute_einsums if is_contraction(e) for r in e.reduced_ranks}
    key_side = [set(view.tensor_ranks[t]) for t in sorted(view.inputs) if set(view.tensor_ranks[t]) & keys]
    everywhere = set.intersection(*key_side) if key_side else set()
    somewhere = set.union(*key_side) if key_side else set()
    out = []
    for r in view.sizes:
        if r in keys:
            continue
        if r in contracted or (r in somewhere and r not in everywhere):
            out.append(r)
    return tuple(out)


def _downstream(view: CascadeView, sources: set[str]) -> set[str]:
    """Einsums that read (transitively) any of ``sources``."""
    reached = set(sources)
    changed = True
    while changed:
        changed = False
        for e in view.einsums:
            if e.name not in reached and reached & set(e.inputs):
                reached.add(e.name)
                changed = True
    return reached - set(sources)


def find_roles(view: CascadeView, cascade: Any = None, sequence_rank: str | None = None) -> Roles | None:
    """The roles of a softmax-family cascade, or None when one of them is missing.

    ``sequence_rank`` defaults to the cascade's declared one.
    """
    seq = sequence_rank or getattr(cascade, "sequence_rank", None)
    keys = key_ranks(view, seq)
    if not keys:
        return None
    compute = view.compute_einsums
    row_max = tuple(e.name for e in compute if e.ops.get("max", 0) and set(e.reduced_ranks) & keys)
    if not row_max:
        return None
    # a score is indexed by key ranks and the row max's row ranks only (MLA's K projection KH[h, e, m]
    # carries the feature E and is not a score)
    row_space = keys | set(view.einsum(row_max[0]).iteration_ranks)
    scores = tuple(e.name for e in compute if is_contraction(e) and _output_ranks(e) & keys
                   and _output_ranks(e) <= row_space and not set(e.reduced_ranks) & keys)
    values = tuple(e.name for e in compute if is_contraction(e) and set(e.reduced_ranks) & keys)
    after_scores = _downstream(view, set(scores))
    exps = tuple(e.name for e in compute if e.ops.get("exp", 0) and set(e.iteration_ranks) & keys
                 and e.name in after_scores)
    if not (scores and values and row_max and exps):
        return None
    first_max = view.einsum(row_max[0])
    rows = [r for r in view.sizes if r not in keys and r in _output_ranks(view.einsum(scores[0]))
            and r in first_max.iteration_ranks]
    if not rows:
        return None
    query = max(rows, key=lambda r: (view.sizes[r], -rows.index(r)))
    # the key rank: what the (first) value product reduces; 1-pass when that is a partition's inner rank
    key = next(r for r in view.einsum(values[0]).reduced_ranks if r in keys)
    outer = None
    for p in getattr(cascade, "partitions", ()) or ():
        if p.inner == key and p.root == seq and p.outer in view.sizes:
            outer = p.outer
    return Roles(seq, keys, key, outer, query, tuple(r for r in rows if r != query),
                 feature_ranks(view, seq), scores, row_max, exps, values)
