"""Cross-validation report: the analytical model against the cycle-level simulator.

Per point (workload, sequence length, mapping, cascade) it lowers the cascade once and hands the same
schedule to :func:`einloom.mapper.evaluate.evaluate_schedule` and :func:`einloom.sim.simulator.simulate`,
and tabulates latency, utilization of both arrays and DRAM bytes side by side, with the simulator's
largest stall cause as the explanation of a difference.  Library variants run under their default
mapping; one that cannot be mapped is listed with the reason instead of silently dropped.  The simulator runs
``max_instances=4, slice_blocks=4``; each row says whether that extrapolation was exact.

Simulator vs RTL (:func:`rtl_rows`): the simulator configured as the generated core
(:mod:`einloom.sim.rtl_core`, parameters from each ``examples/archs/rtl-*.yaml``) on every ``einloom
verify`` case, its cycles next to the RTL's cycle formula (which the testbench asserts equal to the
measured count on unstalled cases) and its output compared bit for bit with the golden model.
"""
from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["CrossvalRow", "RtlRow", "crossval_rows", "rtl_rows", "write_report"]

RTL_CONFIGS = ("rtl-4x4-int8", "rtl-8x8-int8", "rtl-4x4-bf16")

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
    wl = load_workload(workload).with_seq_len(seq).with_ranks(dict(EXTRA_RANKS))
    try:
        c = load_cascade(cascade)
        if mapping == "default":              # the mapping einloom map picks: role-found baseline or search
            from einloom.mapper.baselines import default_mapping
            chosen, note = default_mapping(c, arch, wl, budget_s=10.0)
            row.mapping = "default: " + note.split(" (")[0]
        else:
            chosen = baseline_mapping(mapping, c, arch, wl)
        schedule = lower(c, chosen, arch, wl)
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


#: Ranks beyond the preset workloads' (MLA's latent width C and rope dimension R, at DeepSeek-V2's
#: kv_lora_rank 512 and qk_rope_head_dim 64); cascades that do not use them ignore them.
EXTRA_RANKS = (("C", 512), ("R", 64))


def crossval_rows(workloads: Iterable[str] = ("bert", "xlm"), seqs: Iterable[int] = (1024, 4096, 16384, 65536),
                  variants_at: int | None = 4096, progress: Callable[[str], None] | None = None
                  ) -> list[CrossvalRow]:
    """Every baseline at every (workload, sequence length), then every library variant under its default
    mapping (``einloom map``'s: the role-found baseline, else a 10 s search) at ``variants_at`` on the
    first workload."""
    from einloom.einsum.loader import library_names
    todo = [(w, s, m, c) for w in workloads for s in seqs for m, c in BASELINES]
    if variants_at:
        first = next(iter(workloads), "bert")
        done = {c for _m, c in BASELINES}
        todo += [(first, variants_at, "default", name) for name in library_names() if name not in done]
    rows = []
    for point in todo:
        if progress is not None:
            progress(" ".join(map(str, point)))
        rows.append(_point(*point))
    return rows


@dataclass
class RtlRow:
    config: str
    case: str
    P: int
    M: int
    causal: bool
    simulated_cycles: int
    rtl_cycles: int
    bits_equal: bool
    tiles_run: int
    tiles_skipped: int


def rtl_arch_path(name: str) -> Path:
    """A generated-core architecture: a file path, or a name of ``examples/archs/`` (``rtl-4x4-int8``)."""
    path = Path(name)
    if path.suffix:
        return path
    return Path(__file__).resolve().parents[2] / "examples" / "archs" / f"{name}.yaml"


def rtl_rows(configs: Iterable[str] = RTL_CONFIGS) -> list[RtlRow]:
    """The simulator as the generated core vs the RTL's cycle formula and the golden model, per
    ``einloom verify`` case of each configuration (architecture names or files)."""
    import numpy as np

    from einloom.rtl.attention import compute_cycles, core_params
    from einloom.rtl.config import RtlConfig
    from einloom.rtl.tb.reference import golden_masked
    from einloom.rtl.tb.suite import default_cases
    from einloom.sim.rtl_core import run_core

    rows = []
    for name in configs:
        cfg = RtlConfig.from_yaml(rtl_arch_path(name))
        params = core_params(cfg)
        for case in default_cases(cfg):
            if case.get("corrupt"):
                continue
            p_dim, m_dim, causal = case["P"], case["M"], bool(case.get("causal", False))
            mask = {"window": int(case.get("window", 0)), "sinks": int(case.get("sinks", 0))}
            rng = np.random.default_rng(case["seed"])
            sd = case.get("sd", 1.0)
            q = cfg.fmt.quantize(rng.normal(0, sd, (cfg.head_dim, p_dim)))
            k = cfg.fmt.quantize(rng.normal(0, sd, (cfg.head_dim, m_dim)))
            v = cfg.fmt.quantize(rng.normal(0, 1.0, (cfg.value_dim, m_dim)))
            run = run_core(params, p_dim, m_dim, causal, fmt=cfg.fmt, q=q, k=k, v=v, **mask)
            want = golden_masked(cfg.fmt, q, k, v, tile_m=cfg.rows, causal=causal, **mask)
            rtl = compute_cycles(cfg, p_dim, m_dim, causal, **mask)
            rows.append(RtlRow(cfg.name, case["name"], p_dim, m_dim, causal, run.cycles, rtl,
                               bool(np.array_equal(run.output, want)), run.tiles_run, run.tiles_skipped))
    return rows


