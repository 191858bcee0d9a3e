"""Figures of a sweep report: Pareto fronts, efficiency fronts, sensitivity plots, variant x workload.

Axes carry units and readable ticks: seconds and joules with engineering prefixes (``20 ms``,
``3 mJ``), log scales (ticks at 1, 2 and 5 of each decade) when values span more than 20x, and legends
placed outside the plotting area so they never cover data.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from einloom.report.sweep import SweepData, efficiency_front, pareto_front

#: column -> (axis label, unit for engineering ticks or None for plain numbers)
AXES: dict[str, tuple[str, str | None]] = {
    "latency_s": ("latency", "s"), "energy_J": ("energy", "J"), "area_mm2": ("area (mm$^2$)", None),
    "power_W": ("average power", "W"), "tops_per_W": ("performance / power (TOPS/W)", None),
    "tops_per_mm2": ("performance / area (TOPS/mm$^2$)", None), "tops": ("performance (TOPS)", None),
}
MARKERS = "oDs^v<>Ph*X"


def _setup() -> Any:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _format_axis(ax: Any, axis: str, column: str, values: Sequence[float]) -> None:
    """Label ``ax``'s x or y axis for ``column``; log with 1-2-5 ticks when the values span > 20x."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter
    label, unit = AXES.get(column, (column, None))
    finite = [v for v in values if v is not None and np.isfinite(v) and v > 0]
    log = bool(finite) and max(finite) / min(finite) >= 10
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log" if log else "linear")
    if log:
        decades = math.log10(max(finite) / min(finite))
        target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2.2 else (1.0,)))
        target.set_minor_formatter(NullFormatter())
    if unit == "s":      # ms and us below a second, plain seconds above (no "ks")
        small = EngFormatter(unit="s")
        formatter = FuncFormatter(lambda v, _: small(v) if abs(v) < 1 else f"{v:,.0f} s" if abs(v) >= 100
                                  else f"{v:g} s")
    elif unit:
        formatter = EngFormatter(unit=unit, places=None)
    else:
        formatter = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")
    target.set_major_formatter(formatter)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(f"{label} ({unit})" if unit else label)
    ax.grid(True, which="major", alpha=0.3)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def write_figures(data: SweepData, figdir: Path) -> dict[str, list[Path]]:
    """Every figure of the report; keys ``front:<workload>``, ``sensitivity``, ``matrix``."""
    figdir.mkdir(parents=True, exist_ok=True)
    for old in figdir.glob("*.png"):
        old.unlink()
    out: dict[str, list[Path]] = defaultdict(list)
    for workload in data.workloads():
        rows = [r for r in data.done if r["workload"] == workload]
        if rows:
            out[f"front:{workload}"].append(front_figure(data, workload, rows, figdir / f"pareto_{_slug(workload)}.png"))
    for name in data.parameters:
        path = sensitivity_figure(data, name, figdir / f"sensitivity_{_slug(name)}.png")
        if path is not None:
            out["sensitivity"].append(path)
    if len(data.variants()) > 1 and len(data.workloads()) > 1:
        out["matrix"].append(matrix_figure(data, figdir / "variant_workload.png"))
    return dict(out)


