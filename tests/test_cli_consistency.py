"""A consistent CLI (issue 10 item 8) and HuggingFace workloads from the command line (item 7)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from einloom.cost_models.workload import load_workload
from hostile import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / "examples" / "workloads" / "llama3-8b-config.json"
DEEPSEEK = ROOT / "examples" / "workloads" / "deepseek-v2-lite-config.json"
MAP = ["map", "fusemax-1pass", "--arch", "fusemax-cloud"]


def test_hf_config_from_the_cli_with_seq_len_batch_phase():
    status, out, err = run_cli(MAP + ["--workload", str(LLAMA), "--seq-len", "16k", "--batch", "2", "--phase",
                                      "decode", "--json"])
    assert status == 0, err
    assert json.loads(out)["evaluation"]


def test_hf_config_overrides():
    w = load_workload(LLAMA, seq_len=16 * 1024, batch=2, phase="decode")
    assert (w.seq_len_q, w.seq_len_kv, w.batch, w.heads, w.kv_heads, w.head_dim_e) == (1, 16384, 2, 32, 8, 128)
    assert load_workload(LLAMA).seq_len_kv == 8192  # max_position_embeddings when no --seq-len
    prefill = load_workload("llama3-8b-decode", phase="prefill")
    assert prefill.seq_len_q == prefill.seq_len_kv == 8192


def test_deepseek_mla_config_gives_ranks_c_and_r():
    w = load_workload(DEEPSEEK, seq_len=4096)
    sizes = w.rank_sizes()
    assert (sizes["C"], sizes["R"], sizes["E"], sizes["F"], sizes["H"]) == (512, 64, 128, 128, 16)
    assert w.model_dim == 2048 and w.ffn_dim == 10944
    assert "C" not in load_workload("bert").rank_sizes()


def test_mla_fields_in_workload_yaml(tmp_path):
    path = tmp_path / "mla.yaml"
    path.write_text((ROOT / "examples/workloads/bert-4k.yaml").read_text()
                    + "kv_lora_rank: 256\nqk_rope_head_dim: 32\n")
    sizes = load_workload(path).rank_sizes()
    assert (sizes["C"], sizes["R"]) == (256, 32)


def test_mla_workload_sizes_run_the_mla_spec():
    from einloom.einsum import load_cascade
    from einloom.einsum.ranks import resolve
    cascade = load_cascade("mla-absorbed")
    sizes = {k: v for k, v in load_workload(DEEPSEEK, seq_len=64, phase="decode").rank_sizes().items()
             if k in cascade.ranks}
    resolved, _ = resolve(cascade, sizes)
    assert resolved["C"] == 512 and resolved["R"] == 64 and resolved["P"] == 1


@pytest.mark.parametrize("flag", [["--objective", "energy"], ["--budget", "2"]])
def test_search_options_without_search_are_errors(flag):
    status, out, err = run_cli(MAP + ["--workload", "bert"] + flag)
    line = assert_one_line_error(status, err)
    assert f"{flag[0]}: applies only to --search" in line


def test_seq_len_suffixes_like_experiment_files():
    k, upper = (run_cli(MAP + ["--workload", "bert", "--seq-len", s, "--json"]) for s in ("16k", "16K"))
    assert k[0] == upper[0] == 0
    assert json.loads(k[1]) == json.loads(upper[1])
    plain = run_cli(MAP + ["--workload", "bert", "--seq-len", "16384", "--json"])
    assert json.loads(plain[1]) == json.loads(k[1])


def test_evaluate_exits_nonzero_and_names_failed_points(tmp_path, monkeypatch):
    import einloom.experiment as experiment
    from einloom.base.errors import ExperimentError
    original = experiment.mapper_evaluate_point

    def flaky(point):
        if point.configuration.name == "FuseMax" and point.seq_len == 4096:
            raise ExperimentError("mapping does not fit")
        return original(point)

    monkeypatch.setattr(experiment, "mapper_evaluate_point", flaky)
    status, out, err = run_cli(["evaluate", str(ROOT / "examples/experiments/smoke.yaml"), "-o", str(tmp_path),
                                "--no-progress"])
    assert status == 1
    assert "failed: bert 4096 FuseMax" in err and "mapping does not fit" in err
    assert re.search(r"error: \d+ of \d+ points failed", err)
    assert (tmp_path / "results.json").exists()


def test_verify_help_example_fits_the_arch_it_names():
    from einloom.commands.verify import EXAMPLE, parse_shape
    from einloom.rtl.config import RtlConfig
    for line in EXAMPLE.splitlines():
        if "--shape" not in line or "--arch" not in line:
            continue
        arch = RtlConfig.from_yaml(ROOT / re.search(r"--arch (\S+)", line).group(1))
        for i, shape in enumerate(re.findall(r"--shape (\S+)", line)):
            case = parse_shape(shape, i)
            assert case["P"] <= arch.max_queries and case["M"] <= arch.max_keys, shape


def test_run_help_documents_references():
    status, out, err = run_cli(["run", "--help"])
    assert status == 0
    assert "reference: {function: softmax_attention" in out and "softmax_attention" in out.split("References:")[1]


def test_run_out_folder_writes_inside(tmp_path):
    status, out, err = run_cli(["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out", str(tmp_path)])
    assert status == 0 and (tmp_path / "outputs.npz").exists()
    status, out, err = run_cli(["run", "fusemax-1pass", "--ranks", "P=8,M=8,E=4,F=4", "--out",
                                str(tmp_path / "new" / "deep" / "av.npz")])
    assert status == 0 and (tmp_path / "new" / "deep" / "av.npz").exists()


def test_check_fails_on_unexplained_non_finite_outputs(tmp_path):
    spec = tmp_path / "log.yaml"
    spec.write_text("name: logs\nranks: {P: 4, M: 4, E: 2, F: 2}\n"
                    "tensors: {Q: [E, P], K: [E, M], V: [F, M], AV: [F, P]}\ninputs: [Q, K, V]\noutputs: [AV]\n"
                    "einsums:\n  - QK[m, p] = Q[e, p] * K[e, m]\n  - AV[f, p] = log(0 * QK[m, p] - 1) * V[f, m]\n"
                    "reference: {function: softmax_attention}\n")
    status, out, err = run_cli(["run", str(spec), "--check"])
    assert status == 1, (out, err)
    assert "check: FAIL" in out and "AV: 8 NaN/infinite value(s) the masks do not explain" in out
    status, out, err = run_cli(["run", str(spec)])
    assert status == 0 and "warning: AV has 8 NaN/infinite value(s)" in out


def test_relative_error_is_never_zero_over_non_finite_values():
    import numpy as np
    from einloom.commands.run import relative_error
    nan = np.full(3, np.nan)
    assert relative_error(nan, nan) == float("inf")
    assert relative_error(np.array([np.inf, 1.0]), np.array([-np.inf, 1.0])) == float("inf")
    assert relative_error(np.array([1.0, np.nan]), np.array([1.0, np.nan])) == 0.0
