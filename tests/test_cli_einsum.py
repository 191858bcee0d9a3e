"""``einloom check`` and ``einloom run`` through the CLI entry point."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from einloom.cli import main
from einloom.einsum.loader import LIBRARY_DIR, library_names


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:   # argparse --help
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_check_table():
    code, out, err = cli("check", "fusemax-1pass", "--ranks", "P=64,M=128,E=16,F=16")
    assert code == 0 and err == ""
    assert "fusemax-1pass: 14 Einsums, valid" in out
    assert "1-pass over M" in out
    for word in ("footprints", "op counts", "dependency DAG", "RM[m1 + 1, p] = max(RM[m1, p], LM[m1, p])"):
        assert word in out


@pytest.mark.parametrize("name,passes", [("softmax-3pass", 3), ("softmax-2pass", 2), ("fusemax-1pass", 1)])
def test_check_json(name, passes):
    code, out, _ = cli("check", name, "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("cascade", "rank_sizes", "params", "sequence_rank", "passes", "einsums", "footprints",
                "op_totals_formula", "op_totals", "dag"):
        assert key in data, key
    assert data["cascade"] == name and data["passes"]["M"] == passes
    assert {"name", "text", "line", "op_formulas", "op_counts", "levels"} <= set(data["einsums"][0])
    assert all({"from", "to", "kind"} == set(e) for e in data["dag"]["edges"])


def test_check_json_sizes_from_ranks():
    code, out, _ = cli("check", "softmax-3pass", "--json", "--ranks", "P=2,M=4,E=3,F=5")
    data = json.loads(out)
    assert data["rank_sizes"] == {"P": 2, "M": 4, "E": 3, "F": 5}
    assert data["op_totals"]["mac"] == 3 * 4 * 2 + 5 * 4 * 2


def test_check_list():
    code, out, _ = cli("check", "--list")
    assert code == 0
    for name in library_names():
        assert name in out
    code, out, _ = cli("check", "--list", "--json")
    rows = {row["name"]: row["passes"] for row in json.loads(out)}
    assert rows["softmax-3pass"] == 3 and rows["fusemax-1pass"] == 1


def test_check_dot(tmp_path: Path):
    dot = tmp_path / "dag.dot"
    assert cli("check", "softmax-3pass", "--dot", str(dot))[0] == 0
    text = dot.read_text()
    assert text.startswith("digraph") and '"QK" -> "GM"' in text


def test_run_check_passes_for_a_library_variant():
    code, out, err = cli("run", "fusemax-1pass", "--ranks", "P=8,M=20,E=4,F=4", "--check")
    assert code == 0, err
    assert "check: PASS" in out
    code, out, _ = cli("run", "causal-1pass", "--check", "--json")
    assert code == 0 and json.loads(out)["check"] == "pass"


def test_run_out_and_inputs_round_trip(tmp_path: Path):
    out1 = tmp_path / "a.npz"
    code, _, err = cli("run", "softmax-2pass", "--ranks", "P=4,M=6,E=2,F=3", "--seed", "3", "--out", str(out1))
    assert code == 0, err
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((2, 4)), rng.standard_normal((2, 6)), rng.standard_normal((3, 6))
    inputs = tmp_path / "qkv.npz"
    np.savez(inputs, Q=q, K=k, V=v)
    out2 = tmp_path / "b.npz"
    code, _, err = cli("run", "softmax-3pass", "--inputs", str(inputs), "--out", str(out2), "--check")
    assert code == 0, err
    with np.load(out2) as b:
        av = b["AV"]
    s = k.T @ q / np.sqrt(2)
    w = np.exp(s - s.max(axis=0))
    np.testing.assert_allclose(av, v @ (w / w.sum(axis=0)), rtol=1e-12)
    with np.load(out1) as a:   # --seed 3 draws the same standard-normal inputs
        np.testing.assert_allclose(a["AV"], av, rtol=1e-12)


def test_run_check_fails_when_the_reference_disagrees(tmp_path: Path):
    text = (LIBRARY_DIR / "softmax-3pass.yaml").read_text().replace("function: softmax_attention",
                                                                    "function: causal_attention")
    path = tmp_path / "wrong-reference.yaml"
    path.write_text(text)
    code, out, _ = cli("run", str(path), "--check")
    assert code == 1
    assert "check: FAIL" in out
    code, out, _ = cli("run", str(path), "--check", "--json")
    assert code == 1 and json.loads(out)["check"] == "fail"


def test_run_check_without_reference_is_a_user_error(tmp_path: Path):
    text = (LIBRARY_DIR / "softmax-3pass.yaml").read_text().split("reference:")[0]
    path = tmp_path / "no-reference.yaml"
    path.write_text(text)
    code, _, err = cli("run", str(path), "--check")
    assert code == 2 and len(err.splitlines()) == 1 and "no reference" in err and "hint" in err


def test_bad_ranks_value_is_one_line():
    code, _, err = cli("run", "softmax-3pass", "--ranks", "P=abc")
    assert code == 2 and len(err.splitlines()) == 1 and "--ranks" in err and "hint" in err
    code, _, err = cli("check", "softmax-3pass", "--ranks", "Q=4")
    assert code == 2 and "unknown rank 'Q'" in err


@pytest.mark.parametrize("command", ["check", "run"])
def test_help_has_an_example(command):
    code, out, _ = cli(command, "--help")
    assert code == 0
    assert "example:" in out and f"einloom {command} " in out.split("example:")[1]


@pytest.mark.parametrize("name", library_names())
def test_every_library_variant_checks_and_runs_against_its_reference(name):
    assert cli("check", name)[0] == 0
    code, out, err = cli("run", name, "--check", "--json")
    assert code == 0, err
    assert json.loads(out)["check"] == "pass"
