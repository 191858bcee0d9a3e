"""The generated core's cycles (= RTL) next to the schedule-level simulator and the mapper's model.

For each (spec, architecture, sizes): what ``einloom sim SPEC --arch A --workload rtl-small --json``
reports: the core the generator builds and its cycle model (``sim/rtl_core``, which the testbenches
assert equal to the measured RTL cycles), the event simulator on the same schedule, and the mapper's
analytical model; ratios to the core.  Run: ``python benchmarks/sim_vs_core.py``.  Prints figures,
asserts nothing.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

from einloom.cli import main as cli
from einloom.report.table import format_table

ROOT = Path(__file__).resolve().parents[1]
CASES = [  # spec, arch, extra flags
    ("fusemax-1pass", "rtl-4x4-int8", []), ("causal-1pass", "rtl-4x4-int8", []),
    ("fusemax-1pass", "rtl-8x8-int8", []), ("causal-1pass", "rtl-8x8-int8", []),
    ("fusemax-1pass", "rtl-4x4-bf16", ["--seq-len", "32", "--ranks", "E=8,F=8"]),
    ("causal-1pass", "rtl-4x4-bf16", ["--seq-len", "32", "--ranks", "E=8,F=8"]),
    ("fusemax-1pass", "rtl-4x4-int8", ["--seq-len", "128", "--ranks", "P=64"]),
    ("alibi", "rtl-4x4-int8", ["--ranks", "P=8,M=12,E=8,F=8"]),
    ("relu-attention", "rtl-4x4-bf16", ["--ranks", "P=8,M=12,E=8,F=8"]),
]


def run(spec: str, arch: str, extra: list[str]) -> dict:
    out = io.StringIO()
    argv = ["sim", spec, "--arch", str(ROOT / "examples" / "archs" / f"{arch}.yaml"),
            "--workload", str(ROOT / "examples" / "workloads" / "rtl-small.yaml"), "--json", *extra]
    with contextlib.redirect_stdout(out):
        status = cli(argv)
    if status:
        raise SystemExit(f"einloom {' '.join(argv)}: exit {status}")
    return json.loads(out.getvalue())


def main() -> None:
    rows = []
    for spec, arch, extra in CASES:
        data = run(spec, arch, extra)
        core, sim, model = data["generated_core"], data["simulation"], data["analytical"]
        if core["core"] == "refused":
            rows.append([spec, arch, "-", "refused", "", "", "", "", "", ""])
            continue
        ranks = " ".join(f"{k}={v}" for k, v in core["ranks"].items())
        c = core["cycles"]
        rows.append([spec, arch, ranks, core["core"], f"{c:,}", f"{core['util_2d']:.3f}",
                     f"{sim['latency_cycles']:,.0f}", f"{sim['latency_cycles'] / c:.3f}",
                     f"{model['latency_cycles']:,.0f}", f"{model['latency_cycles'] / c:.3f}"])
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(format_table(["spec", "arch", "ranks", "core", "core cycles (= RTL)", "core 2D util",
                        "event sim", "sim / core", "mapper model", "model / core"], rows))


if __name__ == "__main__":
    main()
