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
    from einloom.einsum import load_cascade
    from einloom.rtl.lanes.stages import split_stages
    from einloom.rtl.tb.lane_core_tb import simulate, simulate_stages
    if len(split_stages(load_cascade(spec))) > 1:      # several runs on one programmable build
        stages, problems = simulate_stages(spec, arch, sizes, seed=seed)
        last = stages[-1]["data"]
        cycles = sum(s["result"]["cycles"] for s in stages)
        return {"checked": sum(int(v.sum()) for v in last.valid.values()), "problems": len(problems),
                "cycles": cycles, "model": sum(s["model"]["compute_cycles"] for s in stages),
                "busy": sum(s["result"]["busy_2d"] for s in stages) / cycles,
                "units": f"{len(stages)} stages: " + ",".join(sorted({u for s in stages for u in s["plan"].program.units()}))}
    res, problems, model, data, plan = simulate(spec, arch, sizes, seed=seed)
    return {"checked": sum(int(v.sum()) for v in data.valid.values()), "problems": len(problems),
            "cycles": res["cycles"], "model": model["compute_cycles"], "busy": res["busy_2d"] / res["cycles"],
            "units": ",".join(plan.program.units())}


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
    sizes = {"E": 8, "F": 8, **parse_rank_assignments(args.ranks)}
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
