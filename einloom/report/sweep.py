"""Sweep reports, regenerated from the store alone (``einloom report sweep DIR``).

Writes into the sweep's folder: ``results.csv`` and ``results.json`` (every planned point, sorted by
its key; JSON adds the mapping and energy breakdown of each point and the sweep file as data),
``results.parquet`` when pyarrow is importable, ``figures/*.png`` (Pareto fronts, efficiency fronts,
sensitivity plots, the variant x workload matrix) and ``report.html`` with the figures embedded.

Units everywhere: latency in s, energy in J, area in mm^2, power in W (average: energy / latency),
throughput in TOPS (2 ops per multiply-accumulate of the workload).  Every ratio (TOPS/W, TOPS/mm^2)
is shown next to the absolute values it divides.
"""
from __future__ import annotations

import base64
import csv
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from einloom.experiment import _jsonable
from einloom.report.pareto import best_per_objective, front_rows
from einloom.report.table import format_table

#: Scalar columns of results.csv after the key columns and the parameters.
METRICS = ("area_mm2", "latency_s", "energy_J", "power_W", "tops", "tops_per_W", "tops_per_mm2", "edp_Js",
           "util_2d", "util_1d", "dram_bytes", "buffer_used_bytes", "peak_power_W", "working_set_bytes",
           "mapping_source", "fpga_core", "fpga_luts", "fpga_ffs", "fpga_dsps", "fpga_brams", "fpga_fmax_mhz",
           "fpga_cycles", "fpga_gops")
KEY_COLUMNS = ("key", "status", "variant", "workload", "seq_len", "design", "design_id")
#: The Pareto objectives: latency x energy x area, all minimized.
FRONT_COLUMNS = ("latency_s", "energy_J", "area_mm2")


@dataclass
class SweepData:
    """A sweep's planned points as flat rows, with the sweep's description."""

    sweep: dict[str, Any]
    parameters: list[str]
    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]] = field(default_factory=dict)   # key -> mapping, breakdown, spec

    @property
    def kind(self) -> str:
        """What the ``variant`` column holds: ``configuration`` names, or plain ``variant`` names."""
        configs = self.sweep.get("configurations") or []
        return "configuration" if any(c["name"] != Path(c["variant"]).stem for c in configs) else "variant"

    @property
    def done(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "done"]

    def workloads(self) -> list[str]:
        """Workload labels in the sweep file's order."""
        declared = [w["label"] for w in self.sweep.get("workloads") or []]
        present = set(r["workload"] for r in self.rows)
        return [w for w in declared if w in present] + sorted(present - set(declared))

    def variants(self) -> list[str]:
        """Variant names in the sweep file's order."""
        declared = [c["name"] for c in self.sweep.get("configurations") or []] or \
            [Path(v).stem for v in self.sweep.get("variants") or []]
        present = set(r["variant"] for r in self.rows)
        return [v for v in declared if v in present] + sorted(present - set(declared))


def load_sweep_data(directory: str | Path) -> SweepData:
    """Every planned point of the sweep in ``directory`` (missing ones with status ``pending``)."""
    from einloom.sweep.store import open_existing
    with open_existing(directory) as store:
        sweep = store.meta("sweep") or {}
        parameters = store.meta("parameters") or []
        planned = set(store.meta("planned_keys") or [])
        stored = [r for r in store.rows() if r["key"] in planned]
    rows, details = [], {}
    for entry in stored:
        row, detail = _flatten(entry, parameters)
        rows.append(row)
        details[row["key"]] = detail
    missing = len(planned) - len(rows)
    if missing:
        sweep = dict(sweep, pending=missing)
    return SweepData(sweep, parameters, rows, details)


