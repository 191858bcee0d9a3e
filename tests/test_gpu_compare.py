"""Accelerator vs GPU kernels in experiments (``gpu_baselines:``) and the ``einloom gpu-bench`` command."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from einloom.cli import main
from einloom.cost_models.gpu import dataset_points, gpu_spec, load_dataset
from einloom.cost_models.technology import node_factors
from einloom.errors import ExperimentError
from einloom.experiment import load_experiment, run_experiment
from einloom.gpu_compare import GpuBaselines
from einloom.report.experiment import summary_text, write_report

from test_experiment import PAPER, PNG_SIGNATURE, stand_in  # noqa: E402 (tests/ is on sys.path)

HAS_TORCH = importlib.util.find_spec("torch") is not None

EXPERIMENT = """\
name: g
models: [bert]
seq_lens: [4K, 1M]
configurations:
  - {name: FLAT, cascade: softmax-3pass, arch: flat-cloud, mapping: flat}
  - {name: FuseMax, cascade: fusemax-1pass, arch: fusemax-cloud, mapping: fusemax}
gpu_baselines:
  accelerator: FuseMax
  gpus: [H200, A100]
  extra_points:
    - {model: llama3-8b-decode, seq_len: 32K}
  headline:
    - {model: bert, seq_len: 4K}
    - {model: llama3-8b-decode, seq_len: 32K}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------------

def test_section_is_read(tmp_path):
    experiment = load_experiment(write(tmp_path, EXPERIMENT))
    assert experiment.gpu_baselines == GpuBaselines("FuseMax", ("H200", "A100"), None, "bf16",
                                                    (("llama3-8b-decode", 32768),),
                                                    (("bert", 4096), ("llama3-8b-decode", 32768)))
    assert json.dumps(experiment.to_dict())  # stored in results.json as plain data


def test_extra_point_runs_its_own_cascade(tmp_path):
    """A causal workload compared on the causal cascade: FuseMax's mapping with masked tiles skipped."""
    text = EXPERIMENT.replace("{model: llama3-8b-decode, seq_len: 32K}\n  headline",
                              "{model: llama3-8b-decode, seq_len: 32K}\n    - {model: llama3-8b, seq_len: 8K, "
                              "cascade: causal-1pass}\n    - {model: llama3-8b, seq_len: 8K}\n  headline", 1)
    experiment = load_experiment(write(tmp_path, text))
    assert experiment.gpu_baselines.extra_cascades == (("llama3-8b", 8192, "causal-1pass"),)


@pytest.mark.parametrize("old,new,line,message", [
    ("accelerator: FuseMax", "accelerator: Fusemax", 8, "no configuration named 'Fusemax'"),
    ("gpus: [H200, A100]", "gpus: [H200, V100]", 9, "unknown GPU 'V100'"),
    ("gpu_baselines:\n", "gpu_baselines:\n  dtype: fp8\n", 8, "unknown dtype 'fp8'"),
    ("gpu_baselines:\n", "gpu_baselines:\n  dataset: nothere.json\n", 8, "file not found"),
    ("gpu_baselines:\n", "gpu_baselines:\n  speed: 3\n", 8, "unknown key 'speed'"),
    ("{model: llama3-8b-decode, seq_len: 32K}\n  headline", "{model: llama3-9b, seq_len: 32K}\n  headline", 11, ""),
    ("{model: bert, seq_len: 4K}", "{model: bert, seq_len: 4Q}", 13, "expected a sequence length"),
    ("{model: llama3-8b-decode, seq_len: 32K}\n  headline", "{model: llama3-8b-decode, seq_len: 32K, "
     "cascade: gqb}\n  headline", 11, "gqb"),
    ("{model: bert, seq_len: 4K}", "{model: bert, seq_len: 4K, cascade: gqa}", 13, "unknown key 'cascade'"),
])
def test_section_errors_name_the_line(tmp_path, old, new, line, message):
    assert old in EXPERIMENT
    with pytest.raises(ExperimentError) as info:
        load_experiment(write(tmp_path, EXPERIMENT.replace(old, new, 1)))
    text = str(info.value)
    assert (f"exp.yaml:{line}:" in text or f"line {line}" in text) and message in text


