"""Simulator speed: a full BERT-base 4K attention layer (batch 1, 12 heads) on fusemax-cloud, every tile
simulated (no extrapolation).  Prints simulated cycles/s and events/s."""
import time

from einloom.cost_models import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import baseline_mapping
from einloom.mapper.lower import lower
from einloom.sim.simulator import simulate

arch = load_arch("fusemax-cloud")
wl = load_workload("bert").with_seq_len(4096).with_batch(1)
cascade = load_cascade("fusemax-1pass")
schedule = lower(cascade, baseline_mapping("fusemax", cascade, arch, wl), arch, wl)
t0 = time.perf_counter()
result = simulate(schedule)
dt = time.perf_counter() - t0
print(f"BERT-base 4K, batch 1, {schedule.instances} heads, fusemax-cloud: {result.latency_cycles:,.0f} cycles "
      f"simulated in {dt:.2f} s ({result.extrapolation})")
print(f"  {result.latency_cycles / dt:,.0f} simulated cycles/s, {result.events / dt:,.0f} events/s "
      f"({result.events:,} events)")
