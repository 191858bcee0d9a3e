"""Run the attention core in Amaranth's Python simulator (no Verilator build): small arrays in
seconds, with random input gaps and output backpressure.  Returns the output codes and the core's
``compute_cycles`` for comparison with the golden model and the cycle model."""
import random

import numpy as np
from amaranth.sim import Simulator

from einloom.rtl.attention import AttentionCore
from einloom.rtl.tb.attention_tb import pack, unpack


def run_core_sim(cfg, q, k, v, causal=False, *, window=0, sinks=0, gaps=0.0, backpressure=0.0, seed=0,
                 max_cycles=20000):
    fmt = cfg.fmt
    (_, p_dim), (_, m_dim), (f_dim, _) = q.shape, k.shape, v.shape
    dut = AttentionCore(cfg)
    rng = random.Random(seed)
    got, stalls, cycles = [], [0], [None]

    async def bench(ctx):
        ctx.set(dut.num_queries, p_dim)
        ctx.set(dut.num_keys, m_dim)
        ctx.set(dut.causal, int(causal))
        ctx.set(dut.window, window)
        ctx.set(dut.sinks, sinks)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        queues = {name: pack(fmt.to_wire(arr), fmt.input_bits) for name, arr in (("q", q), ("k", k), ("v", v))}
        pos = {name: 0 for name in queues}
        for _ in range(max_cycles):
            for name, beats in queues.items():
                port = getattr(dut, name)
                if pos[name] < len(beats):
                    go = rng.random() >= gaps
                    ctx.set(port.valid, int(go))
                    ctx.set(port.payload, beats[pos[name]])
                else:
                    ctx.set(port.valid, 0)
            ready = rng.random() >= backpressure
            ctx.set(dut.out.ready, int(ready))
            fired = {name: ctx.get(getattr(dut, name).valid) and ctx.get(getattr(dut, name).ready)
                     for name in queues}
            if ctx.get(dut.out.valid):
                if ready:
                    got.append(ctx.get(dut.out.payload))
                else:
                    stalls[0] += 1
            done = ctx.get(dut.done)
            await ctx.tick()
            for name, f in fired.items():
                pos[name] += int(bool(f))
            if done:
                cycles[0] = ctx.get(dut.compute_cycles)
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    out = np.array([fmt.from_wire_output(np.array(unpack(w, f_dim, fmt.output_bits))) for w in got]).T
    return out.reshape(f_dim, len(got)), cycles[0], stalls[0]
