"""Event-driven core of the simulator: tile operations on units, dependencies, a bounded issue window.

An :class:`Op` is one tile operation: it occupies its unit (``2d``, ``1d``, ``dram``...) for
``duration`` cycles, and its result is usable ``latency`` cycles after that by another unit (a
pipeline's drain: the 2D array's systolic fill and drain, the DRAM's access latency); an op on the same
unit follows the producer's wavefront through the pipeline and does not wait for it.  Ops carry the
ops they depend on.

:class:`Engine` is a list scheduler: each unit issues its ops in program order, except that it may
pick any op of its next ``window`` tiles (epochs; an epoch with no op, a tile the mask leaves empty,
takes no slot) whose dependencies are met, the one that can start first (ties: program order).  A
*prefetch* unit (the DRAM channel: a DMA engine runs ahead of the arrays, bounded by the buffer slots
its loads wait for, not by the arrays' issue window) may issue any load it holds: the engine pulls
epochs ahead (at most ``max_ahead``) until it holds ``lookahead`` unissued loads; its write-backs
leave in program order, and of transfers that can start at once the oldest goes first.  That is how
FuseMax's interleaving of consecutive M1 tiles arises: the
2D array starts the next tile's QK while the 1D array still works on the running max of the current
one; with ``window=1`` the arrays take turns.  When the interleave rank runs inside the tile (FLAT's
rows of P), producer and consumer of one tile are *streamed* (:meth:`Op.earliest_after`): the
consumer follows the producer row by row instead of waiting for the whole tile.  Each op gets an exact start and end cycle; the gap a
unit sits idle before an op is charged to the cause of the dependency that arrived last
(``operands``, ``dependency`` (another array's result, e.g. the running max), ``dram``,
``buffer_full``), or to ``window`` when the unit has nothing it may issue.

Cost: O(ops x units x window) Python steps (a dependency found scheduled is not looked at again); no
per-PE or per-cycle loop.
"""
from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator

__all__ = ["Op", "Engine", "STALL_CAUSES"]

STALL_CAUSES = ("operands", "dependency", "buffer_full", "ports", "dram", "window")


@dataclass(eq=False)
class Op:
    """One tile operation (see the module docstring).  ``work`` counts useful PE-cycles (executed
    points x cycles per point), ``cause`` is the stall cause charged to ops that wait for it."""

    unit: str
    name: str
    epoch: int
    duration: float
    latency: float = 0.0
    deps: tuple["Op", ...] = ()
    work: float = 0.0
    cause: str = "operands"
    port_stall: float = 0.0
    nbytes: float = 0.0
    tile: tuple = ()
    streamed: tuple["Op", ...] = ()
    steps: int = 1
    wavefront: bool = False
    start: float = -1.0
    end: float = -1.0
    resource: str = ""             # the functional unit it occupies when its array's units run at once
    deps_checked: int = 0          # the engine's progress through ``deps`` (those before are scheduled)
    deps_ready: float = 0.0        # the latest arrival among them

    def __post_init__(self) -> None:
        self.ndeps = len(self.deps)
        self.slot = self.resource or self.unit     # what the engine schedules it on


    @property
    def ready(self) -> float:
        """Cycle the result can be used."""
        return self.end + self.latency

    def arrival(self, consumer: "Op") -> float:
        """Earliest start of ``consumer`` (on another unit) behind this op.  Plain: the result is ready
        ``latency`` after the end.  A *wavefront* op (a systolic array) emits its results over its
        duration, each ``latency`` after its inputs went in, so a consumer sweeping them in order may
        start once the first is out and must not finish before the last is out."""
        if not self.wavefront:
            return self.end + self.latency
        first = self.start + self.latency
        last = self.end + self.latency - consumer.duration
        return first if first > last else last

    def earliest_after(self, producer: "Op") -> float:
        """Earliest start of this op behind a *streamed* producer: both sweep the same ``steps`` rows
        (the interleave rank inside the tile) in order, so this op may start once the producer's first
        row is out and must not finish its last row before the producer's last row is out."""
        n = max(self.steps, 1)
        first = producer.start + producer.duration / n + producer.latency
        last = producer.end + producer.latency + self.duration / n - self.duration
        return first if first > last else last


@dataclass
class UnitState:
    free: float = 0.0
    queue: deque = field(default_factory=deque)        # unscheduled ops, program order
    stores: deque = field(default_factory=deque)       # a prefetch unit's write-backs, issued in order
    busy: float = 0.0
    work: float = 0.0
    stalls: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STALL_CAUSES, 0.0))
    count: int = 0