# --------------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    path = write(tmp_path_factory.mktemp("gpu"), EXPERIMENT)
    results = run_experiment(load_experiment(path), stand_in, progress=False)
    return results, results.to_dict()["gpu_comparison"]


def test_comparison_takes_the_best_kernel_and_counts_honestly(compared):
    results, comp = compared
    assert comp["accelerator"] == "FuseMax" and comp["measured_gpu"] == "H200" and comp["accelerator_node_nm"] == 45
    assert [(p["model"], p["seq_len"]) for p in comp["points"]] == [("bert", 4096), ("bert", 2 ** 20),
                                                                    ("llama3-8b-decode", 32768)]
    bert = comp["points"][0]
    measured = [p for p in dataset_points(load_dataset()) if p["model"] == "bert" and p["seq_len"] == 4096
                and p["variant"] == "dense" and p["dtype"] == "bf16"]
    fastest = min(measured, key=lambda p: p["time_s"])
    g = bert["gpu_measured"]
    assert g["kernel"] == fastest["kernel"] and g["latency_s"] == pytest.approx(fastest["time_s"])  # batch 64 both
    row = next(r for r in results.rows if r["configuration"] == "FuseMax" and r["seq_len"] == 4096
               and r["scope"] == "attention")
    assert bert["accelerator"]["latency_s"] == row["latency_s"]
    assert bert["ratios"]["speedup"] == pytest.approx(g["latency_s"] / row["latency_s"])
    assert bert["ratios"]["energy_ratio"] == pytest.approx(row["energy_pj"] * 1e-12 / g["energy_j"])
    assert bert["flops"] == 4 * 64 * 12 * 64 * 4096 ** 2
    assert bert["accelerator"]["pj_per_flop"] == pytest.approx(row["energy_pj"] / bert["flops"])
    # no measurement at 1M tokens: the H200 roofline stands in
    far = comp["points"][1]
    assert far["gpu_measured"] is None and far["ratios"]["versus"] == "roofline"
    assert far["ratios"]["speedup"] == pytest.approx(far["rooflines"]["H200"]["latency_s"] / far["accelerator"]["latency_s"])
    # the decode extra point was evaluated with the accelerator configuration and found its kernel (batch 64)
    decode = comp["points"][2]
    assert decode["phase"] == "decode" and decode["gpu_measured"]["measured_batch"] == 64
    assert set(decode["rooflines"]) == {"H200", "A100"} and decode["rooflines"]["H200"]["bound"] == "memory"


def test_technology_normalization(compared):
    results, comp = compared
    p = comp["points"][0]
    n = p["normalized"]
    row = next(r for r in results.rows if r["configuration"] == "FuseMax" and r["seq_len"] == 4096
               and r["scope"] == "attention")
    h200 = gpu_spec("H200")
    energy_factor = node_factors(5)[0] / node_factors(45)[0]
    area_factor = node_factors(5)[1] / node_factors(45)[1]
    assert n["node_nm"] == 5 and n["energy_factor"] == pytest.approx(energy_factor)
    # the stand-in reports no DRAM energy: everything scales
    assert n["energy_j"] == pytest.approx(row["energy_pj"] * 1e-12 * energy_factor)
    assert n["area_mm2"] == pytest.approx(row["area_um2"] / 1e6 * area_factor)
    copies = h200.die_mm2 / n["area_mm2"]
    floor = row["dram_bytes"] / (h200.hbm_gbps * 1e9)
    expected = max(row["latency_s"] / min(copies, 64 * 12), floor)
    assert n["iso_area"]["copies"] == pytest.approx(copies) and n["iso_area"]["latency_s"] == pytest.approx(expected)
    power = n["energy_j"] / row["latency_s"]
    assert n["iso_power"]["copies"] == pytest.approx(h200.tdp_w / power)
    assert p["ratios"]["speedup_iso_area"] == pytest.approx(p["gpu_measured"]["latency_s"] / expected)
    assert p["ratios"]["energy_ratio_normalized"] == pytest.approx(n["energy_j"] / p["gpu_measured"]["energy_j"])


