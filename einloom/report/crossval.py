"""Cross-validation report: the analytical model against the cycle-level simulator.

Per point (workload, sequence length, mapping, cascade) it lowers the cascade once and hands the same
schedule to :func:`einloom.mapper.evaluate.evaluate_schedule` and :func:`einloom.sim.simulator.simulate`,
and tabulates latency, utilization of both arrays and DRAM bytes side by side, with the simulator's
largest stall cause as the explanation of a difference.  Library variants that no baseline mapping can
place are listed with the reason instead of silently dropped.  The simulator runs
``max_instances=4, slice_blocks=4``; each row says whether that extrapolation was exact.

The RTL column is not filled here: the RTL-shaped phase model of the simulator is not built yet
(see the report's notes).
"""
from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["CrossvalRow", "crossval_rows", "write_report"]

BASELINES = (("fusemax", "fusemax-1pass"), ("flat", "softmax-3pass"), ("unfused", "softmax-3pass"))


@dataclass
class CrossvalRow:
    workload: str
    seq_len: int
    mapping: str
    cascade: str
    analytical_cycles: float | None = None
    simulated_cycles: float | None = None
    util_2d: tuple[float, float] | None = None           # (analytical, simulated)
    util_1d: tuple[float, float] | None = None
    dram_bytes: tuple[float, float] | None = None
    extrapolation_exact: bool | None = None
    explanation: str = ""

    @property
    def difference(self) -> float | None:
        if not self.analytical_cycles or self.simulated_cycles is None:
            return None
        return self.simulated_cycles / self.analytical_cycles - 1.0


def _explain(sim: Any, diff: float) -> str:
    """The simulator's account of a difference: its largest stall cause on the busiest array."""
    if abs(diff) < 0.005:
        return "agree (the simulator adds one pipeline fill)"
    busiest = max(("2d", "1d"), key=lambda u: sim.busy.get(u, 0.0))
    stalls = sim.stalls.get(busiest, {})
    cause, cycles = max(stalls.items(), key=lambda kv: kv[1], default=("none", 0.0))
    share = cycles / sim.latency_cycles if sim.latency_cycles else 0.0
    return (f"{busiest} array stalls {share:.1%} of the run on '{cause}'; the model's max(compute, DRAM) per "
            f"group assumes DRAM demand spread evenly over the group's passes and kernels")


def _point(workload: str, seq: int, mapping: str, cascade: str) -> CrossvalRow:
    from einloom.cost_models import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.errors import EinloomError
    from einloom.mapper.baselines import baseline_mapping
    from einloom.mapper.evaluate import evaluate_schedule
    from einloom.mapper.lower import lower
    from einloom.sim.simulator import SimOptions, simulate

    row = CrossvalRow(workload, seq, mapping, cascade)
    arch = load_arch("fusemax-cloud")
    wl = load_workload(workload).with_seq_len(seq)
    try:
        c = load_cascade(cascade)
        schedule = lower(c, baseline_mapping(mapping, c, arch, wl), arch, wl)
    except EinloomError as error:
        row.explanation = f"not mapped: {str(error).splitlines()[0]}"
        return row
    ana = evaluate_schedule(schedule)
    sim = simulate(schedule, SimOptions(max_instances=4, slice_blocks=4))
    row.analytical_cycles, row.simulated_cycles = ana.latency_cycles, sim.latency_cycles
    row.util_2d = (ana.util_2d, sim.utilization["2d"])
    row.util_1d = (ana.util_1d, sim.utilization["1d"])
    row.dram_bytes = (ana.dram_bytes, sim.dram_bytes)
    row.extrapolation_exact = "approximate" not in sim.extrapolation
    row.explanation = _explain(sim, row.difference or 0.0)
    return row


