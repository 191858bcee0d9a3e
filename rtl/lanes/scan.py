"""Per-key scans the lanes run themselves (aaren: attention as an RNN).

A cascade whose states iterate over the key rank itself (not a tile rank) and are read by no
multiply-accumulate product, with no product reducing the key rank, is a **scan**: one state per
(key, lane) updated at every key from the key's scores and per-key inputs, with an output at every
key.  Aaren: ``RM[m+1] = max(RM[m], S[m])``, ``RU[m+1] = RU[m] * PRM[m] + SN[m]``, ``RW[m+1, f] = RW[m, f]
* PRM[m] + SN[m] * V[f, m]``, ``O[f, m] = RW[m+1, f] / RU[m+1]``.  The lanes are the states' one rank
besides the key rank (``f``): each lane runs the whole scan over the keys (the scalar states ``RM``,
``RU`` replicated in every lane), reading the key's score (a score product without a query rank: the
query-side operand broadcast to every column) and its per-key inputs at ``[key, lane]`` (direct slots),
and emits its output at every key (``out`` in the ``score`` section).

In the golden model ``SN[m] * V[f, m]`` is a plain ``mul`` (not a ``mac``), which the lanes' mul unit
computes bit for bit; a value product in the 2D array would round differently.

:func:`scan_ranks` finds the structure from the ranks and dependences (never names).
"""
from __future__ import annotations

from einloom.einsum.cascade import Cascade, rank_of
from einloom.einsum.expr import Reduce


def scan_ranks(cascade: Cascade) -> tuple[str, str] | None:
    """``(key rank, lane rank)`` when ``cascade`` is a per-key scan the lanes run (module docstring),
    else None (the other per-key structures: ``rtl/lanes/recurrence.py``)."""
    from einloom.rtl.lanes.recurrence import _key_states
    states = _key_states(cascade)
    if not states:
        return None
    keys = {cascade.tensors[s].iterative_rank for s in states}
    if len(keys) != 1:
        return None
    key = keys.pop()
    lane_ranks = {r for s in states for r in cascade.tensors[s].ranks[1:]}
    if len(lane_ranks) != 1 or key in lane_ranks:
        return None
    lane = next(iter(lane_ranks))
    for e in cascade.einsums:
        red = (tuple(e.expr.vars) if isinstance(e.expr, Reduce) else ()) + tuple(e.implicit_vars)
        reduced = {rank_of(v) for v in red}
        if reduced and (key in reduced or set(e.inputs) & set(states)):
            return None                 # a value product over the keys, or a product reading a state
        outs = {r for r in cascade.tensors[e.name].ranks}
        if not outs <= {key, lane}:
            return None                 # a query or head rank: not one scan per lane
    return key, lane


def is_scan(cascade: Cascade) -> bool:
    return scan_ranks(cascade) is not None


__all__ = ["scan_ranks", "is_scan"]