def front_figure(data: SweepData, workload: str, rows: list[Mapping[str, Any]], path: Path) -> Path:
    """Four panels: latency-area, energy-area, energy-latency (the latency x energy x area front in
    colour, every other point grey), and TOPS/W vs TOPS/mm^2 with its own front."""
    plt = _setup()
    front = pareto_front(data, workload)
    efficient = efficiency_front(data, workload)
    variants = [v for v in data.variants() if any(r["variant"] == v for r in rows)]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    pairs = (("area_mm2", "latency_s"), ("area_mm2", "energy_J"), ("latency_s", "energy_J"),
             ("tops_per_mm2", "tops_per_W"))
    for ax, (xc, yc) in zip(axes.flat, pairs):
        highlight = efficient if xc == "tops_per_mm2" else front
        keys = {r["key"] for r in highlight}
        for k, variant in enumerate(variants):
            style = dict(marker=MARKERS[k % len(MARKERS)], color=f"C{k % 10}")
            mine = [r for r in rows if r["variant"] == variant]
            others = [r for r in mine if r["key"] not in keys]
            best = [r for r in mine if r["key"] in keys]
            ax.scatter([r[xc] for r in others], [r[yc] for r in others], s=14, alpha=0.45, linewidths=0, zorder=1,
                       label=variant, **style)
            ax.scatter([r[xc] for r in best], [r[yc] for r in best], s=44, edgecolors="black", linewidths=0.9,
                       zorder=3, label=variant if not others else None, **style)
        if xc == "tops_per_mm2":
            line = sorted(highlight, key=lambda r: r[xc])
            ax.plot([r[xc] for r in line], [r[yc] for r in line], color="black", lw=0.8, zorder=2)
            ax.set_title("efficiency front (both higher is better)", fontsize=10)
        else:
            ax.set_title(f"{AXES[yc][0]} vs {AXES[xc][0].split(' (')[0]} (lower is better)", fontsize=10)
        _format_axis(ax, "x", xc, [r[xc] for r in rows])
        _format_axis(ax, "y", yc, [r[yc] for r in rows])
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(f"{data.sweep.get('name')}: {workload} - {len(rows)} points evaluated; black-edged: on the "
                 f"Pareto front ({len(front)} of latency x energy x area, {len(efficient)} of TOPS/W x TOPS/mm$^2$)",
                 fontsize=11)
    columns = min(6, len(labels))
    rows_needed = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False, fontsize=9)
    fig.tight_layout(rect=(0, 0.025 + 0.028 * rows_needed, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def sensitivity_figure(data: SweepData, name: str, path: Path) -> Path | None:
    """Latency, energy, area and TOPS/W against parameter ``name``: per (workload, variant) the
    median over the other parameters (line) and their min-max range (band)."""
    rows = [r for r in data.done if r.get(name) is not None]
    values = sorted({r[name] for r in rows}, key=lambda v: (str(type(v)), v))
    if len(values) < 2:
        return None
    numeric = _numeric(values)
    if numeric and len(values) > 12:             # sampled ranges: bin into 8 quantile bins
        edges = np.quantile(np.array(values, dtype=float), np.linspace(0, 1, 9))
        position = lambda v: float(edges[min(np.searchsorted(edges, v, side="right") - 1, 7)])  # noqa: E731
    else:
        position = (lambda v: v) if numeric else (lambda v: values.index(v))  # noqa: E731
    plt = _setup()
    metrics = ("latency_s", "energy_J", "area_mm2", "tops_per_W")
    fig, axes = plt.subplots(1, 4, figsize=(15, 4))
    present = {(r["workload"], r["variant"]) for r in rows}
    groups = [(w, v) for w in data.workloads() for v in data.variants() if (w, v) in present]
    for k, group in enumerate(groups):
        mine = [r for r in rows if (r["workload"], r["variant"]) == group]
        label = f"{group[0]}, {group[1]}" if len(data.variants()) > 1 else group[0]
        for ax, metric in zip(axes, metrics):
            by_x: dict[Any, list[float]] = defaultdict(list)
            for r in mine:
                if r.get(metric) is not None:
                    by_x[position(r[name])].append(float(r[metric]))
            xs = sorted(by_x)
            if not xs:
                continue
            med = [float(np.median(by_x[x])) for x in xs]
            lo = [min(by_x[x]) for x in xs]
            hi = [max(by_x[x]) for x in xs]
            ax.plot(xs, med, marker=MARKERS[k % len(MARKERS)], color=f"C{k}", label=label, lw=1.2, ms=4)
            ax.fill_between(xs, lo, hi, color=f"C{k}", alpha=0.15, linewidth=0)
    for ax, metric in zip(axes, metrics):
        _format_axis(ax, "y", metric, [r.get(metric) for r in rows])
        if numeric:
            _format_axis(ax, "x", name, values)
            _parameter_ticks(ax, data, name, values)
            ax.set_xlabel(_parameter_label(data, name))
        else:
            ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=30, ha="right")
            ax.set_xlabel(name)
        ax.set_title(AXES[metric][0].split(" (")[0], fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False, fontsize=9)
    fig.suptitle(f"sensitivity to {name}", fontsize=11)
    fig.tight_layout(rect=(0, 0.1 if len(labels) <= 4 else 0.16, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _parameter_ticks(ax: Any, data: SweepData, name: str, values: Sequence[Any]) -> None:
    """Ticks at the swept values (up to 12 of them); byte sizes in KiB/MiB/GiB."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator
    from einloom.sweep.spec import format_bytes
    is_bytes = any(path.endswith("_bytes") for p in data.sweep.get("parameters") or [] if p.get("name") == name
                   for path in p.get("paths") or [])
    if len(values) <= 12:
        ax.xaxis.set_major_locator(FixedLocator([float(v) for v in values]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    if is_bytes:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_bytes(int(v)) if v >= 1 else f"{v:g}"))


def _parameter_label(data: SweepData, name: str) -> str:
    for p in data.sweep.get("parameters") or []:
        if p.get("name") == name:
            paths = p.get("paths") or []
            return f"{name} ({', '.join(paths)})" if paths and paths != [name] else name
    return name


def matrix_figure(data: SweepData, path: Path) -> Path:
    """Variant x workload heat map of the lowest latency (s) per cell; failed cells hatched."""
    plt = _setup()
    from matplotlib.colors import LogNorm
    variants, workloads = data.variants(), data.workloads()
    grid = np.full((len(variants), len(workloads)), np.nan)
    status = [["-"] * len(workloads) for _ in variants]
    for i, v in enumerate(variants):
        for j, w in enumerate(workloads):
            cell = [r for r in data.rows if r["variant"] == v and r["workload"] == w]
            done = [r["latency_s"] for r in cell if r["status"] == "done"]
            if done:
                grid[i, j] = min(done)
            elif cell:
                status[i][j] = "pruned" if all(r["status"] == "pruned" for r in cell) else "failed"
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(workloads), 1.2 + 0.42 * len(variants)))
    finite = grid[np.isfinite(grid)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size and finite.max() > finite.min() else None
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis_r", norm=norm, aspect="auto")
    from matplotlib.ticker import EngFormatter
    for i in range(len(variants)):
        for j in range(len(workloads)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, EngFormatter(unit="s", places=1)(grid[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if norm is not None and norm(grid[i, j]) > 0.5 else "black")
            else:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="#999999"))
                ax.text(j, i, status[i][j], ha="center", va="center", fontsize=8, color="#b00000")
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_yticks(range(len(variants)), variants)
    bar = fig.colorbar(image, ax=ax, format=EngFormatter(unit="s"))
    bar.set_label("lowest latency (s)")
    ax.set_title("variant x workload: lowest latency over the sweep's designs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
