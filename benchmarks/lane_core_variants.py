"""Every library variant on the lane core (2D array + programmable lanes), per number format, in Amaranth's
simulator: generated or refused (and why), output elements checked bit for bit against run_in_format,
measured cycles vs the cycle model (sim/rtl_core.lane_core_cycles), 2D busy (MAC cycles / cycles), and the
golden model's error against float64 (max |output in the format - float64 interpreter| on seeded N(0, 1)
inputs, ``einloom.report.hardware.format_error``: what the bit-exact RTL computes, e.g. the fixed-point
sigmoid's and log's rounding; one-stage cascades).

    python benchmarks/lane_core_variants.py [--ranks P=8,M=12] [--arch A.yaml ...] [--int16] [--only SPEC ...]
                                            [--json F]

Default architectures: examples/archs/rtl-4x4-bf16.yaml and examples/archs/rtl-4x4-int8.yaml (one row per
variant and format); ``--int16`` adds examples/archs/rtl-4x4-int16.yaml.  A refusal prints the lane core's own message (the Einsum and the missing capability).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHS = [ROOT / "examples/archs/rtl-4x4-bf16.yaml", ROOT / "examples/archs/rtl-4x4-int8.yaml"]
INT16 = ROOT / "examples/archs/rtl-4x4-int16.yaml"


def run_one(spec: str, arch, sizes: dict[str, int], seed: int = 3) -> dict:
    """Every stage and head of ``spec`` (one programmable build for several stages)."""
    from einloom.rtl.tb.lane_core_tb import simulate_stages, summary
    runs, problems = simulate_stages(spec, arch, sizes, seed=seed)
    tot = summary(runs)
    plans = list({id(r["plan"]): r["plan"] for r in runs}.values())
    passes = max(p.program.passes for p in plans)
    rec = plans[0].recurrence
    shape = (f"{passes} passes over the keys; " if passes > 1 else "") + \
        (f"{tot['stages']} stages; " if tot["stages"] > 1 else "") + \
        (f"per-key states {', '.join(c.state for c in rec.chains)}; " if rec is not None else "") + \
        (f"{tot['runs']} head runs; " if tot["stages"] == 1 and tot["runs"] > 1 else "")
    err = None
    if tot["stages"] == 1:
        from einloom.report.hardware import format_error
        err, _ = format_error(plans[0].schedule, plans[0].cascade, arch, lane_core=True)
    return {"checked": tot["outputs_checked"], "problems": len(problems), "cycles": tot["cycles"],
            "model": tot["expected_cycles"], "busy": tot["busy_2d"] / tot["cycles"], "err_vs_fp64": err,
            "units": shape + ",".join(sorted({u for p in plans for u in p.program.units()}))}


def main() -> None:
    from einloom.cost_models import load_arch
    from einloom.einsum.errors import EinloomError
    from einloom.einsum.ranks import parse_rank_assignments
    from einloom.report.table import format_table
    from tqdm import tqdm
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", default=[], help="architecture file (repeat for several)")
    ap.add_argument("--ranks", default="P=8,M=12")
    ap.add_argument("--int16", action="store_true", help="also the int16 architecture (rtl-4x4-int16)")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--json", help="also write the rows as JSON to this file")
    args = ap.parse_args()
    archs = [Path(a) for a in args.arch] or ARCHS + ([INT16] if args.int16 else [])
    sizes = {"E": 8, "F": 8, "J": 2, "G": 2, "H": 2, "C": 8, "R": 4, **parse_rank_assignments(args.ranks)}
    specs = args.only or sorted(p.stem for p in (ROOT / "einsum/library").glob("*.yaml"))
    rows, records = [], []
    for arch_path in archs:
        arch = load_arch(str(arch_path))
        nf = (arch.rtl or {}).get("number_format") or {}
        fmt = nf.get("kind", "?") + (f" {nf['preset']}" if "preset" in nf else "")
        for spec in tqdm(specs, desc=arch_path.stem, leave=False):
            t0 = time.time()
            rec = {"variant": spec, "arch": arch_path.stem, "format": fmt}
            try:
                r = run_one(spec, arch, sizes)
            except EinloomError as exc:
                rec["refused"] = exc.message
                rows.append([spec, fmt, "refused: " + exc.message[:110], "-", "-", "-", "-", "-", "-"])
            else:
                rec.update(r, seconds=round(time.time() - t0, 1))
                rows.append([spec, fmt, "yes (" + r["units"] + ")", f"{r['checked'] - r['problems']}/{r['checked']}",
                             r["cycles"], r["model"], f"{r['busy']:.1%}",
                             "-" if r["err_vs_fp64"] is None else f"{r['err_vs_fp64']:.2e}", f"{time.time() - t0:.0f}"])
            records.append(rec)
    print(format_table(["variant", "format", "generated", "bit-exact", "cycles", "model", "2D busy", "err vs fp64",
                        "sim s"], rows,
                       title=f"lane core, {args.ranks}, E=F=8 (Amaranth simulator)"))
    if args.json:
        Path(args.json).write_text(json.dumps({"ranks": sizes, "rows": records}, indent=1))


if __name__ == "__main__":
    main()