class Engine:
    """Schedule a stream of ops (see the module docstring).

    Parameters
    ----------
    units : names of the units.
    window : tiles (epochs) past the oldest unfinished one a unit may issue from.
    on_schedule : called with each op once its start/end are fixed (traces, counters).
    """

    def __init__(self, units: Iterable[str], *, window: int = 2, prefetch: Iterable[str] = (),
                 lookahead: int = 1, max_ahead: int = 1 << 14, on_schedule=None):
        self.units = {u: UnitState() for u in units}
        self.window = max(1, int(window))
        self.prefetch = frozenset(prefetch)
        self.lookahead = max(1, int(lookahead))
        self.max_ahead = max(self.window, int(max_ahead))
        self.on_schedule = on_schedule
        self.events = 0
        self.makespan = 0.0

    def run(self, epochs: Iterator[list[Op]]) -> float:
        """Schedule every op of ``epochs`` (an iterator of per-epoch op lists, program order);
        returns the cycle the last op's result is ready."""
        source = iter(epochs)
        exhausted = False
        loaded = -1                       # highest epoch index pulled from the source
        pending = 0
        queued_loads = 0                  # prefetch-unit loads pulled and not yet issued
        while True:
            # keep every unit's queue filled up to its window
            need = min((s.queue[0].epoch for s in self.units.values() if s.queue), default=loaded + 1)
            while not exhausted and (loaded < need + self.window - 1 or (
                    self.prefetch and loaded < need + self.max_ahead
                    and queued_loads < self.lookahead)):
                try:
                    ops = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if not ops:               # a tile the mask leaves empty issues nothing and takes no window slot
                    continue
                loaded += 1
                for op in ops:
                    op.epoch = loaded
                    pending += 1
                    if op.slot in self.prefetch:
                        if op.cause == "store":
                            self.units[op.slot].stores.append(op)
                            continue
                        queued_loads += 1
                    self.units[op.slot].queue.append(op)
            need = min((s.queue[0].epoch for s in self.units.values() if s.queue), default=loaded + 1)
            if pending == 0:
                if exhausted:
                    return self.makespan
                continue
            best, best_start, best_unit = None, float("inf"), None
            for name, st in self.units.items():
                if not st.queue and not st.stores:
                    continue
                prefetch = name in self.prefetch
                limit = float("inf") if prefetch else st.queue[0].epoch + self.window
                unit_best, unit_start = None, float("inf")
                older: list[tuple[Op, float]] = []        # a prefetch unit's candidates, oldest first
                candidates = st.queue
                if st.stores:                 # the oldest write-back competes with the loads
                    candidates = itertools.chain((st.stores[0],), st.queue)
                for op in candidates:
                    if op.epoch >= limit:
                        break
                    # dependencies already found scheduled are not looked at again (their times are
                    # fixed): a load that waits for every reader of a buffer slot checks each once
                    deps = op.deps
                    k = op.deps_checked
                    if k < op.ndeps:
                        if deps[k].end < 0:        # still waiting for the same dependency
                            continue
                        ready = op.deps_ready
                        n = op.ndeps
                        while k < n:
                            d = deps[k]
                            if d.end < 0:
                                break
                            r = d.end if d.slot == op.slot else d.arrival(op)
                            if r > ready:
                                ready = r
                            k += 1
                        op.deps_checked, op.deps_ready = k, ready
                        if k < n:
                            continue
                    ready = op.deps_ready
                    ok = True
                    for d in op.streamed:
                        if d.end < 0:
                            ok = False
                            break
                        r = op.earliest_after(d)
                        if r > ready:
                            ready = r
                    if not ok:
                        continue
                    start = st.free if st.free > ready else ready
                    if prefetch:
                        older.append((op, start))
                    if start < unit_start:
                        unit_best, unit_start = op, start
                    if start <= st.free and op.cause != "store":
                        break              # no later op of this unit can start earlier
                if prefetch and unit_best is not None:
                    # among transfers that can start at the same cycle, the oldest request first
                    older.sort(key=lambda c: c[0].epoch)
                    for op, start in older:
                        if start <= unit_start:
                            unit_best, unit_start = op, start
                            break
                if unit_start < best_start:
                    best, best_start, best_unit = unit_best, unit_start, name
            if best is None:
                raise RuntimeError("simulator deadlock: no op can issue (a dependency outside the window)")
            st = self.units[best_unit]
            if st.stores and best is st.stores[0]:
                st.stores.popleft()
            else:
                st.queue.remove(best)
            pending -= 1
            if best_unit in self.prefetch and best.cause != "store":
                queued_loads -= 1
            gap = best_start - st.free
            if gap > 0:
                def arrives(d: Op) -> float:
                    return d.end if d.slot == best_unit else d.arrival(best)
                late = max(best.deps + best.streamed, key=arrives, default=None)
                if late is None or arrives(late) < best_start - 1e-9 or arrives(late) <= st.free:
                    st.stalls["window"] += gap
                else:
                    cause = late.cause if late.slot != best_unit or late.cause != "operands" else "operands"
                    st.stalls[cause] += gap
            best.start = best_start
            best.end = best_start + best.duration
            st.free = best.end
            st.busy += best.duration
            st.work += best.work
            st.stalls["ports"] += best.port_stall
            st.count += 1
            self.events += 1
            if best.ready > self.makespan:
                self.makespan = best.ready
            if self.on_schedule is not None:
                self.on_schedule(best)
