"""Every library variant on the lane core (2D array + programmable lanes), bf16, in Amaranth's simulator:
generated or refused (and why), output elements checked bit for bit against run_in_format, measured
cycles vs the cycle model (sim/rtl_core.lane_core_cycles), 2D busy (MAC cycles / cycles).

    python benchmarks/lane_core_variants.py [--ranks P=8,M=12] [--arch examples/archs/rtl-4x4-bf16.yaml]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(spec: str, arch, sizes: dict[str, int], seed: int = 3) -> dict:
    """Every stage and head of ``spec`` (one programmable build for several stages)."""
    from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
    runs, problems = simulate_stages(spec, arch, sizes, seed=seed)
    tot = summary(runs)
    plans = list({id(r["plan"]): r["plan"] for r in runs}.values())
    shape = (f"{tot['stages']} stages; " if tot["stages"] > 1 else "") + \
        (f"{tot['runs']} head runs; " if tot["stages"] == 1 and tot["runs"] > 1 else "")
    return {"checked": tot["outputs_checked"], "problems": len(problems), "cycles": tot["cycles"],
            "model": tot["expected_cycles"], "busy": tot["busy_2d"] / tot["cycles"],
            "units": shape + ",".join(sorted({u for p in plans for u in p.program.units()}))}


def main() -> None:
    from einloom.cost_models import load_arch
    from einloom.einsum.errors import EinloomError
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.report.table import format_table
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default=str(ROOT / "examples/archs/rtl-4x4-bf16.yaml"))
    ap.add_argument("--ranks", default="P=8,M=12")
    ap.add_argument("--only", action="append", default=[])
    args = ap.parse_args()
    arch = load_arch(args.arch)
    sizes = {"E": 8, "F": 8, "J": 2, "G": 2, "H": 2, "C": 8, "R": 4, **parse_rank_assignments(args.ranks)}
    specs = args.only or sorted(p.stem for p in (ROOT / "einsum/library").glob("*.yaml"))
    rows = []
    for spec in specs:
        t0 = time.time()
        try:
            r = run_one(spec, arch, sizes)
        except EinloomError as exc:
            rows.append([spec, "refused: " + exc.message[:110], "-", "-", "-", "-", "-"])
            continue
        rows.append([spec, "yes (" + r["units"] + ")", f"{r['checked'] - r['problems']}/{r['checked']}",
                     r["cycles"], r["model"], f"{r['busy']:.1%}", f"{time.time() - t0:.0f}"])
        print(rows[-1], flush=True)
    print(format_table(["variant", "generated", "bit-exact (bf16)", "cycles", "model", "2D busy", "sim s"], rows,
                       title=f"lane core on {Path(args.arch).stem}, {args.ranks}, E=F=8"))


if __name__ == "__main__":
    main()
