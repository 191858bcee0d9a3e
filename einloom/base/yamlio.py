"""Reading user files safely: YAML (and JSON) that remembers line numbers and refuses hostile documents.

``load_yaml(path_or_name, text=None, error=...)`` returns plain Python values (dict/list/str/int/float/
bool/None) and a :class:`LineMap` that gives the 1-based line of any key path such as
``("einsums", 3)`` or ``("array_2d", "rows")``.  Every einloom file format (spec, arch, workload,
mapping, experiment, RTL arch) reads through it; ``load_json`` does the same for JSON (HuggingFace
``config.json``).

What it refuses, each as one ``error`` naming the file and line (limits in :mod:`einloom.base.limits`):

* files over ``MAX_FILE_BYTES``, files that are not regular files (``/dev/zero``, a FIFO, a folder),
  bytes that are not UTF-8, control characters YAML forbids;
* alias expansion beyond ``MAX_YAML_NODES`` nodes (the "billion laughs" document) and aliases that
  contain themselves (``&a [*a]``), nesting deeper than ``MAX_YAML_DEPTH``;
* duplicate keys in one mapping (YAML 1.2 forbids them; PyYAML would silently keep the last one, so a
  second ``einsums:`` block would replace the whole cascade);
* tags other than YAML's standard ones (``!!python/object``, ``!include``, ``!!binary`` ...): YAML
  never executes code or reads other files here;
* keys that are lists or mappings; scalars longer than ``MAX_SCALAR_CHARS``; integers too long to read.

Merge keys (``<<: *defaults``) work as in YAML 1.1: keys written next to them win.  Timestamps
(``2024-01-01``) are kept as the text written.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from einloom.base.errors import EinloomError, Location, SpecError
from einloom.base.limits import MAX_FILE_BYTES, MAX_SCALAR_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES

KeyPath = tuple[Any, ...]

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
                "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}
_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


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
            field = dotted(path)
        return Location(self.file, self.line(path), field or None)


def dotted(path: KeyPath) -> str:
    """``("einsums", 3)`` -> ``einsums[3]``; ``("array_2d", "rows")`` -> ``array_2d.rows``."""
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


class _Refused(Exception):
    """A document this reader refuses (turned into the caller's error class with file and line)."""

    def __init__(self, message: str, line: int | None, hint: str | None = None):
        super().__init__(message)
        self.message, self.line, self.hint = message, line, hint


class _Walker:
    """Turns a composed node graph into plain values, counting every node visited (aliases included)."""

    def __init__(self) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.count = 0
        self.active: set[int] = set()
        self.constructor = SafeConstructor()

    def walk(self, node: yaml.Node, path: KeyPath, depth: int = 0, record: bool = True) -> Any:
        line = node.start_mark.line + 1
        self.count += 1
        if self.count > MAX_YAML_NODES:
            raise _Refused(f"the document expands to more than {MAX_YAML_NODES:,} values (aliases repeat "
                           f"their anchor's contents at every use)", line,
                           "a document that expands exponentially (a 'billion laughs' file) is refused; "
                           "write the values out, or use fewer nested aliases")
        if depth > MAX_YAML_DEPTH:
            raise _Refused(f"nesting deeper than {MAX_YAML_DEPTH} levels", line,
                           "einloom files are a few levels deep; flatten the structure")
        if id(node) in self.active:
            raise _Refused("an alias refers to a node that contains it (a self-referencing anchor)", line,
                           "an anchor (&name) cannot be used (*name) inside its own value")
        if record:
            self.lines[path] = line
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise _unknown_tag(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path, depth, record)
            return [self.walk(child, path + (i,), depth + 1, record) for i, child in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int, record: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE:
                merged.update(self._merge(value_node, path, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                raise _Refused(f"a key is a {kind}, not a name", key_line,
                               "keys are plain names; quote a key that starts with '[' or '{'")
            key = self.scalar(key_node)
            try:
                hash(key)
            except TypeError:
                raise _Refused(f"the key {key_node.value!r} is not a name", key_line) from None
            if key in result:
                raise _Refused(f"duplicate key {key!r} (first at line {first_line[key]})", key_line,
                               "YAML forbids a key twice in one mapping; merge the two entries or delete one")
            first_line[key] = key_line
            result[key] = self.walk(value_node, path + (key,), depth + 1, record)
            if record:
                self.lines[path + (key,)] = key_line
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge(self, node: yaml.Node, path: KeyPath, depth: int) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise _Refused("a merge key (<<) needs a mapping or a list of mappings", node.start_mark.line + 1)
            value = self.walk(source, path, depth + 1, record=False)
            for key, item in value.items():
                merged.setdefault(key, item)
        return merged

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        if len(node.value) > MAX_SCALAR_CHARS:
            raise _Refused(f"a value of {len(node.value):,} characters (limit {MAX_SCALAR_CHARS:,})",
                           node.start_mark.line + 1)
        if node.tag == _STR or node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise _unknown_tag(node)
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            raise _Refused(f"cannot read the value {node.value[:40]!r}: {str(exc).splitlines()[0][:80]}",
                           node.start_mark.line + 1, "write a plain number or quote the text") from None


def _unknown_tag(node: yaml.Node) -> _Refused:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return _Refused(f"unsupported YAML tag {tag!r}", node.start_mark.line + 1,
                    "einloom files use plain YAML (no tags such as !!python/object, !include or !!binary); "
                    "remove the tag")


def read_user_file(source: str | Path, error: type[EinloomError] = SpecError, *, field: str | None = None) -> str:
    """The text of a user file, refusing missing, non-regular, oversized and non-UTF-8 files."""
    name = str(source)
    where = Location(name, None, field)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error("file not found", location=where, hint="check the path") from None
    except IsADirectoryError:
        raise error("is a folder, not a file", location=where, hint="give the path of a file") from None
    except PermissionError:
        raise error("permission denied: cannot read the file", location=where) from None
    except (OSError, ValueError) as exc:
        raise error(f"cannot open the file: {getattr(exc, 'strerror', None) or exc}", location=where) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error("is a folder, not a file", location=where, hint="give the path of a file")
        if not stat.S_ISREG(info.st_mode):
            raise error("is not a regular file (a device, pipe or socket)", location=where,
                        hint="give the path of a YAML/JSON file")
        if info.st_size > MAX_FILE_BYTES:
            raise error(f"file is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for einloom "
                        f"input files", location=where, hint="einloom files are small; is this the right file?")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read the file: {exc.strerror or exc}", location=where) from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise error(f"file is over the {MAX_FILE_BYTES:,}-byte limit for einloom input files", location=where)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"byte 0x{data[exc.start]:02x} is not UTF-8 text", location=Location(name, line, field),
                    hint="save the file as UTF-8") from None


def load_yaml(source: str | Path, *, text: str | None = None, error: type[EinloomError] = SpecError
              ) -> tuple[Any, LineMap]:
    """Parse a YAML file (or ``text`` with ``source`` as its display name) refusing hostile documents.

    Raises ``error`` (an :class:`EinloomError` subclass) naming the file and line on a syntax error,
    an unreadable file, or any refused construct listed in the module docstring.
    """
    name = str(source)
    if text is None:
        text = read_user_file(source, error)
    elif len(text) > MAX_FILE_BYTES:
        raise error(f"text is over the {MAX_FILE_BYTES:,}-character limit for einloom input files",
                    location=Location(name))
    deep = _flow_depth_line(text)
    if deep is not None:
        raise error(f"nesting deeper than {MAX_YAML_DEPTH} levels", location=Location(name, deep),
                    hint="einloom files are a few levels deep; flatten the structure")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise error(f"character {char!r} is not allowed in YAML", location=Location(name, line),
                    hint="remove control characters from the file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"YAML syntax error: {problem}", location=Location(name, line),
                    hint="check indentation and quoting; quote strings that contain ':' or '#'") from None
    except RecursionError:
        raise error(f"nesting deeper than {MAX_YAML_DEPTH} levels", location=Location(name),
                    hint="einloom files are a few levels deep; flatten the structure") from None
    if node is None:
        return None, LineMap({}, name)
    walker = _Walker()
    try:
        data = walker.walk(node, ())
    except _Refused as exc:
        raise error(exc.message, location=Location(name, exc.line), hint=exc.hint) from None
    except RecursionError:
        raise error(f"nesting deeper than {MAX_YAML_DEPTH} levels", location=Location(name)) from None
    return data, LineMap(walker.lines, name)


def _flow_depth_line(text: str) -> int | None:
    """The line where ``[``/``{`` brackets first nest deeper than MAX_YAML_DEPTH, or None (checked
    before parsing: the YAML parser recurses once per level and would take seconds to fail)."""
    if text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return None
    depth = 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return text.count("\n", 0, index) + 1
        elif char in "]}" and depth:
            depth -= 1
    return None


def load_json(source: str | Path, *, error: type[EinloomError] = SpecError) -> tuple[Any, LineMap]:
    """Parse a JSON file with the same refusals as :func:`load_yaml` (size, non-regular files, UTF-8,
    duplicate keys, NaN/Infinity literals, deep nesting); the line map knows each top-level key's line."""
    name = str(source)
    text = read_user_file(source, error)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _Refused(f"duplicate key {key!r}", _json_key_line(text, key, 2),
                               "JSON objects name each key once; delete one of them")
            result[key] = value
        return result

    def constant(literal: str) -> Any:
        raise _Refused(f"{literal} is not a JSON number", None, "write a finite number")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", location=Location(name, exc.lineno),
                    hint="check commas, quotes and brackets") from None
    except _Refused as exc:
        raise error(exc.message, location=Location(name, exc.line), hint=exc.hint) from None
    except RecursionError:
        raise error("nesting too deep", location=Location(name)) from None
    except ValueError as exc:  # integers too long to read
        raise error(f"cannot read a value: {exc}", location=Location(name)) from None
    lines: dict[KeyPath, int] = {(): 1}
    if isinstance(data, dict):
        for key in data:
            line = _json_key_line(text, key)
            if line is not None:
                lines[(key,)] = line
    return data, LineMap(lines, name)


def _json_key_line(text: str, key: str, occurrence: int = 1) -> int | None:
    matches = list(re.finditer(r'"' + re.escape(key) + r'"\s*:', text))
    if len(matches) < occurrence:
        return None
    return text.count("\n", 0, matches[occurrence - 1].start()) + 1
