"""The declarative field reader: a reader says which fields exist and their rules; this module turns
every violation into one error naming the file, line and field, what is wrong and what to write.

Two levels:

* :class:`FieldReader` checks one value at a time (``reader.integer(value, path, low=1)``), for
  readers whose structure is irregular (specs, mappings);
* :class:`Field` + :meth:`FieldReader.fields` read a whole mapping from a table of fields::

      FIELDS = (Field("batch", "int", low=1, high=MAX_BATCH), Field("causal", "bool", default=False),
                Field("phase", "choice", choices=("prefill", "decode"), default="prefill"))
      values = reader.fields(data, (), FIELDS)

Rules every number obeys: booleans are not numbers (YAML reads ``yes`` as true), NaN and infinity are
rejected everywhere, integers are whole (``2.5`` is refused; ``256.0`` is read as 256 only where a
field allows it), and every range has an upper limit (:mod:`einloom.base.limits`), so a size can never
make einloom allocate or loop without bound.  Sizes may carry a binary suffix where the field has
``units=SIZE_SUFFIXES`` (``16K`` = 16384).
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from einloom.base.errors import EinloomError, Location
from einloom.base.yamlio import LineMap, dotted

#: Binary suffixes of sizes and sequence lengths (1K = 1024, as in experiment files and --seq-len).
SIZE_SUFFIXES: Mapping[str, int] = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
_SIZE = re.compile(r"\s*(\d{1,12})\s*([kKmMgG]?)\s*")
#: A number YAML 1.2 reads as a float but PyYAML (YAML 1.1) leaves as text: ``1e3``, ``1.5e3``, ``2E-9``.
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

_YAML_BOOL_HINT = ("YAML 1.1 reads on/off/yes/no/true/false (any case) as booleans; quote the name or "
                   "pick another one")


def did_you_mean(name: Any, options: Iterable[Any]) -> str | None:
    """``"did you mean 'M0'?"`` for the closest option, or None."""
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def describe(value: Any) -> str:
    """How a value reads in an error message: ``nothing``, ``a list``, ``the boolean True``, ``'abc'``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "infinity" if value > 0 else "-infinity"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_size(value: Any, units: Mapping[str, int] = SIZE_SUFFIXES) -> int:
    """``4096``, ``"4K"``, ``"1M"`` -> an int (K = 1024); ValueError for anything else (0 included)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(value)
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and value > 0:
            return int(value)
        raise ValueError(value)
    match = _SIZE.fullmatch(str(value))
    if not match or int(match.group(1)) <= 0 or match.group(2).upper() not in units:
        raise ValueError(value)
    return int(match.group(1)) * units[match.group(2).upper()]


@dataclass(frozen=True)
class Field:
    """One field of a mapping and its rules.

    ``kind``: ``int``, ``number``, ``bool``, ``str``, ``text`` (a string, empty allowed), ``choice``,
    ``size`` (an int that may carry a K/M/G suffix), ``names`` (a list of strings), ``mapping`` or
    ``any``.  ``required`` fields have no ``default``.  ``low``/``high`` bound numbers (inclusive); ``choices`` list the allowed values.
    ``aliases`` are other accepted key names (the first present wins).
    """

    name: str
    kind: str = "any"
    required: bool = False
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    aliases: tuple[str, ...] = ()
    hint: str | None = None


class FieldReader:
    """Checks values read from one file and raises ``error`` at their line.

    ``linemap`` comes from :func:`einloom.base.yamlio.load_yaml`; without one (plain data), errors name
    the dotted field path.  ``prefix`` is prepended to every path (a document nested under a key).
    """

    def __init__(self, linemap: LineMap | None, error: type[EinloomError], *, file: str | None = None,
                 prefix: tuple[Any, ...] = ()):
        self.linemap = linemap
        self.error = error
        self.file = file or (linemap.file if linemap is not None else None)
        self.prefix = prefix

    # -- locations and errors -------------------------------------------------------------------
    def at(self, *path: Any) -> Location:
        full = self.prefix + tuple(path)
        if self.linemap is not None:
            loc = self.linemap.at(*full)
            return Location(self.file or loc.file, loc.line, dotted(tuple(path)) or None)
        return Location(self.file, None, dotted(tuple(path)) or None)

    def fail(self, path: Sequence[Any], message: str, hint: str | None = None) -> EinloomError:
        return self.error(message, location=self.at(*path), hint=hint)

    # -- structure ------------------------------------------------------------------------------
    def mapping(self, value: Any, path: tuple[Any, ...] = (), required: Sequence[str] = (),
                optional: Sequence[str] = (), *, what: str = "a mapping", open_keys: bool = False,
                key_kind: str = "key") -> dict[Any, Any]:
        """``value`` as a dict with only ``required + optional`` keys (any keys if ``open_keys`` or if
        neither is given)."""
        if not isinstance(value, dict):
            example = "{" + ", ".join(f"{k}: ..." for k in required) + "}" if required else None
            raise self.fail(path, f"expected {what}, got {describe(value)}",
                            hint=f"write {example}" if example else "write it as 'key: value' entries (a YAML "
                                                                     "mapping)")
        allowed = tuple(required) + tuple(optional)
        open_keys = open_keys or not allowed
        for key in value:
            if isinstance(key, bool):
                raise self.fail(path + (key,), f"the key {key} is a YAML boolean, not a name", _YAML_BOOL_HINT)
            if not open_keys and key not in allowed:
                hint = did_you_mean(key, allowed)
                raise self.fail(path + (key,), f"unknown {key_kind} {str(key)!r}",
                                (hint + " " if hint else "") + f"allowed keys: {', '.join(allowed)}")
        for key in required:
            if key not in value or value[key] is None:
                where = dotted(path) or "the top level"
                raise self.fail(path, f"missing required field {key!r}", f"add '{key}:' under {where}")
        return value

    def names(self, value: Any, path: tuple[Any, ...], what: str = "names", *, allow_csv: bool = True,
              nonempty: bool = False, unique: bool = True) -> tuple[str, ...]:
        """A list of non-empty strings (``"a, b"`` also accepted when ``allow_csv``)."""
        if isinstance(value, str) and allow_csv:
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list of {what}, got {describe(value)}", f"write [{what[:-1]}1, ...]")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(path + (i,), f"expected a name, got {describe(item)}",
                                "quote names YAML reads as numbers or booleans")
        if nonempty and not value:
            raise self.fail(path, f"expected at least one of {what}")
        if unique:
            for i, item in enumerate(value):
                if value.index(item) != i:
                    raise self.fail(path + (i,), f"{item!r} is listed twice", "list each once")
        return tuple(v.strip() for v in value)

    # -- scalars --------------------------------------------------------------------------------
    def integer(self, value: Any, path: tuple[Any, ...], *, low: int | None = 1, high: int | None = None,
                allow_integral_float: bool = False, what: str = "an integer") -> int:
        """A whole number in ``[low, high]`` (booleans, NaN, infinity and fractions refused)."""
        if isinstance(value, str) and allow_integral_float and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, float) and allow_integral_float and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            hint = "write a whole number such as 256"
            if isinstance(value, str) and _SIZE.fullmatch(value):
                hint = "write the number without a suffix"
            raise self.fail(path, f"expected {what}, got {describe(value)}", hint)
        if low == 1 and value < 1:
            wanted = what if "positive" in what else "a positive integer"
            raise self.fail(path, f"expected {wanted}, got {value}", "sizes are whole numbers >= 1")
        self._range(value, path, low, high)
        return value

    def size(self, value: Any, path: tuple[Any, ...], *, low: int = 1, high: int | None = None,
             what: str = "a size") -> int:
        """A positive integer, with an optional K/M/G binary suffix (``16K`` = 16384)."""
        try:
            number = parse_size(value)
        except ValueError:
            raise self.fail(path, f"expected {what}, got {describe(value)}",
                            "write a positive integer such as 4096, or 4K / 1M (K = 1024)") from None
        self._range(number, path, low, high)
        return number

    def number(self, value: Any, path: tuple[Any, ...], *, low: float | None = None, high: float | None = None,
               positive: bool = False, what: str = "a number") -> float:
        """A finite real number (NaN and infinity refused), optionally ``> 0`` and in ``[low, high]``.
        ``1e3`` (text to PyYAML, a number in YAML 1.2 and to every user) is read as 1000.0."""
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected {what}, got {describe(value)}", "write a number such as 940 or 1.5e3")
        number = float(value) if not isinstance(value, int) or abs(value) < 2 ** 1023 else math.inf
        if not math.isfinite(number):
            raise self.fail(path, f"expected a finite number, got {describe(number)}",
                            "NaN and infinity are not values einloom can compute with")
        if positive and not number > 0:
            raise self.fail(path, f"must be positive, got {value!r}", "write a number > 0")
        self._range(number, path, low, high)
        return number

    def boolean(self, value: Any, path: tuple[Any, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {describe(value)}", "write true or false")
        return value

    def string(self, value: Any, path: tuple[Any, ...], *, what: str = "a non-empty string",
               allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(path, f"expected {what}, got {describe(value)}",
                            "quote text that YAML reads as a number or boolean")
        return value.strip() if not allow_empty else value

    def choice(self, value: Any, path: tuple[Any, ...], choices: Sequence[Any], *, what: str = "value") -> Any:
        if isinstance(value, bool) or value not in choices:
            hint = did_you_mean(value, choices)
            raise self.fail(path, f"unknown {what} {describe(value)}",
                            (hint + " " if hint else "") + f"use one of {', '.join(map(str, choices))}")
        return value

    def _range(self, number: float, path: tuple[Any, ...], low: float | None, high: float | None) -> None:
        if low is not None and number < low:
            raise self.fail(path, f"must be at least {low:g}, got {number:g}",
                            "sizes and counts are >= 1" if low == 1 else None)
        if high is not None and number > high:
            raise self.fail(path, f"{number:g} is over the limit of {high:g}",
                            "see the README's limits; is this value what you meant?")

    # -- declarative ----------------------------------------------------------------------------
    def read(self, field: Field, value: Any, path: tuple[Any, ...]) -> Any:
        """Check one value against its :class:`Field` rules."""
        kind = field.kind
        if kind == "int":
            return self.integer(value, path, low=_int(field.low), high=_int(field.high))
        if kind == "size":
            return self.size(value, path, low=_int(field.low) or 1, high=_int(field.high))
        if kind == "number":
            return self.number(value, path, low=field.low, high=field.high)
        if kind == "bool":
            return self.boolean(value, path)
        if kind == "str":
            return self.string(value, path)
        if kind == "text":
            return "" if value is None else self.string(value, path, what="text", allow_empty=True)
        if kind == "choice":
            return self.choice(value, path, field.choices, what=field.name)
        if kind == "names":
            return self.names(value, path)
        if kind == "mapping":
            return self.mapping(value, path, open_keys=True)
        return value

    def fields(self, data: Any, path: tuple[Any, ...], fields: Sequence[Field], *, extra_ok: bool = False,
               what: str = "a mapping") -> dict[str, Any]:
        """Read every field of ``fields`` from the mapping ``data``; unknown keys are errors unless
        ``extra_ok``.  Returns ``{field.name: value}`` for fields present or with a default."""
        keys = [f.name for f in fields] + [a for f in fields for a in f.aliases]
        required = [f.name for f in fields if f.required and not f.aliases]
        body = self.mapping(data, path, required, [k for k in keys if k not in required], what=what,
                            open_keys=extra_ok)
        out: dict[str, Any] = {}
        for f in fields:
            key = next((k for k in (f.name,) + f.aliases if body.get(k) is not None), None)
            if key is None:
                if f.required:
                    raise self.fail(path, f"missing required field {f.name!r}",
                                    f.hint or f"add '{f.name}:' under {dotted(path) or 'the top level'}")
                if f.default is not None:
                    out[f.name] = f.default
                continue
            out[f.name] = self.read(f, body[key], path + (key,))
        return out


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
