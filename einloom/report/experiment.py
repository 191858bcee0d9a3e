"""The report of an experiment, regenerated from its ``results.json`` alone.

:func:`write_report` draws the figures (PNG, matplotlib's Agg canvas, no display needed) and writes
``summary.md`` and ``summary.html`` (the HTML embeds the figures, so it is one self-contained file):

* ``speedup_<scope>.png`` / ``energy_<scope>.png``: grouped bars per model (panels) and sequence
  length (groups), one bar per configuration, normalised to the baseline (FuseMax Figs 8-11);
* ``utilization.png``: 2D and 1D array utilisation per configuration (Fig 6), attention scope;
* ``activity_2d.png``: per-Einsum share of 2D-array activity, one model and sequence length (Fig 7);
* ``area_latency.png``: area vs attention latency over the array-size sweep (Fig 12).

A figure whose data is absent (e.g. no sweep, or an evaluator without utilisation) is skipped.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from einloom.experiment import format_seq_len, headline_comparison, mean_ratios, point_comparison
from einloom.report.table import format_table

_SCOPE_TITLE = {"attention": "attention", "end_to_end": "end-to-end"}


def load_results(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_report(results_json_path: str | Path, outdir: str | Path) -> list[Path]:
    """Draw the figures and write summary.md / summary.html into ``outdir``; return the written paths."""
    results = load_results(results_json_path)
    outdir = Path(outdir)
    (outdir / "figures").mkdir(parents=True, exist_ok=True)
    figures = draw_figures(results, outdir / "figures")
    md = outdir / "summary.md"
    md.write_text(summary_markdown(results, [f.relative_to(outdir) for f in figures]))
    page = outdir / "summary.html"
    page.write_text(summary_html(results, figures))
    return figures + [md, page]


# ==================================================================================================
# Tables
# ==================================================================================================

def summary_tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, headers, rows) of mean speedup / energy ratio per configuration, per scope and reference."""
    exp = results["experiment"]
    rows = [r for r in results["rows"] if not r.get("error")]
    configs = [c["name"] for c in exp["configurations"]]
    tables = []
    for against in exp.get("compare_to") or [exp["baseline"]]:
        for scope in exp["scopes"]:
            means = mean_ratios(rows, against, scope)
            body = [[name, means[name]["speedup"], means[name]["energy_ratio"], means[name]["points"]]
                    for name in configs if name in means]
            tables.append((f"{_SCOPE_TITLE.get(scope, scope)}, vs {against} (arithmetic mean of per-point ratios)",
                           ["configuration", f"mean speedup vs {against}", f"mean energy ratio vs {against}",
                            "points"], body))
    reference = exp.get("reference")
    if reference:
        tables += _reference_tables(rows, reference)
    from einloom.report.gpu_compare import gpu_tables  # accelerator vs GPU kernels, when the experiment has them
    return tables + gpu_tables(results)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def _reference_tables(rows: list[dict[str, Any]], reference: Mapping[str, Any]
                      ) -> list[tuple[str, list[str], list[list[Any]]]]:
    """einloom next to the published headline and, per point, next to the reference's results."""
    tables = []
    claims = headline_comparison(rows, reference)
    if claims:
        body = []
        for c in claims:
            for key, label in (("speedup", "speedup"), ("energy_ratio", "energy ratio")):
                v = c[key]
                if v["reference"] is None:
                    continue
                body.append([f"{_SCOPE_TITLE.get(c['scope'], c['scope'])}: {c['configuration']} vs {c['versus']}",
                             label, v["einloom"], v["reference"], _pct(v["difference"]), c["points"]])
        tables.append((f"against the published headline ({reference['source']})",
                       ["claim", "metric", "einloom", "published", "difference", "points"], body))
    points = point_comparison(rows, reference)
    if points:
        body = []
        for p in points:
            lat, en = p["latency_s"], p["energy_pj"]
            body.append([p["configuration"], _SCOPE_TITLE.get(p["scope"], p["scope"]), p["points"],
                         lat and lat["mean"], lat and f"{lat['min']:.3f}..{lat['max']:.3f}",
                         en and en["mean"], en and f"{en['min']:.3f}..{en['max']:.3f}",
                         p["util_2d_max_abs_diff"]])
        name = Path(reference.get("points_file") or "reference points").name
        tables.append((f"per point, einloom / reference ({name})",
                       ["configuration", "scope", "points", "latency mean", "latency range", "energy mean",
                        "energy range", "util 2D max |diff|"], body))
    return tables