def test_report_has_the_gpu_section(compared, tmp_path):
    results, _ = compared
    json_path, _ = results.write(tmp_path)
    written = write_report(json_path, tmp_path)
    names = {p.name for p in written}
    assert {"gpu_latency.png", "gpu_energy.png"} <= names
    for name in ("gpu_latency.png", "gpu_energy.png"):
        assert (tmp_path / "figures" / name).read_bytes().startswith(PNG_SIGNATURE)
    page = (tmp_path / "summary.html").read_text()
    assert "GPU baselines, headline" in page and "Measured / roofline on the H200" in page
    assert "Iso-area" in page and "gpu_latency" in page
    text = summary_text(json.loads(json_path.read_text()))
    assert "llama3-8b-decode 32K" in text and "technology-normalized FuseMax" in text


def test_real_mapper_on_a_small_comparison(tmp_path):
    text = EXPERIMENT.replace("seq_lens: [4K, 1M]", "seq_lens: [4K]")
    results = run_experiment(load_experiment(write(tmp_path, text)), progress=False)
    comp = results.gpu_comparison
    assert not comp["failed"] and len(comp["points"]) == 2
    for p in comp["points"]:
        assert p["accelerator"]["latency_s"] > 0 and p["gpu_measured"]["latency_s"] > 0
        # the accelerator's DRAM energy is kept at its modeled value, the rest scales down
        n = p["normalized"]
        assert 0 < n["dram_energy_j"] < n["energy_j"] < p["accelerator"]["energy_j"]


def test_the_paper_experiment_ships_the_comparison():
    experiment = load_experiment(PAPER)
    spec = experiment.gpu_baselines
    assert spec.accelerator == "FuseMax" and spec.gpus == ("H200", "H100", "A100", "B200")
    assert set(spec.headline) == {("bert", 4096), ("bert", 65536), ("llama3-8b", 32768), ("llama3-8b-decode", 32768)}
    comp = run_experiment(experiment, stand_in, progress=False).gpu_comparison
    keyed = {(p["model"], p["seq_len"]): p for p in comp["points"]}
    for key in spec.headline:
        assert keyed[key]["gpu_measured"] is not None, key  # every headline point has an H200 measurement


# --------------------------------------------------------------------------------------------------
# einloom gpu-bench
# --------------------------------------------------------------------------------------------------

