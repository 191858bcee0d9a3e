"""Running hostile inputs safely in the test process: a time and memory cap around each case.

``capped()`` arms SIGALRM (a case that hangs fails with TimeoutError after ``seconds``) and lowers the
process's address-space soft limit to its current size plus ``memory`` bytes (a case that tries a
huge allocation gets MemoryError at once instead of swapping the CI machine); both are restored
afterwards.  ``run_cli()`` runs ``einloom ARGV`` in-process under the cap and returns (status, stdout,
stderr).  ``run_cli_subprocess()`` runs it in a child with the same limits set by setrlimit, for the
cases that should be seen end to end (the exit status of the real executable).
"""
from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

#: Seconds one hostile case may take (the slowest legitimate case takes about 2 s).
CASE_SECONDS = 30
#: Bytes of address space one case may add (a hostile case that allocates more fails fast).
CASE_MEMORY = 3 * 1024 ** 3


def _vm_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def capped(seconds: int = CASE_SECONDS, memory: int | None = CASE_MEMORY):
    def on_alarm(signum, frame):
        raise TimeoutError(f"a hostile case ran over {seconds} s (a hang)")

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if memory is not None:
        limit = _vm_bytes() + memory
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_cli(argv: list[str], *, seconds: int = CASE_SECONDS, memory: int | None = CASE_MEMORY
            ) -> tuple[int, str, str]:
    from einloom.cli import main
    out, err = io.StringIO(), io.StringIO()
    with capped(seconds, memory), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors and --help/--version
            status = exc.code if isinstance(exc.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def run_cli_subprocess(argv: list[str], *, seconds: int = CASE_SECONDS, memory: int = CASE_MEMORY,
                       cwd: Path | None = None) -> subprocess.CompletedProcess:
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory + 512 * 1024 ** 2, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))

    return subprocess.run([sys.executable, "-m", "einloom.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=seconds + 10, preexec_fn=limits, cwd=cwd)


def assert_one_line_error(status: int, err: str, *, expected_status: int = 2) -> str:
    """Exit status, exactly one stderr line, no traceback; returns the line."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == expected_status, (status, err)
    assert len(lines) == 1, err
    return lines[0]
