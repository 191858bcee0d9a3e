"""Speed of the mapper's search (mappings evaluated per second, one core), and search vs FuseMax.

    python benchmarks/bench_mapper_search.py            # mappings/s on a few points
    python benchmarks/bench_mapper_search.py --sweep    # + every BERT/TrXL/T5/XLM x 1K..1M point:
                                                        #   best found latency / FuseMax baseline's

Also times the raw vectorized evaluator on one large family (no enumeration overhead).
Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import fusemax_mapping
from einloom.mapper.evaluate import _view_for, check_mapping, evaluate, evaluate_family, _hardware
from einloom.mapper.search import search

MODELS = ("bert", "trxl", "t5", "xlm")
LENGTHS = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20)


def label(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="all 24 workload points against the baseline")
    parser.add_argument("--objective", default="latency", choices=["latency", "energy", "edp"])
    args = parser.parse_args()
    arch = load_arch("fusemax-cloud")
    cascade = load_cascade("fusemax-1pass")

    # raw evaluator throughput: one family of 100k tilings of FuseMax's binding
    w = load_workload("bert").with_seq_len(1 << 16)
    base = fusemax_mapping(arch, w, cascade)
    rm = check_mapping(_view_for(cascade, base, w, None), base, _hardware(arch))
    n = 100_000
    rng = np.random.default_rng(0)
    p_tiles = 256
    p1 = 2.0 ** rng.integers(0, 9, n)
    t = time.perf_counter()
    evaluate_family(rm, {("DRAM", "P"): p_tiles / p1, ("GLB", "P"): p1}, instances=768)
    dt = time.perf_counter() - t
    print(f"evaluator: one family of {n} FuseMax tilings in {dt * 1e3:.1f} ms = {n / dt:,.0f} mappings/s")

    points = [(m, L) for m in MODELS for L in LENGTHS] if args.sweep else \
        [("bert", 1 << 10), ("bert", 1 << 14), ("xlm", 1 << 16)]
    total_eval = total_s = 0.0
    worst = 0.0
    slowest = float("inf")
    print(f"{'model':5} {'len':>4} | {'evaluated':>10} {'families':>8} {'seconds':>7} {'mappings/s':>11} | "
          f"{'search/baseline':>15}")
    for model, L in points:
        w = load_workload(model).with_seq_len(L)
        baseline = evaluate(cascade, fusemax_mapping(arch, w, cascade), arch, w)
        r = search(cascade, arch, w, objective=args.objective)
        metric = {"latency": lambda e: e.latency_s, "energy": lambda e: e.energy_pj,
                  "edp": lambda e: e.latency_s * e.energy_pj}[args.objective]
        ratio = metric(r.best) / metric(baseline)
        worst = max(worst, ratio)
        total_eval += r.evaluated
        total_s += r.seconds
        slowest = min(slowest, r.mappings_per_s)
        print(f"{model:5} {label(L):>4} | {r.evaluated:10d} {r.families:8d} {r.seconds:7.2f} "
              f"{r.mappings_per_s:11,.0f} | {ratio:15.4f}")
    print(f"overall: {total_eval:,.0f} mappings in {total_s:.1f} s = {total_eval / total_s:,.0f} mappings/s "
          f"(slowest point {slowest:,.0f}/s); worst search/baseline {args.objective} ratio {worst:.4f} "
          "(<= 1 means at least as good)")


if __name__ == "__main__":
    main()