RTL_HEADERS = ["config", "case", "P", "M", "causal", "simulated cycles", "RTL cycles", "sim - RTL",
               "output vs golden", "tiles run / skipped"]


def _rtl_cells(row: RtlRow) -> list[str]:
    return [row.config, row.case, str(row.P), str(row.M), "yes" if row.causal else "no",
            f"{row.simulated_cycles:,}", f"{row.rtl_cycles:,}", f"{row.simulated_cycles - row.rtl_cycles:+d}",
            "bit-equal" if row.bits_equal else "DIFFERS", f"{row.tiles_run} / {row.tiles_skipped}"]


def _cells(row: CrossvalRow) -> list[str]:
    def pair(p, fmt):
        return "-" if p is None else f"{fmt(p[0])} / {fmt(p[1])}"
    diff = row.difference
    return [row.workload, str(row.seq_len), row.mapping, row.cascade,
            "-" if row.analytical_cycles is None else f"{row.analytical_cycles:,.0f}",
            "-" if row.simulated_cycles is None else f"{row.simulated_cycles:,.0f}",
            "-" if diff is None else f"{diff:+.2%}", "n/a",
            pair(row.util_2d, lambda v: f"{v:.3f}"), pair(row.util_1d, lambda v: f"{v:.3f}"),
            pair(row.dram_bytes, lambda v: f"{v:.4g}"),
            "-" if row.extrapolation_exact is None else ("exact" if row.extrapolation_exact else "approx"),
            row.explanation]


HEADERS = ["workload", "seq", "mapping", "cascade", "analytical cycles", "simulated cycles", "sim - ana", "RTL",
           "util 2D ana/sim", "util 1D ana/sim", "DRAM B ana/sim", "extrapolation", "explanation"]


def to_markdown(rows: list[CrossvalRow], rtl: list[RtlRow] | None = None) -> str:
    out = ["# Cross-validation: analytical model vs cycle-level simulator", "",
           "Architecture `fusemax-cloud`; simulator: 4 instances and 5 iterations of the longest loop simulated, "
           "the rest extrapolated (exact when the periods repeat). The RTL column is filled where the generated core "
           "runs the point: the core is a small FuseMax-style array, so its points are the verify cases below.", "",
           "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    if rtl:
        out += ["", "## Simulator vs RTL", "",
                "The simulator configured as the generated core (`einloom.sim.rtl_core`), per `einloom verify` "
                "case; RTL cycles: the core's cycle formula, which the cocotb testbench asserts equal to the "
                "measured count on every unstalled case; output: the simulator's functional run against the "
                "golden model, which the RTL matches bit for bit.", "",
                "| " + " | ".join(RTL_HEADERS) + " |", "|" + "---|" * len(RTL_HEADERS)]
        out += ["| " + " | ".join(_rtl_cells(r)) + " |" for r in rtl]
    return "\n".join(out) + "\n"


def to_html(rows: list[CrossvalRow], plot_name: str | None, rtl: list[RtlRow] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>" for r in rows)
    img = f'<p><img src="{html.escape(plot_name)}" alt="simulated vs analytical latency"></p>' if plot_name else ""
    rtl_table = ""
    if rtl:
        rhead = "".join(f"<th>{html.escape(h)}</th>" for h in RTL_HEADERS)
        rbody = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _rtl_cells(r)) + "</tr>"
                        for r in rtl)
        rtl_table = f"<h2>Simulator vs RTL</h2><table><tr>{rhead}</tr>{rbody}</table>"
    return ("<!doctype html><html><head><meta charset='utf-8'><title>einloom cross-validation</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}"
            "table{border-collapse:collapse}</style></head><body><h1>Cross-validation: analytical vs simulator</h1>"
            f"{img}<table><tr>{head}</tr>{body}</table>{rtl_table}</body></html>\n")


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


def write_report(rows: list[CrossvalRow], out_dir: Path, rtl: list[RtlRow] | None = None) -> dict[str, Path]:
    """Write crossval.md, crossval.html, crossval.png and crossval.json (``{"points", "rtl"}``) into
    ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot(rows, out_dir / "crossval.png")
    paths = {"markdown": out_dir / "crossval.md", "html": out_dir / "crossval.html", "plot": png,
             "json": out_dir / "crossval.json"}
    paths["markdown"].write_text(to_markdown(rows, rtl))
    paths["html"].write_text(to_html(rows, png.name, rtl))
    paths["json"].write_text(json.dumps({"points": [{**asdict(r), "difference": r.difference} for r in rows],
                                         "rtl": [asdict(r) for r in rtl or []]}, indent=1))
    return paths
