"""YAML loading that remembers line numbers, so errors can name the line of a bad field.

``load_yaml(path_or_text)`` returns plain Python values (dict/list/str/int/float/bool/None) and a
:class:`LineMap` that gives the 1-based line of any key path such as ``("einsums", 3)`` or
``("array_2d", "rows")``.  Every einloom file format (spec, arch, workload, mapping, experiment) uses it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from einloom.einsum.errors import EinloomError, Location, SpecError

KeyPath = tuple[Any, ...]


class LineMap:
    """Line numbers of the nodes of one YAML document, addressed by key path."""

    def __init__(self, lines: dict[KeyPath, int], file: str | None):
        self._lines = lines
        self.file = file

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path``, or of its closest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get(())

    def at(self, *path: Any, field: str | None = None) -> Location:
        """A :class:`Location` for ``path`` (``field`` defaults to the dotted path)."""
        if field is None:
            field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")
        return Location(self.file, self.line(path), field or None)


class _KeyError(Exception):
    """A mapping key that is a list or a mapping (YAML allows it; no einloom file has one)."""

    def __init__(self, line: int, node: yaml.Node):
        super().__init__(line)
        self.line = line
        self.kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _KeyError(key_node.start_mark.line + 1, key_node)
            key = _scalar(key_node)
            result[key] = _walk(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(child, path + (i,), lines) for i, child in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data() if node.tag != "tag:yaml.org,2002:str" \
        else node.value


def load_yaml(source: str | Path, *, text: str | None = None, error: type[EinloomError] = SpecError
              ) -> tuple[Any, LineMap]:
    """Parse a YAML file (or ``text`` with ``source`` as its display name).

    Raises ``error`` (a :class:`EinloomError` subclass) naming the file and line on a syntax error or
    an unreadable file.
    """
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text()
        except FileNotFoundError:
            raise error("file not found", location=Location(name), hint="check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise error(f"cannot read file: {exc}", location=Location(name)) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"YAML syntax error: {problem}", location=Location(name, line),
                    hint="check indentation and quoting; quote strings that contain ':' or '#'") from None
    lines: dict[KeyPath, int] = {}
    if node is None:
        return None, LineMap(lines, name)
    try:
        data = _walk(node, (), lines)
    except yaml.YAMLError as exc:
        raise error(f"YAML error: {exc}", location=Location(name)) from None
    except _KeyError as exc:
        raise error(f"YAML error: a key is a {exc.kind}, not a name", location=Location(name, exc.line),
                    hint="keys are plain names; quote a key that starts with '[' or '{'") from None
    return data, LineMap(lines, name)