@pytest.mark.skipif(HAS_TORCH, reason="checks the message shown when PyTorch is missing")
def test_measuring_without_torch_says_how_to_install(capsys):
    assert main(["gpu-bench", "--models", "bert"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "PyTorch" in err and "einloom[gpu]" in err


def test_show_prints_the_shipped_dataset(capsys):
    assert main(["gpu-bench", "--show"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H200" in out and "measured / roofline per kernel" in out and "sdpa-cudnn" in out
    assert main(["gpu-bench", "--show", "--json", "--gpus", "H200"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["points"]) >= 60 and all(0 < p["roofline_fraction"] <= 1 for p in data["points"])
    assert "roofline_s.H200" in data["points"][0] and "roofline_s.A100" not in data["points"][0]


def test_list_prints_the_plan(capsys):
    assert main(["gpu-bench", "--list", "--models", "llama3-8b-decode", "--kernels", "sdpa-cudnn", "--json"]) == 0
    shapes = json.loads(capsys.readouterr().out)
    assert shapes and all(s["phase"] == "decode" and s["kernel"] == "sdpa-cudnn" for s in shapes)
    assert main(["gpu-bench", "--list", "--max-seq-len", "1K", "--dtypes", "fp16"]) == 2  # nothing left
    assert "no shape of the plan" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--models", "bart"], "--models: unknown value 'bart' (hint: did you mean 'bert'?"),
    (["--models", "llama3-8b-config"], "--models: unknown value"),
    (["--kernels", "flash"], "did you mean 'sdpa-flash'?"),
    (["--gpus", "H300"], "--gpus: unknown value 'H300'"),
    (["--max-seq-len", "3Q"], "--max-seq-len: expected a sequence length"),
    (["--budget-s", "-1"], "--budget-s: must be a positive number"),
    (["--show", "/no/such/file.json"], "file not found"),
])
def test_bad_flags_give_one_line_and_exit_2(capsys, argv, message):
    assert main(["gpu-bench", "--list", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch
    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs PyTorch with a CUDA GPU")
def test_measure_on_this_gpu(tmp_path, capsys):
    """On a GPU machine: two small points through the CLI, written and read back as a dataset."""
    out = tmp_path / "d.json"
    assert main(["gpu-bench", "--models", "bert", "--kernels", "sdpa-flash,flex", "--max-seq-len", "1K",
                 "--min-time-s", "0.2", "-o", str(out), "--no-progress"]) == 0
    data = load_dataset(out)
    ok = [p for p in data["points"] if not p.get("error")]
    assert ok and all(p["time_s"] > 0 and p["rel_error"] < 2e-2 for p in ok)
    assert data["environment"]["torch"] and "flop_convention" in data


def test_windowed_comparison_matches_windowed_kernels(tmp_path):
    text = EXPERIMENT.replace("seq_lens: [4K, 1M]", "seq_lens: [4K]").replace(
        "  gpus: [H200, A100]\n", "  gpus: [H200, A100]\n  variant: sliding_window\n  window: 4096\n").replace(
        "models: [bert]", "models: [llama3-8b]").replace("{model: bert, seq_len: 4K}", "{model: llama3-8b, seq_len: 4K}")
    text = text.replace("    - {model: llama3-8b-decode, seq_len: 32K}\n  headline", "    - {model: llama3-8b, seq_len: 32K}\n  headline")
    experiment = load_experiment(write(tmp_path, text))
    assert experiment.gpu_baselines.variant == "sliding_window" and experiment.gpu_baselines.window == 4096
    comp = run_experiment(experiment, stand_in, progress=False).gpu_comparison
    by_len = {p["seq_len"]: p for p in comp["points"]}
    # at 32K the window kernels were measured (FlexAttention is the fastest); at 4K none: the roofline stands in
    assert by_len[32768]["gpu_measured"]["id"] == "llama3-8b-32K-sliding_window-bf16-flex-b1"
    assert by_len[4096]["gpu_measured"] is None and by_len[4096]["variant"] == "sliding_window"
    from einloom.cost_models.gpu import valid_pairs
    assert by_len[32768]["flops"] == 4 * 32 * 128 * valid_pairs(32768, 32768, causal=True, window=4096)


@pytest.mark.parametrize("insert,message", [
    ("  variant: banded\n", "unknown mask variant 'banded'"),
    ("  variant: sliding_window\n", "variant sliding_window needs window:"),
    ("  window: 64\n", "window needs variant: sliding_window"),
    ("  variant: sliding_window\n  window: 64\n  sinks: 4\n", "sinks needs variant: sinks_window"),
    ("  variant: sliding_window\n  window: -3\n", "window must be a positive integer"),
])
def test_variant_errors(tmp_path, insert, message):
    with pytest.raises(ExperimentError, match=message):
        load_experiment(write(tmp_path, EXPERIMENT.replace("gpu_baselines:\n", "gpu_baselines:\n" + insert)))
