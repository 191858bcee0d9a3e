"""FuseMax's headline comparison, reproduced with einloom's analytical model (prints, asserts nothing).

For BERT, TrXL, T5 and XLM at 1K..1M tokens (batch 64): attention and end-to-end latency and energy
of FuseMax (1-pass cascade, fusemax-cloud, FuseMax binding) against FLAT (3-pass cascade, flat-cloud,
FLAT's mapping at its best granularity), the arithmetic means of per-point ratios, and the 2D array
utilization.  Paper (MICRO 2024 abstract): attention 6.7x at 79% energy, end-to-end 5.3x at 83%.

    python benchmarks/bench_mapper_headline.py [--json out.json] [--search]

``--search`` also runs the mapper's search for FuseMax's cascade on fusemax-cloud at each point and
reports its latency relative to the FuseMax baseline mapping.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import evaluate_linear_layers, flat_mapping, fusemax_mapping
from einloom.mapper.evaluate import evaluate

MODELS = ("bert", "trxl", "t5", "xlm")
LENGTHS = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20)
PAPER = {"attention_speedup": 6.7, "attention_energy": 0.79, "e2e_speedup": 5.3, "e2e_energy": 0.83}


def label(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--search", action="store_true")
    args = parser.parse_args()
    fm_arch, flat_arch = load_arch("fusemax-cloud"), load_arch("flat-cloud")
    one_pass, three_pass = load_cascade("fusemax-1pass"), load_cascade("softmax-3pass")
    rows = []
    start = time.perf_counter()
    print(f"{'model':5} {'len':>4} | {'FuseMax s':>10} {'FLAT s':>10} {'speedup':>7} {'E ratio':>7} | "
          f"{'e2e spd':>7} {'e2e E':>6} | {'FM u2d':>6} {'FL u2d':>6} {'FL u1d':>6} | FLAT mapping"
          + ("  | search/base" if args.search else ""))
    for model in MODELS:
        for n in LENGTHS:
            w = load_workload(model).with_seq_len(n)
            fm = evaluate(one_pass, fusemax_mapping(fm_arch, w, one_pass), fm_arch, w)
            flm = flat_mapping(flat_arch, w, three_pass)
            fl = evaluate(three_pass, flm, flat_arch, w)
            lin_fm = evaluate_linear_layers(fm_arch, w)
            lin_fl = evaluate_linear_layers(flat_arch, w)
            e2e_fm = (fm.latency_s + sum(e.latency_s for e in lin_fm.values()),
                      fm.energy_pj + sum(e.energy_pj for e in lin_fm.values()))
            e2e_fl = (fl.latency_s + sum(e.latency_s for e in lin_fl.values()),
                      fl.energy_pj + sum(e.energy_pj for e in lin_fl.values()))
            row = {"model": model, "seq_len": n, "fusemax_latency_s": fm.latency_s, "flat_latency_s": fl.latency_s,
                   "fusemax_energy_pj": fm.energy_pj, "flat_energy_pj": fl.energy_pj,
                   "speedup": fl.latency_s / fm.latency_s, "energy_ratio": fm.energy_pj / fl.energy_pj,
                   "e2e_speedup": e2e_fl[0] / e2e_fm[0], "e2e_energy_ratio": e2e_fm[1] / e2e_fl[1],
                   "fusemax_util_2d": fm.util_2d, "flat_util_2d": fl.util_2d, "flat_util_1d": fl.util_1d,
                   "flat_mapping": flm.description}
            extra = ""
            if args.search:
                from einloom.mapper.search import search
                result = search(one_pass, fm_arch, w, objective="latency")
                row["search_over_baseline"] = result.best.latency_s / fm.latency_s
                extra = f"  | {row['search_over_baseline']:.4f}"
            rows.append(row)
            print(f"{model:5} {label(n):>4} | {fm.latency_s:10.4g} {fl.latency_s:10.4g} {row['speedup']:7.2f} "
                  f"{row['energy_ratio']:7.3f} | {row['e2e_speedup']:7.2f} {row['e2e_energy_ratio']:6.3f} | "
                  f"{fm.util_2d:6.3f} {fl.util_2d:6.3f} {fl.util_1d:6.3f} | {flm.description}{extra}")
    summary = {k: statistics.fmean(r[k] for r in rows)
               for k in ("speedup", "energy_ratio", "e2e_speedup", "e2e_energy_ratio")}
    print()
    print(f"mean attention speedup   {summary['speedup']:.2f}x   (paper {PAPER['attention_speedup']}x)")
    print(f"mean attention energy    {summary['energy_ratio']:.3f}    (paper {PAPER['attention_energy']})")
    print(f"mean end-to-end speedup  {summary['e2e_speedup']:.2f}x   (paper {PAPER['e2e_speedup']}x)")
    print(f"mean end-to-end energy   {summary['e2e_energy_ratio']:.3f}    (paper {PAPER['e2e_energy']})")
    long = [r["fusemax_util_2d"] for r in rows if r["seq_len"] >= 1 << 16]
    print(f"FuseMax 2D util at >=64K {min(long):.3f}..{max(long):.3f}   (paper ~0.99)")
    e64 = [r["flat_util_2d"] for r in rows if r["model"] != "xlm" and r["seq_len"] <= 1 << 16]
    print(f"FLAT 2D util, E=64, <=64K {min(e64):.3f}..{max(e64):.3f}  (paper 0.125)")
    print(f"({len(rows)} points in {time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "summary": summary, "paper": PAPER}, fh, indent=2)


if __name__ == "__main__":
    main()
