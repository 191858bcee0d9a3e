"""Error of the bf16/fp32 golden model (einloom.sim.formats.bf16) against float64: per unit and for
whole 1-pass attention.  Prints a table; ``--json PATH`` also writes the figures.

    python benchmarks/bf16_errors.py [--n 2000000] [--json out.json]

Units are measured in fp32 ulps of the exact (float64) result (bf16 ulps for fp32 -> bf16);
attention in max |AV - AV_float64| / max |AV_float64| and rms(err) / rms(AV_float64), against
float64 attention of the same bf16-rounded inputs (so input quantization is not counted).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from einloom.sim.formats import bf16 as B
from einloom.sim.formats.base import float_attention

MIN_NORMAL = 2.0**-126
#: the QK accumulate's interleaved partial sums: 1 (the single-cycle order) and 4 (the rtl-4x4-bf16 core's)
ACC_LATENCIES = (1, 4)


def ulps32(bits, exact):
    exact = np.asarray(exact, dtype=np.float64)
    ok = (np.abs(exact) > MIN_NORMAL * 1.001) & (np.abs(exact) < 3.4e38)
    return B.fp32_ulp_error(np.asarray(bits)[ok], exact[ok])


def random_normal32(rng, n, emin, emax):
    return ((rng.integers(0, 2, n, dtype=np.uint32) << 31) | (rng.integers(emin, emax + 1, n, dtype=np.uint32) << 23)
            | rng.integers(0, 1 << 23, n, dtype=np.uint32))


def unit_errors(n: int, rng) -> dict[str, dict[str, float]]:
    out = {}
    a = random_normal32(rng, n, 1, 253)
    got = B.bf16_value(B.fp32_to_bf16(a)).astype(np.float64)
    exact = B.fp32_value(a).astype(np.float64)
    ulp16 = np.exp2(np.floor(np.log2(np.abs(exact))) - 7)
    e = np.abs(got - exact) / ulp16
    out["fp32_to_bf16 (bf16 ulp)"] = {"max": e.max(), "mean": e.mean()}
    x, y = random_normal32(rng, n, 64, 190), random_normal32(rng, n, 64, 190)
    xb, yb = B.fp32_to_bf16(x), B.fp32_to_bf16(y)
    e = ulps32(B.bf16_mul(xb, yb), B.bf16_value(xb).astype(np.float64) * B.bf16_value(yb).astype(np.float64))
    out["bf16_mul"] = {"max": e.max(), "mean": e.mean()}
    xv, yv = B.fp32_value(x).astype(np.float64), B.fp32_value(y).astype(np.float64)
    e = ulps32(B.fp32_mul(x, y), xv * yv)
    out["fp32_mul"] = {"max": e.max(), "mean": e.mean()}
    ea = (x >> 23) & 0xFF
    y2 = (y & np.uint32(0x807FFFFF)) | (np.clip(ea.astype(np.int64) + rng.integers(-3, 4, n), 1, 254).astype(np.uint32) << 23)
    e = ulps32(B.fp32_add(x, y2), xv + B.fp32_value(y2).astype(np.float64))
    out["fp32_add"] = {"max": e.max(), "mean": e.mean()}
    v = np.concatenate([rng.uniform(-87, 88, n), rng.uniform(-20, 0, n)]).astype(np.float32)
    e = ulps32(B.fp32_exp(B.fp32_bits(v)), np.exp(v.astype(np.float64)))
    out["fp32_exp"] = {"max": e.max(), "mean": e.mean()}
    r = random_normal32(rng, n, 2, 252)
    e = ulps32(B.fp32_recip(r), 1.0 / B.fp32_value(r).astype(np.float64))
    out["fp32_recip"] = {"max": e.max(), "mean": e.mean()}
    return out


def attention_errors(rng) -> list[dict]:
    rows = []
    for e_dim, f_dim, p, m, tile, causal, sd in [(8, 8, 16, 16, 4, False, 1.0), (8, 8, 16, 16, 4, True, 1.0),
                                                 (64, 64, 64, 256, 16, False, 1.0),
                                                 (64, 64, 128, 128, 32, True, 1.0),
                                                 (64, 64, 64, 256, 64, False, 3.0)]:
        q = rng.normal(0, sd, (e_dim, p))
        k = rng.normal(0, sd, (e_dim, m))
        v = rng.normal(0, 1, (f_dim, m))
        qb, kb, vb = (B.bf16_quantize(t).astype(np.float64) for t in (q, k, v))
        ref = float_attention(qb, kb, vb, scale=float(B.fp32_value(B.fp32_bits(1 / np.sqrt(e_dim)))),
                              causal=causal)
        for lat in ACC_LATENCIES:
            row = {"E": e_dim, "F": f_dim, "P": p, "M": m, "tile": tile, "causal": causal, "sd": sd, "acc_latency": lat}
            for out in ("fp32", "bf16"):
                got = B.golden_attention_bf16(q, k, v, tile=tile, causal=causal, output=out,
                                              acc_latency=lat).astype(np.float64)
                err = np.abs(got - ref)
                row[f"{out}_rel_max"] = float(err.max() / np.abs(ref).max())
                row[f"{out}_rel_rms"] = float(np.sqrt((err**2).mean() / (ref**2).mean()))
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    units = unit_errors(args.n, rng)
    print(f"{'unit':28s} {'max ulp':>9s} {'mean ulp':>9s}")
    for name, r in units.items():
        print(f"{name:28s} {r['max']:9.4f} {r['mean']:9.4f}")
    att = attention_errors(rng)
    print("\nattention vs float64 (same bf16 inputs): max = max|err| / max|ref|, rms = rms(err) / rms(ref);"
          " output rounded to fp32 or bf16; L: the QK accumulate's interleaved partial sums (acc_latency)")
    print(f"{'E':>3s} {'F':>3s} {'P':>4s} {'M':>4s} {'tile':>4s} {'causal':>6s} {'sd':>3s} {'L':>2s} "
          f"{'fp32 max':>9s} {'fp32 rms':>9s} {'bf16 max':>9s} {'bf16 rms':>9s}")
    for r in att:
        print(f"{r['E']:3d} {r['F']:3d} {r['P']:4d} {r['M']:4d} {r['tile']:4d} {str(r['causal']):>6s} {r['sd']:3.0f} "
              f"{r['acc_latency']:2d} "
              f"{r['fp32_rel_max']:9.2e} {r['fp32_rel_rms']:9.2e} {r['bf16_rel_max']:9.2e} {r['bf16_rel_rms']:9.2e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"units": units, "attention": att}, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
