"""Attention throughput of a synthesized core: useful operations per second at the measured Fmax.

For each problem shape of the core's manifest (``latency.examples``: P queries, M keys, plain or
causal) the throughput is

    ops  = 2 * pairs * (E + F)            one multiply and one add per element of QK (E) and of AV (F)
    GOP/s = ops / (cycles / Fmax) / 1e9

where ``pairs`` is the number of (query, key) pairs the attention uses: ``P * M``, or for the causal mask
(bottom-right aligned, query p sees key m iff m <= p + M - P) only the visible pairs, so skipped or
masked work does not count as useful.  ``cycles`` are the core's compute cycles (after loading): the
manifest's formula, which the RTL tests assert equal to the measured count of every unstalled run, or
the cycles ``einloom verify --json`` measured.  The 2D utilization is ``pairs * (E + F)`` MACs over
``R * C * cycles`` PE-cycles (QK and SLNV both run on the 2D array).  The softmax's exp, max and
division are not counted as operations (the usual convention for attention FLOPs).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from einloom.einsum.errors import Location, ToolError

#: how the operations are counted (shown with the figures)
OPS_FORMULA = "2*P*M*(E+F) (causal: visible (query, key) pairs only)"


def visible_pairs(num_queries: int, num_keys: int, causal: bool) -> int:
    """(query, key) pairs attention uses: all ``P*M``, or with the bottom-right causal mask
    ``sum_p clamp(p + M - P + 1, 0, M)``."""
    if not causal:
        return num_queries * num_keys
    m, p = num_keys, num_queries
    return sum(min(m, max(0, q + m - p + 1)) for q in range(p))


def attention_ops(num_queries: int, num_keys: int, head_dim: int, value_dim: int, causal: bool) -> int:
    """Useful attention operations, ``2 * pairs * (E + F)`` (see the module docstring)."""
    return 2 * visible_pairs(num_queries, num_keys, causal) * (head_dim + value_dim)


@dataclass(frozen=True)
class ThroughputRow:
    """One problem shape's figures (``gops`` and ``seconds`` are None without an Fmax)."""

    P: int
    M: int
    causal: bool
    cycles: int
    cycles_source: str          #: "manifest" (the formula) or "measured" (einloom verify)
    ops: int
    macs_2d: int
    utilization_2d: float
    seconds: float | None
    gops: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _core_shape(manifest: dict) -> tuple[int, int, int, int] | None:
    """(R, C, E, F) of a generated core's manifest, or None for a design without one."""
    params = manifest.get("parameters") or {}
    try:
        rtl = params["rtl"]
        return (int(params["array_2d"]["rows"]), int(params["array_2d"]["cols"]), int(rtl["head_dim"]),
                int(rtl["value_dim"]))
    except (KeyError, TypeError, ValueError):
        return None


def throughput_rows(manifest: dict, fmax_mhz: float | None,
                    measured: dict[tuple[int, int, bool], int] | None = None) -> list[ThroughputRow]:
    """The throughput of every example shape of ``manifest`` at ``fmax_mhz`` (empty when the design has
    no attention manifest, e.g. ``--verilog`` or ``--demo``).  ``measured`` maps (P, M, causal) to
    measured cycles, which replace the manifest's for those shapes; measured shapes that the
    manifest lacks are added."""
    shape = _core_shape(manifest)
    examples = ((manifest.get("latency") or {}).get("examples")) or []
    if shape is None:
        return []
    rows_, cols, e, f = shape
    cycles: dict[tuple[int, int, bool], tuple[int, str]] = {}
    for ex in examples:
        cycles[(int(ex["P"]), int(ex["M"]), bool(ex["causal"]))] = (int(ex["compute_cycles"]), "manifest")
    for key, count in (measured or {}).items():
        cycles[key] = (count, "measured")
    out = []
    for (p, m, causal), (count, source) in cycles.items():
        pairs = visible_pairs(p, m, causal)
        macs = pairs * (e + f)
        ops = 2 * macs
        seconds = count / (fmax_mhz * 1e6) if fmax_mhz else None
        out.append(ThroughputRow(P=p, M=m, causal=causal, cycles=count, cycles_source=source, ops=ops,
                                 macs_2d=macs, utilization_2d=macs / (rows_ * cols * count),
                                 seconds=seconds, gops=ops / seconds / 1e9 if seconds else None))
    return out


def load_measured_cycles(path: str) -> dict[tuple[int, int, bool], int]:
    """Measured cycles per (P, M, causal) from the JSON that ``einloom verify --json`` prints: the
    passing cases run without output backpressure (stalls would count as compute cycles)."""
    where = Location(field="--cycles")
    try:
        data = json.loads(Path(path).read_text())
    except OSError as error:
        raise ToolError(f"cannot read {path}: {error.strerror}", location=where,
                        hint="give the output of `einloom verify --arch A --json > cycles.json`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ToolError(f"{path} is not JSON ({error})", location=Location(file=path, field="--cycles"),
                        hint="give the output of `einloom verify --arch A --json`") from None
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list):
        raise ToolError(f"{path} has no 'cases' list", location=Location(file=path, field="cases"),
                        hint="give the output of `einloom verify --arch A --json`")
    out: dict[tuple[int, int, bool], int] = {}
    for i, case in enumerate(cases):
        if not isinstance(case, dict):
            raise ToolError(f"{path}: cases[{i}] is not an object", location=Location(file=path, field=f"cases[{i}]"),
                            hint="give the output of `einloom verify --arch A --json`")
        if not case.get("passed") or case.get("expect_fail") or case.get("backpressure"):
            continue
        try:
            key = (int(case["P"]), int(case["M"]), bool(case.get("causal", False)))
            count = int(case["cycles"])
        except (KeyError, TypeError, ValueError):
            raise ToolError(f"{path}: cases[{i}] lacks P, M or cycles", location=Location(file=path, field=f"cases[{i}]"),
                            hint="give the output of `einloom verify --arch A --json`") from None
        if count <= 0:
            raise ToolError(f"{path}: cases[{i}] has {count} cycles", location=Location(file=path, field=f"cases[{i}].cycles"),
                            hint="cycles must be positive")
        out[key] = count
    return out
