"""Number formats and their bit-exact golden models (einloom.sim.formats).

``NumberFormat`` (base.py) is the interface the RTL generator and the testbenches use; ``FixedFormat``
(fixed.py) is two's-complement fixed point; a float format (bf16.py) plugs in the same way.
"""
from einloom.sim.formats.base import (  # noqa: F401
    AttentionTrace, NumberFormat, attention_mask, float_attention,
)
from einloom.sim.formats.fixed import FixedFormat, FixedParams  # noqa: F401
from einloom.sim.formats.attention import golden_attention  # noqa: F401,E402

from typing import Any, Callable  # noqa: E402

#: number-format kind -> builder(spec, head_dim=, scale=, max_keys=) -> NumberFormat.  A builder raises
#: ``FormatSpecError(field, message)`` for a bad ``rtl.number_format`` entry.
FORMAT_BUILDERS: dict[str, Callable[..., NumberFormat]] = {}


class FormatSpecError(ValueError):
    """A bad field of a number-format spec: ``field`` names the key inside ``rtl.number_format``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _build_fixed(spec: dict[str, Any], *, head_dim: int, scale: bool, max_keys: int) -> NumberFormat:
    import dataclasses

    from einloom.sim.formats.fixed import PRESETS
    names = {f.name for f in dataclasses.fields(FixedParams)}
    base = FixedParams()
    if "preset" in spec:
        if spec["preset"] not in PRESETS:
            raise FormatSpecError("preset", f"unknown fixed-point preset {spec['preset']!r} "
                                  f"(known: {', '.join(PRESETS)})")
        base = PRESETS[spec["preset"]]
    values = {}
    for key, value in spec.items():
        if key in ("kind", "preset"):
            continue
        if key not in names:
            raise FormatSpecError(key, f"unknown fixed-point parameter (known: {', '.join(sorted(names))})")
        if not isinstance(value, int) or isinstance(value, bool):
            raise FormatSpecError(key, f"must be an integer, got {value!r}")
        values[key] = value
    params = dataclasses.replace(base, **values)
    fmt = FixedFormat.__new__(FixedFormat)
    fmt.p, fmt.head_dim, fmt.scale, fmt.max_keys = params, head_dim, scale, max_keys
    problems = fmt.validate()
    if problems:
        field, _, message = problems[0].partition(": ")
        raise FormatSpecError(field, message)
    return FixedFormat(params, head_dim=head_dim, scale=scale, max_keys=max_keys)


FORMAT_BUILDERS["fixed"] = _build_fixed


def make_format(spec: dict[str, Any], *, head_dim: int, scale: bool = True, max_keys: int = 256
                ) -> NumberFormat:
    """Build the :class:`NumberFormat` described by an ``rtl.number_format`` mapping (``kind`` selects)."""
    kind = spec.get("kind", "fixed")
    if kind not in FORMAT_BUILDERS:
        try:  # a format module registers its builder on import (e.g. einloom.sim.formats.bf16)
            __import__(f"einloom.sim.formats.{kind}")
        except ImportError:
            pass
    if kind not in FORMAT_BUILDERS:
        raise FormatSpecError("kind", f"unknown number format {kind!r} (known: {', '.join(FORMAT_BUILDERS)})")
    return FORMAT_BUILDERS[kind](spec, head_dim=head_dim, scale=scale, max_keys=max_keys)