def summary_text(results: Mapping[str, Any]) -> str:
    """The summary tables for a terminal."""
    return "\n\n".join(format_table(headers, body, title=title) for title, headers, body in summary_tables(results))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_markdown(results: Mapping[str, Any], figures: Sequence[Path]) -> str:
    exp = results["experiment"]
    out = [f"# Experiment {exp['name']}", ""]
    if exp.get("description"):
        out += [exp["description"], ""]
    out += [f"- models: {', '.join(exp['models'])}",
            f"- sequence lengths: {', '.join(format_seq_len(n) for n in exp['seq_lens'])}",
            f"- scopes: {', '.join(exp['scopes'])}; baseline: {exp['baseline']}",
            f"- evaluator: `{results.get('evaluator')}`; {len(results['rows'])} points in "
            f"{results.get('elapsed_s', 0):.2f} s", ""]
    out += ["| configuration | cascade | arch | mapping |", "|---|---|---|---|"]
    for c in exp["configurations"]:
        mapping = c["mapping"] if c.get("mapping") else f"search: {(c.get('search') or {}).get('objective')}"
        out.append(f"| {c['name']} | {c['cascade']} | {c['arch']} | {mapping} |")
    out.append("")
    errors = [r for r in results["rows"] + results.get("area_sweep", []) if r.get("error")]
    if errors:
        out += [f"**{len(errors)} points failed**; first: {errors[0]['model']} {format_seq_len(errors[0]['seq_len'])} "
                f"{errors[0]['configuration']}: {errors[0]['error']}", ""]
    for title, headers, body in summary_tables(results):
        out += [f"## {title[0].upper()}{title[1:]}", "", "| " + " | ".join(headers) + " |",
                "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in body]
        out.append("")
    if figures:
        out += ["## Figures", ""]
        out += [f"![{f.stem}]({f.as_posix()})" for f in figures]
        out.append("")
    return "\n".join(out)


def summary_html(results: Mapping[str, Any], figures: Sequence[Path]) -> str:
    exp = results["experiment"]
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{e(exp['name'])}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
             "td.n{text-align:right}img{max-width:100%}</style></head><body>",
             f"<h1>Experiment {e(exp['name'])}</h1>"]
    if exp.get("description"):
        parts.append(f"<p>{e(exp['description'])}</p>")
    parts.append(f"<p>models: {e(', '.join(exp['models']))}; sequence lengths: "
                 f"{e(', '.join(format_seq_len(n) for n in exp['seq_lens']))}; baseline: {e(exp['baseline'])}; "
                 f"evaluator: <code>{e(str(results.get('evaluator')))}</code></p>")
    for title, headers, body in summary_tables(results):
        parts.append(f"<h2>{e(title[0].upper() + title[1:])}</h2><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in headers) + "</tr>")
        for row in body:
            parts.append("<tr>" + "".join(f"<td class='{'n' if isinstance(v, (int, float)) else ''}'>{e(_fmt(v))}</td>"
                                          for v in row) + "</tr>")
        parts.append("</table>")
    for fig in figures:
        data = base64.b64encode(Path(fig).read_bytes()).decode("ascii")
        parts.append(f"<h3>{e(Path(fig).stem)}</h3><img alt='{e(Path(fig).stem)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ==================================================================================================
# Figures
# ==================================================================================================

def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def _colors(n: int) -> list:
    from matplotlib import colormaps
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _grouped_panels(results: Mapping[str, Any], rows: list[dict[str, Any]], key: str, ylabel: str, title: str,
                    path: Path, *, log: bool = False, reference_line: float | None = 1.0) -> Path | None:
    """One panel per model; groups = sequence lengths; one bar per configuration."""
    exp = results["experiment"]
    configs = [c["name"] for c in exp["configurations"]]
    models = exp["models"]
    lens = exp["seq_lens"]
    values = {(r["model"], r["seq_len"], r["configuration"]): r.get(key) for r in rows}
    if not any(v is not None for v in values.values()):
        return None
    fig = _figure(max(4.0, 3.2 * len(models)), 3.6)
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    width = 0.8 / len(configs)
    colors = _colors(len(configs))
    for ax, model in zip(axes, models):
        for k, config in enumerate(configs):
            xs, ys = [], []
            for i, n in enumerate(lens):
                v = values.get((model, n, config))
                if v is not None:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(v)
            ax.bar(xs, ys, width, label=config, color=colors[k])
        ax.set_xticks(range(len(lens)), [format_seq_len(n) for n in lens])
        ax.set_title(model)
        ax.set_xlabel("sequence length")
        if log:
            ax.set_yscale("log")
        if reference_line is not None:
            ax.axhline(reference_line, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    return _save(fig, path)


def draw_figures(results: Mapping[str, Any], folder: Path) -> list[Path]:
    """Draw every figure the results have data for; return their paths."""
    exp = results["experiment"]
    rows = [r for r in results["rows"] if not r.get("error")]
    out: list[Path | None] = []
    for scope in exp["scopes"]:
        scoped = [r for r in rows if r["scope"] == scope]
        name = _SCOPE_TITLE.get(scope, scope)
        out.append(_grouped_panels(results, scoped, "speedup", f"speedup vs {exp['baseline']}",
                                   f"{name} speedup (normalised to {exp['baseline']})",
                                   folder / f"speedup_{scope}.png", log=True))
        out.append(_grouped_panels(results, scoped, "energy_ratio", f"energy / {exp['baseline']}",
                                   f"{name} energy (normalised to {exp['baseline']})",
                                   folder / f"energy_{scope}.png"))
    out.append(_utilization(results, rows, folder / "utilization.png"))
    out.append(_activity(results, rows, folder / "activity_2d.png"))
    out.append(_area_latency(results, folder / "area_latency.png"))
    from einloom.report.gpu_compare import gpu_figures
    out += gpu_figures(results, folder)
    return [p for p in out if p is not None]


def _utilization(results: Mapping[str, Any], rows: list[dict[str, Any]], path: Path) -> Path | None:
    exp = results["experiment"]
    scope = "attention" if "attention" in exp["scopes"] else exp["scopes"][0]
    scoped = [r for r in rows if r["scope"] == scope]
    if not any(r.get("util_2d") is not None or r.get("util_1d") is not None for r in scoped):
        return None
    configs = [c["name"] for c in exp["configurations"]]
    groups = [(m, n) for m in exp["models"] for n in exp["seq_lens"]]
    values = {(r["model"], r["seq_len"], r["configuration"]): r for r in scoped}
    fig = _figure(max(6.0, 0.45 * len(groups) * max(1, len(configs)) / 2), 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / len(configs)
    colors = _colors(len(configs))
    for ax, key, label in ((axes[0], "util_1d", "1D array utilisation"), (axes[1], "util_2d", "2D array utilisation")):
        for k, config in enumerate(configs):
            xs, ys = [], []
            for i, (m, n) in enumerate(groups):
                v = (values.get((m, n, config)) or {}).get(key)
                if v is not None:
                    xs.append(i - 0.4 + width * (k + 0.5))
                    ys.append(v)
            ax.bar(xs, ys, width, label=config, color=colors[k])
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.2)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(groups)), [f"{m}\n{format_seq_len(n)}" for m, n in groups], fontsize="small")
    axes[0].legend(fontsize="small", ncol=len(configs), loc="upper center")
    axes[0].set_title(f"array utilisation ({_SCOPE_TITLE.get(scope, scope)})")
    return _save(fig, path)


def _activity(results: Mapping[str, Any], rows: list[dict[str, Any]], path: Path) -> Path | None:
    exp = results["experiment"]
    model, n = exp.get("activity") or (exp["models"][0], exp["seq_lens"][-1])
    scope = "attention" if "attention" in exp["scopes"] else exp["scopes"][0]
    picked = [r for r in rows if r["model"] == model and r["seq_len"] == n and r["scope"] == scope
              and r.get("per_einsum_activity_2d")]
    if not picked:
        return None
    einsums: list[str] = []
    for r in picked:
        einsums += [e for e in r["per_einsum_activity_2d"] if e not in einsums]
    fig = _figure(max(5.0, 0.7 * len(einsums) + 2), 3.6)
    ax = fig.subplots()
    width = 0.8 / len(picked)
    colors = _colors(len(exp["configurations"]))
    order = [c["name"] for c in exp["configurations"]]
    for r in picked:
        k = picked.index(r)
        act = r["per_einsum_activity_2d"]
        xs = [i - 0.4 + width * (k + 0.5) for i, e in enumerate(einsums) if e in act]
        ax.bar(xs, [act[e] for e in einsums if e in act], width, label=r["configuration"],
               color=colors[order.index(r["configuration"])])
    ax.set_xticks(range(len(einsums)), einsums)
    ax.set_ylabel("proportion of time active (2D array)")
    ax.set_title(f"per-Einsum 2D activity, {model} {format_seq_len(n)}")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def _area_latency(results: Mapping[str, Any], path: Path) -> Path | None:
    """Latency and energy against area over the area sweep (absolute values, labels: array size)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    sweep = [r for r in results.get("area_sweep") or [] if not r.get("error")
             and r.get("area_um2") is not None and r.get("latency_s") is not None]
    if not sweep:
        return None
    exp = results["experiment"]
    order = [c["name"] for c in exp["configurations"]]
    colors = _colors(len(order))
    fig = _figure(11.0, 4.2)
    axes = fig.subplots(1, 2)
    for ax, key, scale, label in ((axes[0], "latency_s", 1.0, "attention latency (s)"),
                                  (axes[1], "energy_pj", 1e-12, "attention energy (J)")):
        for name in order:
            pts = sorted((r["area_um2"] / 1e6, r[key] * scale, r.get("array_size")) for r in sweep
                         if r["configuration"] == name and r.get(key) is not None)
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name,
                    color=colors[order.index(name)])
            for area, value, size in pts:
                ax.annotate(str(size), (area, value), fontsize="x-small", textcoords="offset points", xytext=(3, 3))
        values = [r[key] * scale for r in sweep if r.get(key)]
        ax.set_xscale("log")
        ax.set_yscale("log" if max(values) > 20 * min(values) else "linear")
        ax.set_xlabel("area (mm$^2$)")
        ax.set_ylabel(label)
        plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
    first = sweep[0]
    fig.suptitle(f"area sweep, {first['model']} {format_seq_len(first['seq_len'])} (labels: array size)",
                 fontsize="medium")
    axes[0].legend(fontsize="small", loc="upper right")
    return _save(fig, path)
