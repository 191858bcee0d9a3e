"""Where points run: in this process, on local worker processes, or on a Dask distributed cluster.

Every executor takes *chunks* (lists of point specs) and a point function named ``module:function``
(default :func:`einloom.sweep.point.evaluate_point`), runs :func:`evaluate_chunk` on them, and yields
each chunk's outcomes as it completes.  An outcome is ``{key, status, result, error, seconds, worker}``
with ``status`` ``done`` or ``failed``: a point that raises is a failed outcome with its error, and the
sweep goes on.  Only ``KeyboardInterrupt`` (and ``SystemExit``) stop a sweep.

A worker that dies (killed, out of memory, a crash in native code) breaks the chunks it held.  The
executors then re-run those points one at a time, alone, so the point that kills its worker is found
and recorded as failed ("worker process died") while the others finish normally.

* :class:`InProcessExecutor` (``--jobs 1``): no pool at all, the lowest overhead.
* :class:`ProcessExecutor` (``--jobs N``): a ``concurrent.futures`` process pool.
* :class:`DaskExecutor`: ``--executor dask --scheduler tcp://HOST:8786`` (an existing cluster whose
  workers have einloom installed) or ``--executor dask-local --workers N`` (a ``LocalCluster`` of N
  single-threaded worker processes on 127.0.0.1, no dashboard).  Needs ``pip install 'einloom[dask]'``.

At most a few chunks per worker are in flight at once, so memory stays flat for 100,000-point sweeps
and Ctrl-C loses no more than the chunks in flight (their points are re-run on resume).
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import socket
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator, Mapping, Sequence

from einloom.einsum.errors import EinloomError
from einloom.sweep.errors import SweepError

DEFAULT_POINT_FUNCTION = "einloom.sweep.point:evaluate_point"
EXECUTORS = ("local", "dask", "dask-local")
WORKER_DIED = "worker process died while evaluating this point (killed, out of memory, or crashed)"

Outcome = dict[str, Any]
Chunk = list[Mapping[str, Any]]


def resolve_function(ref: str) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """``'package.module:function'`` -> the function."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _attempt(fn: Callable[[Mapping[str, Any]], Mapping[str, Any]], spec: Mapping[str, Any]
             ) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None) or (None, error message) of one point."""
    try:
        return dict(fn(spec)), None
    except EinloomError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 -- any bug in one point is that point's failure
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" (at {os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
        return None, f"{type(exc).__name__}: {exc}{where}"


def _attempt_with_timeout(fn: Callable[[Mapping[str, Any]], Mapping[str, Any]], spec: Mapping[str, Any],
                          timeout_s: float) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`_attempt` in a forked child that is killed after ``timeout_s`` seconds.

    ``os.fork`` rather than multiprocessing, because Dask and pool workers may be daemonic processes,
    which multiprocessing forbids to have children.  POSIX only.
    """
    import pickle
    import select
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: evaluate, send, leave without running any parent cleanup
        os.close(read_end)
        try:
            payload = pickle.dumps(_attempt(fn, spec))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout_s
    data = bytearray()
    timed_out = False
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                timed_out = True
                break
            block = pipe.read(1 << 16)
            if not block:
                break
            data += block
    if timed_out:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    if timed_out:
        return None, f"timed out after {timeout_s:g} s (sweep file: timeout_s)"
    if not data:
        return None, WORKER_DIED
    return pickle.loads(bytes(data))


