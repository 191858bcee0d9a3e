"""Speed of the reference interpreter and the analyses on the variant library.

Prints wall-clock time per variant at a few sizes.  Run: ``python benchmarks/bench_interpreter.py``.
Not a test: it asserts nothing about time.
"""
from __future__ import annotations

import sys
import time

from einloom.einsum import analyse, library_names, load_cascade, random_inputs, run_cascade
from einloom.einsum.ranks import resolve
from einloom.report.table import format_table


def main(sizes=((256, 64), (1024, 64), (4096, 64))) -> None:
    rows = []
    for name in library_names():
        cascade = load_cascade(name)
        row = [name]
        start = time.perf_counter()
        analyse(cascade)
        row.append((time.perf_counter() - start) * 1e3)
        for n, d in sizes:
            defaults, _ = resolve(cascade, {})
            ranks = {k: v for k, v in defaults.items() if k in ("P", "M", "E", "F")}
            ranks.update({k: n for k in ("P", "M") if k in defaults})
            ranks.update({k: d for k in ("E", "F") if k in defaults})
            if name == "aaren" or name == "linear-causal":
                ranks = {k: min(v, 1024) for k, v in ranks.items()}
            try:
                full, _ = resolve(cascade, ranks)
            except Exception as exc:  # a variant whose ranks do not scale this way
                row.append(f"n/a ({exc})"[:20])
                continue
            inputs = random_inputs(cascade, full, 0)
            start = time.perf_counter()
            run_cascade(cascade, inputs, ranks)
            row.append((time.perf_counter() - start) * 1e3)
        rows.append(row)
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    headers = ["variant", "analyse ms"] + [f"run ms P=M={n}, E=F={d}" for n, d in sizes]
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
