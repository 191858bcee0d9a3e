"""The GPU-baseline part of an experiment's report, from ``results.json``'s ``gpu_comparison``.

:func:`gpu_tables` gives (title, headers, rows) tables for the terminal, summary.md and summary.html
(headline rows, every point, rooflines, measured/roofline per kernel, the technology normalization
and its assumptions); :func:`gpu_figures` draws latency and energy per attention call against the
sequence length, accelerator vs the best measured GPU kernel vs each GPU's roofline.  Both return
nothing when the experiment has no ``gpu_baselines:`` section.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from einloom.experiment import format_seq_len

Table = tuple[str, list[str], list[list[Any]]]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _point_label(p: Mapping[str, Any]) -> str:
    return f"{p['model']} {format_seq_len(p['seq_len'])}"


def headline_rows(comparison: Mapping[str, Any]) -> list[list[Any]]:
    """The headline points (accelerator vs best measured kernel, raw and technology-normalized)."""
    wanted = [(h["model"], h["seq_len"]) for h in comparison.get("headline") or []]
    by_key = {(p["model"], p["seq_len"]): p for p in comparison["points"]}
    rows = []
    for key in wanted:
        p = by_key.get(key)
        if p is None:
            rows.append([f"{key[0]} {format_seq_len(key[1])}"] + ["-"] * 11)
            continue
        g, a, n, r = p["gpu_measured"] or {}, p["accelerator"], p["normalized"], p["ratios"]
        rows.append([_point_label(p), g.get("kernel", f"roofline {n['gpu']}"), _ms(a["latency_s"]),
                     _ms(g.get("latency_s") or p["rooflines"].get(n["gpu"], {}).get("latency_s")), r["speedup"],
                     a["energy_j"], g.get("energy_j"), r["energy_ratio"], n["energy_j"], r["energy_ratio_normalized"],
                     r["speedup_iso_area"], r["speedup_iso_power"]])
    return rows


_HEADLINE_HEADERS = ["point", "best GPU kernel", "accel ms", "GPU ms", "accel speedup", "accel J", "GPU J",
                     "accel/GPU energy", "accel J @GPU node", "norm. energy ratio", "speedup iso-area",
                     "speedup iso-power"]


def gpu_tables(results: Mapping[str, Any]) -> list[Table]:
    """Every GPU-comparison table of ``results`` ([] without a comparison)."""
    comp = results.get("gpu_comparison")
    if not comp:
        return []
    gpu = comp.get("measured_gpu") or "GPU"
    ds = comp["dataset"]
    where = (f"{ds.get('device')}, torch {ds.get('torch')}, CUDA {ds.get('cuda')}, driver {ds.get('driver')}, "
             f"{ds.get('points')} measured points, {ds.get('date')}")
    tables: list[Table] = []
    if comp.get("headline"):
        tables.append((f"GPU baselines, headline: {comp['accelerator']} vs the best {gpu} kernel ({comp['dtype']}; "
                       f"speedup = GPU time / accelerator time, energy ratio = accelerator / GPU; normalized to "
                       f"the GPU's node, iso-area and iso-power)", _HEADLINE_HEADERS, headline_rows(comp)))
    body = []
    for p in comp["points"]:
        g, a = p["gpu_measured"], p["accelerator"]
        if g is None:  # no measurement of this shape: the measured GPU's roofline stands in (time only)
            key = p["normalized"]["gpu"]
            line = p["rooflines"].get(key, {})
            g = {"kernel": f"({key} roofline)", "latency_s": line.get("latency_s"), "tflops": line.get("tflops")}
        body.append([_point_label(p), p["variant"], _ms(a["latency_s"]), a["tflops"], a["energy_j"], a["pj_per_flop"],
                     g.get("kernel", "-"), _ms(g.get("latency_s")), g.get("tflops"), g.get("energy_j"),
                     g.get("pj_per_flop"), g.get("roofline_fraction"), p["ratios"]["speedup"],
                     p["ratios"]["energy_ratio"]])
    tables.append((f"GPU baselines, every point: {comp['accelerator']} vs the best measured kernel ({where})",
                   ["point", "mask", "accel ms", "accel TFLOP/s", "accel J", "accel pJ/FLOP", "GPU kernel", "GPU ms",
                    "GPU TFLOP/s", "GPU J", "GPU pJ/FLOP", "GPU measured/roofline", "accel speedup",
                    "accel/GPU energy"], body))
    gpus = list(comp["gpus"])
    body = []
    for p in comp["points"]:
        line = [_point_label(p), p["rooflines"][gpus[0]]["bound"] if gpus else "-"]
        for key in gpus:
            r = p["rooflines"][key]
            line += [_ms(r["latency_s"]), r["tflops"], r["energy_j"]]
        body.append(line)
    headers = ["point", f"bound ({gpus[0]})" if gpus else "bound"]
    for key in gpus:
        headers += [f"{key} ms", f"{key} TFLOP/s", f"{key} J at TDP"]
    tables.append(("GPU rooflines (datasheet peak dense tensor rate and HBM bandwidth; energy = TDP x time)",
                   headers, body))
    ratios = comp.get("roofline_ratios") or []
    if ratios:
        tables.append((f"measured / roofline on the {gpu}, per kernel (1.0 = at the datasheet peak)",
                       ["kernel", "points", "median", "min", "max"],
                       [[r["kernel"], r["points"], r["median"], r["min"], r["max"]] for r in ratios]))
    body = []
    for p in comp["points"]:
        n = p["normalized"]
        body.append([_point_label(p), f"{p['accelerator']['node_nm']} -> {n['node_nm']} nm", n["energy_factor"],
                     p["accelerator"]["area_mm2"], n["area_mm2"], n["power_w"], n["iso_area"]["copies"],
                     _ms(n["iso_area"]["latency_s"]), n["iso_power"]["copies"], _ms(n["iso_power"]["latency_s"]),
                     "yes" if n["iso_area"].get("hbm_bound") or n["iso_power"].get("hbm_bound") else "no"])
    tables.append((f"technology-normalized {comp['accelerator']} (to the {gpu}'s node)",
                   ["point", "node", "energy factor", "area mm2", "area mm2 scaled", "power W scaled",
                    "iso-area copies", "iso-area ms", "iso-power copies", "iso-power ms", "HBM-bound"], body))
    tables.append(("GPU comparison: assumptions", ["assumption"], [[a] for a in comp["assumptions"]]))
    if comp.get("failed"):
        tables.append(("GPU comparison: accelerator points without a result", ["point", "error"],
                       [[f"{f['model']} {format_seq_len(f['seq_len'])}", f.get("error")] for f in comp["failed"]]))
    return tables


# ==================================================================================================
# Figures
# ==================================================================================================

def gpu_figures(results: Mapping[str, Any], folder: Path) -> list[Path]:
    """``gpu_latency.png`` and ``gpu_energy.png`` (one panel per model, log-log vs sequence length)."""
    comp = results.get("gpu_comparison")
    if not comp or not comp["points"]:
        return []
    from einloom.report.experiment import _colors, _figure, _save  # noqa: PLC0415 (shared figure helpers)
    models: list[str] = []
    for p in comp["points"]:
        if p["model"] not in models:
            models.append(p["model"])
    out = []
    for metric, ylabel, fname in (("latency_s", "latency per attention call (s)", "gpu_latency.png"),
                                  ("energy_j", "energy per attention call (J)", "gpu_energy.png")):
        fig = _figure(max(4.5, 3.3 * len(models)), 3.8)
        axes = fig.subplots(1, len(models), squeeze=False)[0]
        colors = _colors(3 + len(comp["gpus"]))
        for ax, model in zip(axes, models):
            pts = sorted((p for p in comp["points"] if p["model"] == model), key=lambda p: p["seq_len"])
            xs = [p["seq_len"] for p in pts]
            series = [
                (comp["accelerator"], [p["accelerator"][metric] for p in pts], "-", "o", colors[0]),
                (f"{comp['accelerator']} @{pts[0]['normalized']['node_nm']} nm"
                 + (" iso-area" if metric == "latency_s" else ""),
                 [p["normalized"]["iso_area"]["latency_s"] if metric == "latency_s" else p["normalized"]["energy_j"]
                  for p in pts], "-", "s", colors[1]),
                (f"best {comp.get('measured_gpu') or 'GPU'} kernel (measured)",
                 [(p["gpu_measured"] or {}).get(metric) for p in pts], "none", "D", colors[2])]
            for k, key in enumerate(comp["gpus"]):
                series.append((f"{key} roofline" + (" (TDP)" if metric == "energy_j" else ""),
                               [p["rooflines"][key][metric] for p in pts], "--", "_", colors[3 + k]))
            for label, ys, style, marker, color in series:
                pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
                if pairs:
                    ax.plot([x for x, _ in pairs], [y for _, y in pairs], linestyle=style, marker=marker, label=label,
                            color=color, linewidth=1.2, markersize=4)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(xs, [format_seq_len(x) for x in xs], fontsize="small")
            ax.set_title(f"{model} ({pts[0]['phase']})")
            ax.set_xlabel("sequence length")
            ax.grid(alpha=0.3, which="both")
        axes[0].set_ylabel(ylabel)
        axes[-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.suptitle(f"{comp['accelerator']} vs GPU kernels: {ylabel.split(' per')[0]}")
        out.append(_save(fig, folder / fname))
    return out