def crossval_rows(workloads: Iterable[str] = ("bert", "xlm"), seqs: Iterable[int] = (1024, 4096, 16384, 65536),
                  variants_at: int | None = 4096, progress: Callable[[str], None] | None = None
                  ) -> list[CrossvalRow]:
    """Every baseline at every (workload, sequence length), then every library variant under the FuseMax
    mapping at ``variants_at`` on the first workload."""
    from einloom.einsum.loader import library_names
    todo = [(w, s, m, c) for w in workloads for s in seqs for m, c in BASELINES]
    if variants_at:
        first = next(iter(workloads), "bert")
        done = {c for _m, c in BASELINES}
        todo += [(first, variants_at, "fusemax", name) for name in library_names() if name not in done]
    rows = []
    for point in todo:
        if progress is not None:
            progress(" ".join(map(str, point)))
        rows.append(_point(*point))
    return rows


def _cells(row: CrossvalRow) -> list[str]:
    def pair(p, fmt):
        return "-" if p is None else f"{fmt(p[0])} / {fmt(p[1])}"
    diff = row.difference
    return [row.workload, str(row.seq_len), row.mapping, row.cascade,
            "-" if row.analytical_cycles is None else f"{row.analytical_cycles:,.0f}",
            "-" if row.simulated_cycles is None else f"{row.simulated_cycles:,.0f}",
            "-" if diff is None else f"{diff:+.2%}", "-",
            pair(row.util_2d, lambda v: f"{v:.3f}"), pair(row.util_1d, lambda v: f"{v:.3f}"),
            pair(row.dram_bytes, lambda v: f"{v:.4g}"),
            "-" if row.extrapolation_exact is None else ("exact" if row.extrapolation_exact else "approx"),
            row.explanation]


HEADERS = ["workload", "seq", "mapping", "cascade", "analytical cycles", "simulated cycles", "sim - ana", "RTL",
           "util 2D ana/sim", "util 1D ana/sim", "DRAM B ana/sim", "extrapolation", "explanation"]


def to_markdown(rows: list[CrossvalRow]) -> str:
    out = ["# Cross-validation: analytical model vs cycle-level simulator", "",
           "Architecture `fusemax-cloud`; simulator: 4 instances and 5 iterations of the longest loop simulated, "
           "the rest extrapolated (exact when the periods repeat). RTL: not configured in this report.", "",
           "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_html(rows: list[CrossvalRow], plot_name: str | None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    img = f'<p><img src="{html.escape(plot_name)}" alt="simulated vs analytical latency"></p>' if plot_name else ""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>einloom cross-validation</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
            "table{border-collapse:collapse}</style></head><body><h1>Cross-validation: analytical vs simulator</h1>"
            f"{img}<table><tr>{head}</tr>{body}</table></body></html>\n")


def plot(rows: list[CrossvalRow], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    done = [r for r in rows if r.difference is not None]
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(done)), 4))
    ax.bar(range(len(done)), [100 * r.difference for r in done],
           color=["tab:red" if abs(r.difference) > 0.05 else "tab:blue" for r in done])
    ax.axhline(5, ls="--", c="gray")
    ax.axhline(-5, ls="--", c="gray")
    ax.set_xticks(range(len(done)))
    ax.set_xticklabels([f"{r.workload} {r.seq_len // 1024}K {r.mapping} {r.cascade}" for r in done],
                       rotation=90, fontsize=6)
    ax.set_ylabel("simulated - analytical latency (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(rows: list[CrossvalRow], out_dir: Path) -> dict[str, Path]:
    """Write crossval.md, crossval.html, crossval.png and crossval.json into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(rows, out_dir / "crossval.png")
    paths = {"markdown": out_dir / "crossval.md", "html": out_dir / "crossval.html", "plot": png,
             "json": out_dir / "crossval.json"}
    paths["markdown"].write_text(to_markdown(rows))
    paths["html"].write_text(to_html(rows, png.name))
    paths["json"].write_text(json.dumps([{**asdict(r), "difference": r.difference} for r in rows], indent=1))
    return paths
