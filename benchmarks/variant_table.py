"""Every library variant at one workload point: latency, energy, utilization of each array, MACs, and the
time to choose the default mapping and to search.

    python benchmarks/variant_table.py                      # fusemax-cloud, BERT, 4K
    python benchmarks/variant_table.py --arch flat-cloud --workload xlm --seq-len 16384 --json out.json

For each variant: the default mapping of ``einloom map`` (the role-matched baseline, or a budgeted search
for cascades outside the softmax family) and the latency search, each evaluated on the architecture.
``MACs`` are the multiply-accumulates the evaluator counts as executed (the cascade's ``mac`` ops in the
tiles a mask leaves, x instances), ``/dense`` their share of the same cascade's dense MACs.  split-kv-decode needs a log unit, which
fusemax-cloud lacks: it is mapped on ``examples/archs/fusemax-7nm-log-unit.yaml`` (marked ``*``).
MLA is mapped at DeepSeek-V2's kv_lora_rank C = 512 and qk_rope_head_dim R = 64.  Prints a table (and writes JSON with ``--json``); asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import library_names, load_cascade
from einloom.einsum.errors import EinloomError
from einloom.mapper.baselines import default_mapping
from einloom.mapper.evaluate import evaluate
from einloom.mapper.search import search

# one definition for both benchmark scripts (run from the repository root: benchmarks/ is on sys.path)
from bench_mapper_search import LOG_ARCH, MLA_RANKS, WithRanks  # noqa: E402


def row(name: str, arch, workload, budget: float) -> dict:
    cascade = load_cascade(name)
    out: dict = {"variant": name, "arch": arch.name}
    try:
        t = time.perf_counter()
        mapping, note = default_mapping(cascade, arch, workload)
        ev = evaluate(cascade, mapping, arch, workload)
        out["default"] = {"latency_s": ev.latency_s, "energy_pj": ev.energy_pj, "util_2d": ev.util_2d,
                          "util_1d": ev.util_1d, "macs": ev.macs, "dense_macs": ev.dense_macs,
                          "seconds": time.perf_counter() - t, "choice": note}
    except EinloomError as err:
        out["default"] = {"error": str(err)}
    try:
        found = search(cascade, arch, workload, time_budget_s=budget)
        ev = found.best
        out["search"] = {"latency_s": ev.latency_s, "energy_pj": ev.energy_pj, "util_2d": ev.util_2d,
                         "util_1d": ev.util_1d, "macs": ev.macs, "dense_macs": ev.dense_macs,
                         "seconds": found.seconds, "budget_exhausted": found.budget_exhausted,
                         "evaluated": found.evaluated}
    except EinloomError as err:
        out["search"] = {"error": str(err)}
    return out


def fmt(part: dict) -> str:
    if "error" in part:
        return f"{'error: ' + part['error'][:65]:<65}"
    share = f"{part['macs'] / part['dense_macs']:6.3f}" if part.get("dense_macs") else f"{'-':>6}"
    return (f"{part['latency_s'] * 1e3:9.3f} {part['energy_pj'] / 1e9:10.1f} {part['util_2d']:5.3f} "
            f"{part['util_1d']:5.3f} {part['macs'] / 1e9:8.1f} {share} {part['seconds']:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="fusemax-cloud")
    parser.add_argument("--workload", default="bert")
    parser.add_argument("--seq-len", type=int, default=4096)
    parser.add_argument("--budget", type=float, default=None, help="search time budget per variant (s)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    arch = load_arch(args.arch)
    log_arch = load_arch(LOG_ARCH)
    base = load_workload(args.workload).with_seq_len(args.seq_len)
    rows = []
    cols = f"{'lat ms':>9} {'energy mJ':>10} {'u2d':>5} {'u1d':>5} {'GMACs':>8} {'/dense':>6} {'time s':>6}"
    print(f"{args.arch}, {args.workload}, sequence {args.seq_len}: default mapping | latency search")
    print(f"{'variant':17} {cols} | {cols}  default choice")
    for name in library_names():
        arch_ = log_arch if name == "split-kv-decode" else arch
        workload = WithRanks(base, MLA_RANKS) if name.startswith("mla") else base
        r = row(name, arch_, workload, args.budget)
        rows.append(r)
        mark = "*" if arch_ is log_arch else " "
        print(f"{name + mark:17} {fmt(r['default'])} | {fmt(r['search'])}  {r['default'].get('choice', '')}",
              flush=True)
    print("* on fusemax-7nm-log-unit (fusemax-cloud has no log unit).  Energies in mJ = 1e9 pJ.  /dense: executed\n"
          "MACs over the dense MACs of the same cascade (masked tiles skipped; '-' where the evaluator gives none).")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
