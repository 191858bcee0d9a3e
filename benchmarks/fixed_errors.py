"""Error of the fixed-point golden model (einloom.sim.formats.fixed) against float64 attention, per
preset and shape: median and worst of max |AV_fixed - AV_float64| over N random draws.  Prints a table;
``--json PATH`` also writes the figures.

    python benchmarks/fixed_errors.py [--seeds 50] [--json out.json]

Data as in tests/sim/test_fixed_format.py (``random_attention_error``): E = F = 16, Q, K ~ N(0, sd), V ~ N(0, 1),
quantized by the format; the reference is float64 attention of the *quantized* inputs with the
format's scale, so input quantization is not counted.  Draw s uses ``numpy.random.default_rng(s)``.
The RTL is bit-exact with the model (``einloom verify``), so these are also the RTL's errors.
``err/bound`` is the worst draw's error over the bound that the tests assert (``FixedFormat.error_bound``:
``(2 ln2 2^-exp_frac_bits + 16 2^-prob_bits + 4 2^-recip_bits) max|V| + 2 2^-output_frac_bits``).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from einloom.sim.formats import FixedFormat
from einloom.sim.formats.fixed import PRESETS, random_attention_error

#: (label, M, P, causal, tile, logit sd)
SHAPES = [
    ("M=P=64, tile 4", 64, 64, False, 4, 1.0),
    ("M=P=64, tile 8", 64, 64, False, 8, 1.0),
    ("M=P=64 causal, tile 4", 64, 64, True, 4, 1.0),
    ("M=61 P=50 causal, tile 8", 61, 50, True, 8, 1.0),
    ("M=61 P=50 causal, tile 8, sd 3", 61, 50, True, 8, 3.0),
    ("M=256 P=64, tile 8", 256, 64, False, 8, 1.0),
]
DIM = 16


def measure(seeds: int) -> list[dict]:
    rows = []
    for preset in ("int8", "int16"):
        fmt = FixedFormat(PRESETS[preset], head_dim=DIM, max_keys=256)
        for label, m, p, causal, tile, sd in SHAPES:
            errs, ratios = [], []
            for s in range(seeds):
                err, vmax = random_attention_error(fmt, np.random.default_rng(s), m, p, DIM, DIM, causal=causal,
                                                   tile=tile, sd=sd)
                errs.append(err)
                ratios.append(err / fmt.error_bound(vmax))
            rows.append({"preset": preset, "shape": label, "M": m, "P": p, "causal": causal, "tile": tile,
                         "sd": sd, "seeds": seeds, "median": float(np.median(errs)), "worst": float(max(errs)),
                         "worst_over_bound": float(max(ratios))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50, help="random draws per preset and shape (default 50)")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args()
    rows = measure(args.seeds)
    print(f"max |AV_fixed - AV_float64| over {args.seeds} draws (E = F = {DIM}; inputs already quantized)")
    print(f"{'preset':6s} {'shape':32s} {'median':>9s} {'worst':>9s} {'err/bound':>9s}")
    for r in rows:
        print(f"{r['preset']:6s} {r['shape']:32s} {r['median']:9.2e} {r['worst']:9.2e} {r['worst_over_bound']:9.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"dim": DIM, "seeds": args.seeds, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
