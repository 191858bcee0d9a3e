"""Point functions with injected faults, for testing and measuring the sweep machinery.

Run a sweep with ``run_sweep(..., point_function="einloom.sweep.faults:faulty_point")`` and put a
``fault`` field in chosen point specs (it is not part of a point's key):

* ``"interrupt"``: raise ``KeyboardInterrupt`` (what Ctrl-C does to a running sweep);
* ``"die"``: end the worker process at once (``os._exit``), as a killed or crashed worker would;
* ``"raise"``: raise a ``RuntimeError`` (a bug in one point);
* ``"sleep"``: sleep ``sleep_s`` seconds (for timeouts).

Without a fault the point is evaluated normally.  :func:`noop_point` returns a constant result at
once: the benchmark uses it to measure the executors' own cost per point.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping

from einloom.sweep.point import evaluate_point


def faulty_point(spec: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`einloom.sweep.point.evaluate_point`, unless ``spec['fault']`` asks for a fault."""
    fault = spec.get("fault")
    if fault == "interrupt":
        raise KeyboardInterrupt
    if fault == "die":
        os._exit(17)
    if fault == "raise":
        raise RuntimeError("injected failure")
    if fault == "sleep":
        time.sleep(float(spec.get("sleep_s", 10)))
    return evaluate_point(spec)


def noop_point(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A constant result, without evaluating anything (executor overhead only)."""
    return {"latency_s": 1.0, "energy_pj": 1.0, "index": int(spec["index"])}