def _flatten(entry: Mapping[str, Any], parameters: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec, result = entry["spec"], entry["result"] or {}
    static = spec.get("static") or {}
    row: dict[str, Any] = {"key": entry["key"], "status": entry["status"], "variant": spec.get("configuration") or Path(spec["variant"]).stem,
                           "workload": spec["workload_label"], "seq_len": spec["seq_len"],
                           "design": spec["arch_label"], "design_id": spec["design_id"]}
    for name in parameters:
        row[name] = (spec.get("design") or {}).get(name)
    for column in METRICS:
        row[column] = result.get(column, static.get(column))
    if row["area_mm2"] is None:
        row["area_mm2"] = static.get("area_mm2")
    if result.get("latency_s") is not None and result.get("energy_J") is not None:
        row["edp_Js"] = result["latency_s"] * result["energy_J"]
    fpga = result.get("fpga") or {}
    for k in ("core", "luts", "ffs", "dsps", "brams", "fmax_mhz", "cycles", "gops"):
        row[f"fpga_{k}"] = fpga.get(k)
    row["error"] = entry["error"] if entry["status"] != "pruned" else None
    row["pruned_by"] = entry["error"] if entry["status"] == "pruned" else None
    detail = {"mapping": result.get("mapping"), "energy_breakdown_pj": result.get("energy_breakdown_pj"),
              "search": result.get("search"), "fpga": result.get("fpga"), "fpga_skipped": result.get("fpga_skipped"),
              "design": spec.get("design"), "arch_document": spec.get("arch_document"),
              "seconds": entry.get("seconds"), "worker": entry.get("worker")}
    return row, detail


# ==================================================================================================
# Exports
# ==================================================================================================

def columns(data: SweepData) -> list[str]:
    return list(KEY_COLUMNS) + list(data.parameters) + list(METRICS) + ["error", "pruned_by"]


def write_tables(data: SweepData, outdir: Path) -> list[Path]:
    """results.csv, results.json and (with pyarrow) results.parquet."""
    cols = columns(data)
    written = []
    csv_path = outdir / "results.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(cols)
        for row in data.rows:
            writer.writerow(["" if row.get(c) is None else _csv_value(row.get(c)) for c in cols])
    written.append(csv_path)
    json_path = outdir / "results.json"
    payload = {"sweep": data.sweep, "parameters": data.parameters, "columns": cols,
               "rows": [dict(row, **{k: v for k, v in data.details[row["key"]].items()
                                     if k in ("mapping", "energy_breakdown_pj", "search", "fpga", "fpga_skipped")})
                        for row in data.rows]}
    json_path.write_text(json.dumps(_jsonable(payload), indent=1) + "\n")
    written.append(json_path)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    table = pa.table({c: [_parquet_value(r.get(c)) for r in data.rows] for c in cols})
    parquet_path = outdir / "results.parquet"
    pq.write_table(table, parquet_path)
    written.append(parquet_path)
    return written


def _csv_value(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def _parquet_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, float, str, bool)) else str(value)


# ==================================================================================================
# Tables
# ==================================================================================================

FRONT_HEADERS = ["design", "variant", "latency (s)", "energy (J)", "area (mm^2)", "power (W)", "TOPS",
                 "TOPS/W", "TOPS/mm^2", "mapping"]


def front_headers(data: SweepData) -> list[str]:
    """:data:`FRONT_HEADERS` with ``variant`` renamed ``configuration`` when the sweep names configurations."""
    return [data.kind if h == "variant" else h for h in FRONT_HEADERS]


def _front_cells(row: Mapping[str, Any]) -> list[Any]:
    return [row["design"], row["variant"], row["latency_s"], row["energy_J"], row["area_mm2"], row["power_W"],
            row["tops"], row["tops_per_W"], row["tops_per_mm2"], row["mapping_source"]]


def pareto_front(data: SweepData, workload: str) -> list[Mapping[str, Any]]:
    """The latency x energy x area front of one workload's evaluated points, fastest first."""
    return front_rows([r for r in data.done if r["workload"] == workload], FRONT_COLUMNS)


def efficiency_front(data: SweepData, workload: str) -> list[Mapping[str, Any]]:
    """The TOPS/W x TOPS/mm^2 front (both maximized), best TOPS/W first."""
    return front_rows([r for r in data.done if r["workload"] == workload], ("tops_per_W", "tops_per_mm2"),
                      maximize=(True, True))


def summary_tables(data: SweepData) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, headers, rows) of the report's tables: counts, per workload its front and best designs,
    the variant x workload matrix, failures grouped by message, pruning reasons."""
    tables: list[tuple[str, list[str], list[list[Any]]]] = []
    counts = Counter(r["status"] for r in data.rows)
    tables.append(("points", ["planned", "done", "failed", "pruned", "not yet run"],
                   [[len(data.rows) + data.sweep.get("pending", 0), counts["done"], counts["failed"], counts["pruned"],
                     data.sweep.get("pending", 0)]]))
    for workload in data.workloads():
        front = pareto_front(data, workload)
        if front:
            tables.append((f"{workload}: Pareto front (latency x energy x area, {len(front)} designs)",
                           front_headers(data), [_front_cells(r) for r in front]))
        best = best_per_objective([r for r in data.done if r["workload"] == workload])
        if best:
            tables.append((f"{workload}: best design per objective", ["objective"] + front_headers(data),
                           [[name] + _front_cells(r) for name, _, r in best]))
    if len(data.variants()) > 1 or len(data.workloads()) > 1:
        tables.append(matrix_table(data))
    failures = Counter((r["variant"], _short(r["error"])) for r in data.rows if r["status"] == "failed")
    if failures:
        tables.append((f"failed points (by {data.kind} and error)", [data.kind, "points", "error"],
                       [[v, n, e] for (v, e), n in sorted(failures.items())]))
    pruned = Counter(_reason(r["pruned_by"]) for r in data.rows if r["status"] == "pruned")
    if pruned:
        tables.append(("pruned before evaluation (by constraint)", ["constraint", "points"],
                       [[k, n] for k, n in sorted(pruned.items())]))
    return tables


def matrix_table(data: SweepData) -> tuple[str, list[str], list[list[Any]]]:
    """Variant x workload: the lowest latency (s) and its energy (J) per cell, or the failure."""
    workloads = data.workloads()
    rows = []
    for variant in data.variants():
        line: list[Any] = [variant]
        for workload in workloads:
            cell = [r for r in data.rows if r["variant"] == variant and r["workload"] == workload]
            done = [r for r in cell if r["status"] == "done"]
            if done:
                best = min(done, key=lambda r: (r["latency_s"], r["key"]))
                line.append(f"{best['latency_s']:.4g} s, {best['energy_J']:.4g} J")
            elif cell and all(r["status"] == "pruned" for r in cell):
                line.append("pruned")
            else:
                line.append("failed" if cell else "-")
        rows.append(line)
    return (f"{data.kind} x workload: lowest latency and its energy", [data.kind] + workloads, rows)


def _short(error: str | None, limit: int = 110) -> str:
    text = (error or "").split(" (hint:")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _reason(text: str | None) -> str:
    return (text or "").split(" ")[0] + " budget" if text and " > budget" in text else \
        "working set does not fit" if text and "working set" in text else (text or "")


def summary_text(data: SweepData, *, max_rows: int = 20) -> str:
    """The report's tables for a terminal (long fronts cut to ``max_rows`` rows)."""
    blocks = []
    for title, headers, rows in summary_tables(data):
        shown = rows[:max_rows]
        text = format_table(headers, shown, title=title)
        if len(rows) > max_rows:
            text += f"\n... {len(rows) - max_rows} more rows in report.html / results.csv"
        blocks.append(text)
    return "\n\n".join(blocks)


