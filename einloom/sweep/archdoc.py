"""Architecture documents with fields overridden by dotted path, re-validated by the architecture reader.

A sweep varies "any field of an architecture file": ``array_2d.rows``, ``global_buffer.capacity_bytes``,
``clock_mhz``, ``array_1d.units.div``, ``data`` ... .  The base file is parsed as plain YAML data (the
*document*), a point's values are written into a deep copy at their paths, and the result goes back
through :func:`einloom.cost_models.arch.arch_from_dict`, so a bad value gets the architecture reader's
normal message (which field, what is wrong, what to write).

Limits: a path must lead through existing mappings; its last key may be new (an optional field such as
``technology_nm`` or ``global_buffer.banks``), and the reader then decides whether that key is allowed.
List elements are addressed by their index (``a.0.b``).
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
from typing import Any, Mapping

from einloom.einsum.errors import EinloomError
from einloom.sweep.errors import SweepError


def load_arch_document(ref: str) -> tuple[dict[str, Any], str]:
    """The parsed YAML of an architecture (a preset name or a file; plain dicts and lists) and its file.

    The architecture is loaded once by :func:`einloom.cost_models.arch.load_arch` first, so a bad
    base file or an unknown preset gets that reader's own file:line message.
    """
    from einloom.cost_models.arch import load_arch
    from einloom.einsum.errors import ArchError
    from einloom.einsum.yamlio import load_yaml
    path = str(load_arch(ref).file)
    data, _ = load_yaml(path, error=ArchError)
    return data, path


def split_path(path: str) -> tuple[str | int, ...]:
    """``'array_2d.rows'`` -> ``('array_2d', 'rows')``; digit parts index lists."""
    parts = path.split(".")
    if not path or any(not p for p in parts):
        raise ValueError(f"'{path}' is not a dotted field path (write e.g. array_2d.rows)")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def check_path(document: Mapping[str, Any], path: str) -> None:
    """Raise ValueError (with a did-you-mean) unless every parent of ``path`` exists in ``document``."""
    keys = split_path(path)
    node: Any = document
    for depth, key in enumerate(keys[:-1]):
        node = _child(node, key, keys[:depth + 1])
    if isinstance(keys[-1], int):
        _child(node, keys[-1], keys)
    elif not isinstance(node, dict):
        raise ValueError(f"'{'.'.join(map(str, keys[:-1]))}' is not a mapping, so it has no field '{keys[-1]}'")
    elif keys[-1] not in node:
        # a new optional field is fine; a near-miss of an existing one is a typo
        close = difflib.get_close_matches(str(keys[-1]), [str(k) for k in node], n=1, cutoff=0.7)
        if close:
            raise ValueError(f"the architecture has no field '{path}' "
                             f"(did you mean '{'.'.join(map(str, keys[:-1] + (close[0],)))}'?)")


def _child(node: Any, key: str | int, walked: tuple[str | int, ...]) -> Any:
    where = ".".join(map(str, walked))
    if isinstance(node, dict):
        if key in node:
            return node[key]
        close = difflib.get_close_matches(str(key), [str(k) for k in node], n=1)
        raise ValueError(f"the architecture has no field '{where}'"
                         + (f" (did you mean '{'.'.join(map(str, walked[:-1] + (close[0],)))}'?)" if close else
                            f"; fields here: {', '.join(map(str, node))}"))
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    raise ValueError(f"the architecture has no field '{where}'")


def with_overrides(document: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``document`` with ``{dotted path: value}`` written in (paths checked first)."""
    out = _copy(document)
    for path, value in overrides.items():
        check_path(out, path)
        keys = split_path(path)
        node: Any = out
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(value)
    return out


def build_arch(document: Mapping[str, Any], label: str) -> Any:
    """Validate ``document`` with the architecture reader; its errors are re-raised naming ``label``."""
    from einloom.cost_models.arch import arch_from_dict
    try:
        return arch_from_dict(_copy(document), None, file=label)
    except EinloomError as exc:
        where = exc.location.field or ""
        raise SweepError(f"{label}: {where + ': ' if where else ''}{exc.message}", hint=exc.hint) from None


def _copy(document: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of plain YAML data (a JSON round trip: several times faster than copy.deepcopy)."""
    try:
        return json.loads(json.dumps(document))
    except (TypeError, ValueError):     # a YAML value JSON cannot hold (a date): fall back
        return copy.deepcopy(dict(document))


def document_hash(document: Mapping[str, Any]) -> str:
    """A stable hash of an architecture document (canonical JSON)."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
