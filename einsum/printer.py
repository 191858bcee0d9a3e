"""Canonical YAML text of a cascade (``print -> parse -> print`` is the identity)."""
from __future__ import annotations

import json

from einloom.einsum.cascade import Cascade
from einloom.einsum.expr import Num, format_number, to_text


def _scalar(text: str) -> str:
    """A YAML scalar that reads back as the same string."""
    return json.dumps(text)


def _value(expr) -> str:
    if isinstance(expr, Num):
        return format_number(expr.value) if abs(expr.value) != float("inf") else _scalar(format_number(expr.value))
    return _scalar(to_text(expr))


def cascade_to_yaml(cascade: Cascade) -> str:
    lines = [f"name: {cascade.name}"]
    if cascade.description:
        lines.append(f"description: {_scalar(cascade.description)}")
    if cascade.source:
        lines.append(f"source: {_scalar(cascade.source)}")
    lines.append(f"sequence_rank: {cascade.sequence_rank}")
    if cascade.rank_defaults:
        lines.append("ranks:")
        lines += [f"  {rank}: {_value(expr)}" for rank, expr in cascade.rank_defaults.items()]
    if cascade.params:
        lines.append("params:")
        lines += [f"  {name}: {_value(expr)}" for name, expr in cascade.params.items()]
    lines.append("tensors:")
    for name in cascade.inputs + cascade.outputs:
        lines.append(f"  {name}: [{', '.join(cascade.tensors[name].ranks)}]")
    lines.append(f"inputs: [{', '.join(cascade.inputs)}]")
    lines.append(f"outputs: [{', '.join(cascade.outputs)}]")
    if cascade.init:
        lines.append("init:")
        lines += [f"  {_scalar(to_text(init.target))}: {_value(init.value)}" for init in cascade.init]
    lines.append("einsums:")
    lines += [f"  - {_scalar(einsum.canonical_text())}" for einsum in cascade.einsums]
    if cascade.reference:
        lines.append(f"reference: {json.dumps(cascade.reference)}")
    return "\n".join(lines) + "\n"
