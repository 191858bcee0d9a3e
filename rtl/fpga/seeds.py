"""A placement-seed sweep: one synthesized core placed and routed with several nextpnr seeds.

nextpnr's analytic placer starts from a seeded random state, and on a design whose critical paths are
mostly routing (the generated cores': 70-95 %) one seed's Fmax is one sample of a wide distribution
(the 4x4 int8 core: 81.7-99.6 MHz over seeds 1-5).  A seed sweep is how a user finds the placement to
build, and the spread is what a single figure hides: :func:`sweep_seeds` routes every seed (synthesis
and the part choice once, from the first seed's run; every seed cached on its own) and reports the
best seed's result with the whole distribution beside it.

Cost: one place and route per seed (the 4x4 int8 core: 3-7 min each on a 2-core machine); ``jobs``
runs that many at once (each nextpnr is single-threaded).
"""
from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from einloom.einsum.errors import Location, ToolError
from einloom.rtl.fpga.flow import SynthResult, synthesize

#: the most seeds one sweep takes (each is a whole place and route)
MAX_SEEDS = 64


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``"1-5"``, ``"1,3,7"`` or a mix (``"1-3,9"``) as a list of distinct non-negative seeds, in the
    order given.  Anything else, an empty list, a duplicate or more than :data:`MAX_SEEDS` seeds is a
    one-line :class:`ToolError` naming ``flag``."""
    seeds: list[int] = []
    hint = "pass seeds as e.g. 1-5 or 1,3,7"
    for part in text.split(","):
        part = part.strip()
        lo_text, dash, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if dash else lo
        except ValueError:
            raise ToolError(f"{part!r} is not a seed or a seed range", location=Location(field=flag),
                            hint=hint) from None
        if lo < 0 or hi < lo:
            raise ToolError(f"{part!r}: seeds are non-negative and a range runs upwards",
                            location=Location(field=flag), hint=hint)
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ToolError(f"more than {MAX_SEEDS} seeds (each is a whole place and route)",
                            location=Location(field=flag), hint="sweep fewer seeds, e.g. 1-8")
        for seed in range(lo, hi + 1):
            if seed in seeds:
                raise ToolError(f"seed {seed} is given twice", location=Location(field=flag), hint=hint)
            seeds.append(seed)
    return seeds


@dataclass
class SeedSweep:
    """The runs of a seed sweep (in the seeds' order) and the best of them (highest Fmax; the first
    seed's on a tie)."""

    runs: list[SynthResult]

    @property
    def best(self) -> SynthResult:
        return max(self.runs, key=lambda r: (r.fmax_mhz or 0.0, -self.runs.index(r)))

    def summary(self) -> dict:
        """JSON-ready: per seed its Fmax, router and critical path; min / median / max Fmax, best seed."""
        fmax = [r.fmax_mhz for r in self.runs if r.fmax_mhz is not None]
        return {
            "seeds": [{"seed": r.pnr["seed"], "fmax_mhz": r.fmax_mhz, "router": r.pnr.get("router"),
                       "critical_path": r.pnr.get("critical_path"), "cached": r.cache_hit}
                      for r in self.runs if r.pnr],
            "fmax_mhz": ({"min": min(fmax), "median": statistics.median(fmax), "max": max(fmax)}
                         if fmax else None),
            "best_seed": self.best.pnr["seed"] if self.best.pnr else None,
        }


def sweep_seeds(verilog: str, top: str, target: str, seeds: Sequence[int], *, jobs: int = 1,
                progress=None, on_result: Callable[[int, SynthResult], None] | None = None,
                **options) -> SeedSweep:
    """Place and route ``verilog`` once per seed (:func:`~einloom.rtl.fpga.flow.synthesize` with
    ``options``); the first seed's run synthesizes and chooses the part, the others reuse both (the
    synthesis from the cache) and run ``jobs`` at a time.  ``on_result(seed, result)`` is called as
    each seed finishes.  Needs a target with place and route (ECP5)."""
    if not seeds:
        raise ToolError("no seeds to sweep", location=Location(field="--seeds"), hint="pass e.g. --seeds 1-5")
    if jobs < 1:
        raise ToolError(f"--jobs {jobs} is not a positive number of parallel runs",
                        location=Location(field="--jobs"), hint="pass e.g. --jobs 2")
    first = synthesize(verilog, top, target, seed=seeds[0], progress=progress, **options)
    if on_result:
        on_result(seeds[0], first)
    if first.pnr is None:
        raise ToolError(f"no place and route ran ({'; '.join(first.notes) or 'synthesis only'}): a seed sweep "
                        "needs an ECP5 design that fits", location=Location(field="--seeds"),
                        hint="drop --seeds, or use --target ecp5 without --no-pnr")
    rest = {**options, "part": first.part}

    def route(seed: int) -> SynthResult:
        result = synthesize(verilog, top, target, seed=seed, **rest)
        result.part_selection = first.part_selection
        result.notes = list(dict.fromkeys([*first.notes, *result.notes]))
        if on_result:
            on_result(seed, result)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = [first, *pool.map(route, seeds[1:])]
    return SeedSweep(runs)
