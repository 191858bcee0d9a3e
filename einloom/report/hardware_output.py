"""The hardware report's outputs: terminal tables, CSV, JSON and the area-vs-throughput figure.

Every output is made from :class:`einloom.report.hardware.HardwareRow` dictionaries (the JSON form), so
``einloom report hardware --out DIR`` and a later reader of ``DIR/hardware.json`` see the same figures.
A refused variant is listed with its reason, never as zeros; a figure that was not measured is "-".
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

from einloom.report.hardware import OPS_RULE, PROGRAMMABLE, SHARED_FMAX
from einloom.report.pareto import front_rows
from einloom.report.table import format_table

#: Columns of the CSV (flattened row fields; nested ones as ``area.luts``, ``verify.passed``...).
CSV_COLUMNS = ("spec", "arch", "number_format", "array", "core", "ranks", "mask", "units", "cycles",
               "verify.measured_cycles", "sim_cycles", "util_2d", "error_vs_fp64", "useful_ops", "dense_ops", "verify.tool",
               "verify.passed", "verify.total", "area.luts", "area.ffs", "area.dsps", "area.brams", "area.carry",
               "part", "fits", "fmax_mhz", "clock_mhz", "clock_source", "gops", "refused_einsum", "reason",
               "fixed_reason", "errors")


def _get(row: Mapping[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _ranks(row: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((row.get("ranks") or {}).items()))


def _verify_cell(row: Mapping[str, Any]) -> str | None:
    v = row.get("verify")
    if not v:
        return None
    return f"{v['passed']}/{v['total']} {v['tool'].capitalize()}" if v.get("total") else "not run"


def _sim_cell(row: Mapping[str, Any]) -> str | None:
    if row.get("sim_cycles") is None:
        return None
    ratio = f" ({row['sim_cycles'] / row['cycles']:.2f}x)" if row.get("cycles") else ""
    return f"{row['sim_cycles']:,.0f}{ratio}"


def _cycles_cell(row: Mapping[str, Any]) -> str | None:
    if row.get("cycles") is None:
        return None
    measured = _get(row, "verify.measured_cycles")
    if measured is None:
        return f"{row['cycles']:,}"
    return f"{row['cycles']:,} = RTL" if measured == row["cycles"] else f"{row['cycles']:,} (RTL {measured:,})"


def built_table(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> str:
    """Generated variants side by side (one line per variant and architecture)."""
    headers = ["variant", "arch", "core", "ranks", "mask", "cycles", "sim (x model)", "2D util", "err vs fp64",
               "useful ops",
               "verify", "LUT", "FF", "DSP", "BRAM", "Fmax MHz", "GOP/s", "clock"]
    body = []
    for r in rows:
        area = r.get("area") or {}
        body.append([r["spec"], r["arch"], r["core"], _ranks(r), r.get("mask"), _cycles_cell(r), _sim_cell(r),
                     None if r.get("util_2d") is None else f"{100 * r['util_2d']:.1f}%", r.get("error_vs_fp64"),
                     r.get("useful_ops"),
                     _verify_cell(r), area.get("luts"), area.get("ffs"), area.get("dsps"), area.get("brams"),
                     r.get("fmax_mhz"), r.get("gops"), _clock_cell(r)])
    return format_table(headers, body, title=title)


def _clock_cell(row: Mapping[str, Any]) -> str | None:
    if row.get("gops") is None:
        return None
    source = row.get("clock_source") or ""
    if source == SHARED_FMAX:
        return "Fmax of the programmable build"
    return "Fmax" if source.startswith("Fmax") else f"{row.get('clock_mhz'):g} MHz stated"


def refused_table(rows: Sequence[Mapping[str, Any]], width: int = 110) -> str:
    """Refused variants: the Einsum and the reason (the lane compiler's; the JSON has both cores')."""
    body = []
    for r in rows:
        reason = r.get("reason") or ""
        body.append([r["spec"], r["arch"], r.get("refused_einsum") or "-",
                     reason if len(reason) <= width else reason[:width - 3] + "..."])
    return format_table(["variant", "arch", "Einsum", "refused because"], body, align="llll")


def front_table(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Per architecture, the variants on the Pareto front of area (LUTs, fewer) x throughput (GOP/s,
    more): :func:`einloom.report.pareto.front_rows`, as ``einloom report sweep`` picks its fronts."""
    body = []
    for arch in sorted({r["arch"] for r in rows}):
        mine = [{**r, "luts": (r.get("area") or {}).get("luts")} for r in rows
                if r["arch"] == arch and r.get("gops") and (r.get("area") or {}).get("luts")]
        for r in front_rows(mine, ("luts", "gops"), maximize=(False, True)):
            body.append([arch, r["spec"], r["core"], r["luts"], r["gops"], _clock_cell(r)])
    if not body:
        return None
    return format_table(["arch", "variant", "core", "LUT", "GOP/s", "clock"], body,
                        title="Pareto front per architecture: area (LUTs) x throughput (GOP/s)")