# ==================================================================================================
# HTML
# ==================================================================================================

def write_report(directory: str | Path) -> list[Path]:
    """Regenerate every table, figure and report.html of the sweep in ``directory`` from its store."""
    from einloom.report.sweep_figures import write_figures
    outdir = Path(directory)
    data = load_sweep_data(outdir)
    written = write_tables(data, outdir)
    figures = write_figures(data, outdir / "figures")
    written += [p for group in figures.values() for p in group]
    html_path = outdir / "report.html"
    html_path.write_text(render_html(data, figures))
    written.append(html_path)
    return written


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from einloom.report.table import _cell
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="{"num" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""}">'
        f"{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}th,td{border-bottom:1px solid #ddd;
padding:3px 8px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}figure{margin:1em 0}img{max-width:100%}details{margin:0.3em 0}
pre{background:#f7f7f7;padding:0.6em;overflow-x:auto;font-size:0.85em}.note{color:#555}"""


def render_html(data: SweepData, figures: Mapping[str, Sequence[Path]]) -> str:
    """The self-contained HTML report (figures embedded as PNG data)."""
    import yaml
    s = data.sweep
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(str(s.get('name')))}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Sweep {html.escape(str(s.get('name')))}</h1>",
             f"<p>{html.escape(str(s.get('description') or ''))}</p>",
             f"<p class='note'>Base architecture <code>{html.escape(str(s.get('arch')))}</code>; "
             f"{'configurations' if len(s.get('configurations') or []) > 1 else 'variant'} "
             f"{html.escape(', '.join(data.variants()))}; scope {html.escape(str(s.get('scope')))}; mapping "
             f"{html.escape(json.dumps(s.get('mapping')))}; sampling {html.escape(str(s.get('sampling')))}"
             f" (seed {s.get('seed')}). Units: latency s, energy J, area mm<sup>2</sup>, power W (average), "
             "TOPS = 2 x workload MACs / latency. Tables: results.csv, results.json.</p>"]
    tables = summary_tables(data)
    parts.append(f"<h2>Points</h2>{_html_table(tables[0][1], tables[0][2])}")
    for workload in data.workloads():
        parts.append(f"<h2>{html.escape(workload)}</h2>")
        for fig in figures.get(f"front:{workload}", []):
            parts.append(_img(fig, f"Pareto fronts of {workload}"))
        front = pareto_front(data, workload)
        if front:
            parts.append(f"<h3>Pareto front: latency x energy x area ({len(front)} designs)</h3>")
            parts.append(_html_table(front_headers(data), [_front_cells(r) for r in front]))
        best = best_per_objective([r for r in data.done if r["workload"] == workload])
        if best:
            parts.append("<h3>Best design per objective</h3>")
            parts.append(_html_table(["objective"] + front_headers(data), [[n] + _front_cells(r) for n, _, r in best]))
            for name, label, row in best:
                detail = data.details[row["key"]]
                mapping = yaml.safe_dump(detail.get("mapping"), sort_keys=False, default_flow_style=None)
                parts.append(f"<details><summary>{html.escape(label)}: {html.escape(row['design'])} "
                             f"({html.escape(row['variant'])}), its mapping ({html.escape(str(row['mapping_source']))})"
                             f"</summary><pre>{html.escape(mapping)}</pre></details>")
    sens = figures.get("sensitivity", [])
    if sens:
        parts.append("<h2>Sensitivity</h2><p class='note'>Each panel: the median over the other parameters "
                     "(line) and their range (band), per workload and variant. Points pruned by a constraint are "
                     "missing from the median, which can shift it at the edges of the space.</p>")
        parts += [_img(p, "sensitivity") for p in sens]
    for title, headers, rows in tables[1:]:
        if "Pareto front" in title or "best design" in title:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2>{_html_table(headers, rows)}")
    for fig in figures.get("matrix", []):
        parts.append(_img(fig, "variant x workload"))
    parts.append("</body></html>")
    return "\n".join(parts)