def evaluate_chunk(function: str, chunk: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Run ``function`` on each spec of ``chunk`` (on a worker); errors become failed outcomes.

    A spec with ``timeout_s`` runs in a forked child process that is killed when the time is up (the
    point is then failed with "timed out"); without it the point runs in the worker itself.
    """
    fn = resolve_function(function)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    out = []
    for spec in chunk:
        start = time.perf_counter()
        timeout = spec.get("timeout_s")
        result, error = _attempt_with_timeout(fn, spec, timeout) if timeout else _attempt(fn, spec)
        out.append({"key": spec["key"], "status": "failed" if error is not None else "done", "result": result,
                    "error": error, "seconds": time.perf_counter() - start, "worker": worker})
    return out


def died(chunk: Chunk) -> list[Outcome]:
    return [{"key": s["key"], "status": "failed", "result": None, "error": WORKER_DIED, "seconds": None,
             "worker": None} for s in chunk]


class InProcessExecutor:
    """Runs every chunk in this process (``--jobs 1``)."""

    name = "local"
    workers = 1

    def run(self, function: str, chunks: Sequence[Chunk]) -> Iterator[list[Outcome]]:
        for chunk in chunks:
            yield evaluate_chunk(function, chunk)

    def close(self) -> None:
        pass


class _Windowed:
    """Shared scheduling: a bounded window of chunks in flight, and solo re-runs after a worker died."""

    name = "?"
    workers = 1
    window_per_worker = 3

    def _submit(self, function: str, chunk: Chunk) -> Any:
        raise NotImplementedError

    def _wait(self, inflight: dict[Any, Chunk]) -> list[Any]:
        raise NotImplementedError

    def _outcomes(self, future: Any) -> list[Outcome] | None:
        """The chunk's outcomes, or None when the worker running it died."""
        raise NotImplementedError

    def _recover(self) -> None:
        """Make the executor usable again after a worker died (a new pool for local processes)."""

    def run(self, function: str, chunks: Sequence[Chunk]) -> Iterator[list[Outcome]]:
        pending: deque[Chunk] = deque(chunks)
        solo: deque[Chunk] = deque()           # points of broken chunks, re-run one at a time, alone
        inflight: dict[Any, Chunk] = {}
        window = max(1, self.workers * self.window_per_worker)
        try:
            while pending or solo or inflight:
                if not inflight and solo and not pending:
                    chunk = solo.popleft()
                    inflight[self._submit(function, chunk)] = chunk
                while pending and len(inflight) < window:
                    chunk = pending.popleft()
                    inflight[self._submit(function, chunk)] = chunk
                broken = False
                for future in self._wait(inflight):
                    chunk = inflight.pop(future)
                    outcomes = self._outcomes(future)
                    if outcomes is not None:
                        yield outcomes
                    elif len(chunk) == 1 and not inflight and not pending:
                        yield died(chunk)              # ran alone and killed its worker: the culprit
                    else:
                        broken = True
                        solo.extend([spec] for spec in chunk)
                if broken:
                    for future, chunk in list(inflight.items()):
                        outcomes = self._outcomes(future) if self._finished(future) else None
                        if outcomes is not None:
                            yield outcomes
                        else:
                            solo.extend([spec] for spec in chunk)
                    inflight.clear()
                    self._recover()   # the healthy queue goes on; the suspects run alone after it
        finally:
            self._cancel(list(inflight))

    def _finished(self, future: Any) -> bool:
        return bool(future.done())

    def _cancel(self, futures: list[Any]) -> None:
        for future in futures:
            future.cancel()

    def close(self) -> None:
        pass


class ProcessExecutor(_Windowed):
    """A pool of ``jobs`` local worker processes (``--jobs N``)."""

    name = "local"

    def __init__(self, jobs: int):
        self.workers = jobs
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        self._context = multiprocessing.get_context(method)
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=self._context)

    def _submit(self, function: str, chunk: Chunk) -> Future:
        try:
            return self._pool.submit(evaluate_chunk, function, chunk)
        except BrokenProcessPool:
            self._recover()
            return self._pool.submit(evaluate_chunk, function, chunk)

    def _wait(self, inflight: dict[Any, Chunk]) -> list[Any]:
        done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
        return list(done)

    def _outcomes(self, future: Future) -> list[Outcome] | None:
        try:
            return future.result()
        except BrokenProcessPool:
            return None

    def _recover(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _import_distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise SweepError("the dask executors need Dask distributed, which is not installed",
                         location=None, hint="pip install 'einloom[dask]'  (or: pip install 'dask[distributed]')"
                         ) from None


class DaskExecutor(_Windowed):
    """Chunks as Dask tasks on a cluster (``scheduler`` address) or on a new ``LocalCluster``.

    Workers import einloom's evaluator once at start-up (so the first points do not pay for it), and
    results come back with their completion notices (``as_completed(with_results=True)``), in batches.
    """

    window_per_worker = 32

    def __init__(self, *, scheduler: str | None = None, workers: int | None = None, connect_timeout_s: float = 30,
                 preload: str = "einloom.sweep.point"):
        distributed = _import_distributed()
        self._distributed = distributed
        self._cluster = None
        if scheduler:
            self.name = "dask"
            try:
                self._client = distributed.Client(scheduler, timeout=connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                                 hint="start one with 'dask scheduler' and workers with 'dask worker ADDRESS', "
                                      "or use --executor dask-local --workers N") from None
        else:
            self.name = "dask-local"
            self._cluster = distributed.LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                                                     host="127.0.0.1", dashboard_address=None)
            self._client = distributed.Client(self._cluster)
        try:
            self._client.run(importlib.import_module, preload)
        except ImportError as exc:
            self.close()
            raise SweepError(f"the Dask workers cannot import einloom ({exc})",
                             hint="install einloom (same version) on every worker machine") from None
        info = self._client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self._ac = distributed.as_completed(with_results=True, raise_errors=False)
        self._results: dict[Any, Any] = {}

    def _submit(self, function: str, chunk: Chunk) -> Any:
        future = self._client.submit(evaluate_chunk, function, chunk, pure=False, retries=0)
        self._ac.add(future)
        return future

    def _wait(self, inflight: dict[Any, Chunk]) -> list[Any]:
        while True:
            done = []
            for future, result in self._ac.next_batch(block=True):
                self._results[future] = result
                if future in inflight:
                    done.append(future)
            if done:
                return done

    def _finished(self, future: Any) -> bool:
        return future in self._results or bool(future.done())

    def _outcomes(self, future: Any) -> list[Outcome] | None:
        result = self._results.pop(future, None)
        if result is None:
            try:
                result = future.result()
            except BaseException as exc:  # noqa: BLE001 -- inspected just below
                result = exc
        if isinstance(result, self._distributed.KilledWorker):
            return None
        if isinstance(result, BaseException):
            raise result
        return result

    def _cancel(self, futures: list[Any]) -> None:
        if futures:
            self._client.cancel(futures)

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()


def make_executor(kind: str = "local", *, jobs: int = 1, workers: int | None = None,
                  scheduler: str | None = None) -> Any:
    """The executor for ``--executor KIND`` (see the module docstring)."""
    if kind == "local":
        return InProcessExecutor() if jobs <= 1 else ProcessExecutor(jobs)
    if kind == "dask":
        if not scheduler:
            raise SweepError("--executor dask needs --scheduler tcp://HOST:PORT",
                             hint="or use --executor dask-local --workers N for a cluster on this machine")
        return DaskExecutor(scheduler=scheduler)
    if kind == "dask-local":
        return DaskExecutor(workers=workers or os.cpu_count() or 1)
    raise SweepError(f"unknown executor '{kind}'", hint=f"one of {', '.join(EXECUTORS)}")