def report_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The terminal report: the built variants, the refused ones, tool errors and what the figures mean."""
    built = [r for r in rows if r["core"] in ("fixed", "lane", PROGRAMMABLE)]
    refused = [r for r in rows if r["core"] == "refused"]
    pending = [r for r in rows if r["core"] == "pending"]
    parts = []
    if built:
        parts.append(built_table(built, title=f"hardware per variant ({len(built)} generated)"))
    if refused:
        parts.append(refused_table(refused) if not built else
                     f"refused ({len(refused)})\n" + refused_table(refused))
    if pending:
        parts.append(f"pending ({len(pending)}, not in the cache yet): "
                     + ", ".join(f"{r['spec']} @ {r['arch']}" for r in pending))
    front = front_table(built)
    if front:
        parts.append(front)
    left = [f"  {name} on {r['arch']}: {why}" for r in rows if r["core"] == PROGRAMMABLE
            for name, why in (r.get("left_out") or {}).items()]
    if left:
        parts.append("not in the programmable lane build\n" + "\n".join(left))
    errors = [f"  {r['spec']} on {r['arch']}: {e}" for r in rows for e in (r.get("errors") or [])]
    if errors:
        parts.append("tool errors (the row's other figures stand)\n" + "\n".join(errors))
    parts.append(LEGEND)
    return "\n\n".join(parts)


LEGEND = f"""\
cycles: the generated core's cycle model at the row's ranks ("= RTL": the verified run measured the
  same count); sim: the cycle-level simulator on the schedule the core was lowered from (x the model)
err vs fp64: max |golden model in the core's number format - float64 interpreter| (seeded inputs)
useful ops: {OPS_RULE}
area: Yosys post-synthesis cells of the bare core; Fmax: nextpnr post-route (ECP5, one seed)
GOP/s: useful ops / (cycles / clock), at Fmax or at the architecture's stated clock_mhz; "Fmax of the
  programmable build": a lane row without its own P&R, at the Fmax of the one programmable lane core
  that runs every lane variant of its architecture (--programmable-build; its own row)"""


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per row, :data:`CSV_COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        cells = []
        for c in CSV_COLUMNS:
            value = _ranks(r) if c == "ranks" else _get(r, c)
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()


MARKERS = "oDs^v<>Ph*X"


def plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Area (LUTs) vs throughput (GOP/s) per generated variant, one marker per architecture, each point
    labelled with its variant (filled: at Fmax; hollow: at the stated clock).  None when no row has both."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = [r for r in rows if r.get("gops") and (r.get("area") or {}).get("luts")]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    archs = sorted({r["arch"] for r in points})
    for i, arch in enumerate(archs):
        mine = [r for r in points if r["arch"] == arch]
        for at_fmax in (True, False):
            sel = [r for r in mine if (r.get("clock_source") or "").startswith("Fmax") == at_fmax]
            if not sel:
                continue
            color = f"C{i}"
            ax.scatter([r["area"]["luts"] for r in sel], [r["gops"] for r in sel], marker=MARKERS[i % len(MARKERS)],
                       s=46, facecolors=color if at_fmax else "none", edgecolors=color,
                       label=f"{arch} ({'at Fmax' if at_fmax else 'at stated clock'})")
            same: dict[tuple[float, float], list[str]] = {}     # one label per point, naming all at it
            for r in sel:
                same.setdefault((r["area"]["luts"], round(r["gops"], 9)), []).append(r["spec"])
            for (luts, gops), names in same.items():
                ax.annotate(", ".join(names), (luts, gops), fontsize=7, xytext=(4, 3), textcoords="offset points")
    from matplotlib.ticker import FuncFormatter
    ax.set_xlabel("area (LUTs, Yosys)")
    ax.set_ylabel("throughput (useful GOP/s)")
    gops = [r["gops"] for r in points]
    if max(gops) / min(gops) >= 10:          # log only where the points span a decade
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.margins(x=0.2, y=0.1)                  # room for the labels right of the points
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    refused = {(r["spec"], r["arch"]) for r in rows if r["core"] == "refused"}
    ax.set_title("what each variant costs in hardware" + (f" ({len(refused)} refused rows not shown: see the "
                                                          "table)" if refused else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
