"""The lane core refuses a command past its build's capacities (``error``, stays idle) instead of
reading past its memories or dropping keys; a command that fits runs."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "examples" / "archs" / "rtl-4x4-bf16.yaml"


def _core():
    from einloom.cost_models import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import core_shape, plan_lanes
    from einloom.rtl.lane_core import LaneCore
    arch = load_arch(str(ARCH))
    plan = plan_lanes(load_cascade("alibi"), arch, {"P": 8, "M": 12, "E": 8, "F": 8})
    shape = core_shape(arch, [plan])
    return LaneCore(shape, [plan.image]), shape


def _commands(core, commands):
    """Per command, in one simulation: (error, busy) the cycle after its start and five cycles later."""
    from amaranth.sim import Simulator
    seen = []

    async def bench(ctx):
        for values in commands:
            for name, value in values.items():
                ctx.set(getattr(core, name), value)
            ctx.set(core.start, 1)
            await ctx.tick()
            ctx.set(core.start, 0)
            first = (ctx.get(core.error), ctx.get(core.busy))
            for _ in range(5):
                await ctx.tick()
            seen.append([first, (ctx.get(core.error), ctx.get(core.busy))])
    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_a_command_past_the_build_is_refused_and_one_that_fits_runs():
    core, s = _core()
    ok = {"num_keys": s.max_keys, "num_queries": s.max_queries, "tiles": s.key_tiles, "blocks": s.query_blocks}
    bad = [dict(ok, tiles=s.key_tiles + 1), dict(ok, blocks=s.query_blocks + 1), dict(ok, num_keys=s.max_keys + 1),
           dict(ok, num_queries=s.max_queries + 1),
           dict(ok, tiles=1, num_keys=s.rows + 1),         # keys the tiles do not cover would be dropped
           dict(ok, blocks=1, num_queries=s.cols + 1)]
    seen = _commands(core, bad + [ok])
    assert seen[:-1] == [[(1, 0), (1, 0)]] * len(bad)
    assert seen[-1][0] == (0, 1)              # the command that fits starts; error falls
