"""Speed of ``einloom report hardware``: a cold run (generation, cycle models, simulator, golden-model
error; no synthesis) over every library variant on one architecture, then the same command again
(every row from the cache).  Prints seconds per row and in all.

    python benchmarks/hardware_report.py [--arch rtl-2x2-bf16] [--ranks P=8,M=12]

Yosys and nextpnr are left out (minutes per design, cached by Verilog hash; ``einloom synth`` and
``rtl/fpga`` give their timings).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time


def run(args: list[str]) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "einloom.cli", "report", "hardware", *args, "--json"],
                         capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, json.loads(out)["rows"]


def main() -> None:
    from einloom.report.table import format_table
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="rtl-2x2-bf16")
    ap.add_argument("--ranks", default="P=8,M=12")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        common = ["--arch", opts.arch, "--ranks", opts.ranks, "--no-synth", "--cache-dir", cache]
        cold, rows = run(common)
        warm, again = run(common)
    assert all(r["cached"] for r in again), "the second run recomputed rows"
    body = [[r["spec"], r["core"], r["seconds"].get("generate"), r["cycles"]] for r in rows]
    print(format_table(["variant", "core", "generate s", "cycles"], body,
                       title=f"einloom report hardware on {opts.arch}, {opts.ranks} (no synthesis)"))
    built = sum(r["core"] != "refused" for r in rows)
    print(f"\ncold: {cold:.1f} s for {len(rows)} rows ({built} generated, {len(rows) - built} refused), "
          f"{cold / len(rows):.2f} s/row; cached rerun: {warm:.2f} s ({warm / len(rows) * 1e3:.0f} ms/row, "
          f"process start included)")


if __name__ == "__main__":
    main()
