"""GPU baselines: FLOP/byte counting, datasheet rooflines, benchmark shapes and the shipped H200 dataset."""
from __future__ import annotations

import itertools
import json
import math

import pytest
import yaml

from einloom.cost_models import gpu
from einloom.cost_models.gpu import (attention_bytes, attention_flops, bench_shapes, best_measured, dataset_points,
                                     gpu_spec, gpu_specs, load_dataset, make_shape, measured_gpu, roofline,
                                     scaled_to_batch, valid_pairs)
from einloom.einsum.errors import WorkloadError


def brute_pairs(q_len: int, kv_len: int, causal: bool, window: int | None, sinks: int) -> int:
    count = 0
    for q in range(q_len):
        pos = q + kv_len - q_len
        for k in range(kv_len):
            keep = k <= pos if causal else True
            if window is not None:
                keep = keep and (pos - k < window or k < sinks)
            count += keep
    return count


@pytest.mark.parametrize("q_len,kv_len", [(1, 1), (1, 37), (5, 37), (37, 37), (64, 64), (3, 100)])
@pytest.mark.parametrize("mask", [(False, None, 0), (True, None, 0), (True, 1, 0), (True, 7, 0), (True, 7, 3),
                                  (True, 40, 4), (True, 200, 2)])
def test_valid_pairs_match_enumeration(q_len, kv_len, mask):
    causal, window, sinks = mask
    assert valid_pairs(q_len, kv_len, causal=causal, window=window, sinks=sinks) == \
        brute_pairs(q_len, kv_len, causal, window, sinks)


def test_valid_pairs_rejects_inconsistent_masks():
    with pytest.raises(WorkloadError, match="window needs causal"):
        valid_pairs(8, 8, causal=False, window=4)
    with pytest.raises(WorkloadError, match="sinks need a window"):
        valid_pairs(8, 8, causal=True, sinks=2)
    with pytest.raises(WorkloadError, match="q_len <= kv_len"):
        valid_pairs(9, 8, causal=True)


def test_flops_convention_causal_half_and_gqa_bytes():
    dense = make_shape("llama3-8b", 4096, "sdpa-flash", variant="dense")
    causal = make_shape("llama3-8b", 4096, "sdpa-flash")
    assert causal["variant"] == "causal" and dense["variant"] == "dense"
    assert dense["flops"] == 4 * 1 * 32 * 128 * 4096 * 4096
    assert causal["flops"] == 4 * 32 * 128 * (4096 * 4097 // 2)
    # K and V at 8 KV heads (grouped-query attention), Q and O at 32 query heads, bf16
    assert causal["bytes"] == 2 * (2 * 32 * 4096 * 128 + 2 * 8 * 4096 * 128)
    decode = make_shape("llama3-8b-decode", 32768, "sdpa-cudnn")
    assert decode["variant"] == "dense" and decode["q_len"] == 1 and decode["batch"] == 64
    assert decode["flops"] == 4 * 64 * 32 * 128 * 32768
    window = make_shape("llama3-8b", 32768, "flex", variant="sliding_window")
    assert window["flops"] == 4 * 32 * 128 * valid_pairs(32768, 32768, causal=True, window=gpu.WINDOW)


def test_batch_is_cut_under_the_flop_budget_and_scaled_back():
    shape = make_shape("bert", 65536, "sdpa-flash")
    assert shape["workload_batch"] == 64 and shape["batch"] == 1
    assert attention_flops(dict(shape, batch=64)) == 64 * shape["flops"]
    time_s, energy = scaled_to_batch({"batch": 2, "time_s": 0.5, "energy_j": 10.0}, 64)
    assert time_s == pytest.approx(16.0) and energy == pytest.approx(320.0)


def test_roofline_compute_and_memory_bound():
    h200 = gpu_spec("h200")
    assert h200.key == "H200" and h200.hbm_gbps == 4800 and h200.peak_flops("bf16") == pytest.approx(989.4e12)
    prefill = make_shape("bert", 4096, "sdpa-flash")
    line = roofline("H200", prefill["flops"], prefill["bytes"])
    assert line.bound == "compute" and line.time_s == pytest.approx(prefill["flops"] / 989.4e12)
    decode = make_shape("llama3-8b-decode", 32768, "sdpa-flash")
    line = roofline(h200, decode["flops"], decode["bytes"])
    assert line.bound == "memory" and line.time_s == pytest.approx(decode["bytes"] / 4.8e12)
    assert line.energy_j == pytest.approx(700 * line.time_s)
    # decode is memory-bound, so the H200's faster HBM beats the H100 with the same tensor cores
    assert roofline("H100", decode["flops"], decode["bytes"]).time_s / line.time_s == pytest.approx(4800 / 3350)


def test_unknown_gpu_suggests_a_name():
    with pytest.raises(WorkloadError, match="did you mean 'H200'"):
        gpu_spec("H2000")


def test_every_datasheet_number_has_a_source():
    raw = yaml.safe_load((gpu.resources.files("einloom.cost_models") / "data" / "gpu_specs.yaml").read_text())
    assert set(raw) == {"A100", "H100", "H200", "B200"}
    for key, entry in raw.items():
        for field in ("dense_tflops", "hbm_gbps", "tdp_w", "die_mm2"):
            assert field in entry and entry["sources"][field].strip(), (key, field)
            assert "kind:" in entry["sources"][field]
    specs = gpu_specs()
    assert specs["B200"].peak_flops("bf16") > specs["H200"].peak_flops("bf16") > specs["A100"].peak_flops("bf16")


def test_default_plan_covers_the_issue():
    shapes = bench_shapes()
    assert len(shapes) >= 60 and len({s["id"] for s in shapes}) == len(shapes)
    assert {s["phase"] for s in shapes} == {"prefill", "decode"}
    assert {"dense", "causal", "sliding_window", "sinks_window", "alibi_causal"} <= {s["variant"] for s in shapes}
    assert {s["kernel"] for s in shapes} == set(gpu.KERNELS)
    assert {s["dtype"] for s in shapes} == {"bf16", "fp16"}
    assert any(s["heads_q"] != s["heads_kv"] for s in shapes)  # GQA
    assert min(s["seq_len"] for s in shapes) == 1024 and max(s["seq_len"] for s in shapes) == 256 * 1024
    for s in shapes:
        assert s["flops"] == attention_flops(s) and s["bytes"] == attention_bytes(s)
        assert s["batch"] == 1 or s["flops"] <= gpu.FLOP_BUDGET


def test_plan_filters():
    shapes = bench_shapes(models=["bert"], kernels=["sdpa-flash"], dtypes=["fp16"], max_seq_len=4096)
    assert [s["id"] for s in shapes] == ["bert-4K-dense-fp16-sdpa-flash-b64"]


# --------------------------------------------------------------------------------------------------
# The shipped dataset
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    return load_dataset()


def test_shipped_dataset_has_the_required_points(shipped):
    points = dataset_points(shipped)
    assert len(points) >= 60
    env = shipped["environment"]
    for key in ("device", "driver", "cuda", "torch", "cudnn"):
        assert env.get(key), key
    assert measured_gpu(shipped).key == "H200"
    assert shipped["produced_by"]["command"].startswith("einloom gpu-bench") and shipped["flop_convention"] == gpu.FLOP_CONVENTION
    assert {p["phase"] for p in points} == {"prefill", "decode"}
    assert {"dense", "causal"} <= {p["variant"] for p in points}
    assert len({p["variant"] for p in points} & {"sliding_window", "sinks_window", "alibi_causal"}) >= 2
    assert any(p["heads_q"] != p["heads_kv"] for p in points)
    assert {p["dtype"] for p in points} == {"bf16", "fp16"}


def test_shipped_points_are_self_consistent(shipped):
    for p in dataset_points(shipped):
        assert p["flops"] == attention_flops(p) and p["bytes"] == attention_bytes(p), p["id"]
        assert p["tflops"] == pytest.approx(p["flops"] / p["time_s"] / 1e12)
        assert p["time_min_s"] <= p["time_s"] <= p["time_max_s"]
        assert p["repeats"] >= 5 and p["rel_error"] < 2e-2
        assert p["energy_j"] > 0 and 50 < p["loop_power_w"] < 800  # board power, H200 TDP 700 W
        # no real kernel beats the datasheet roofline; none is absurdly far from it either
        assert 0.01 < p["roofline_fraction"] <= 1.0, p["id"]


def test_best_measured_picks_the_fastest_per_sequence(shipped):
    points = dataset_points(shipped)
    best = best_measured(points, heads_q=12, heads_kv=12, head_dim=64, q_len=4096, kv_len=4096, variant="dense")
    same = [p for p in points if p["model"] == "bert" and p["seq_len"] == 4096 and p["variant"] == "dense"
            and p["dtype"] == "bf16"]
    assert len(same) >= 3 and best["time_s"] == min(p["time_s"] for p in same)
    assert best_measured(points, heads_q=12, heads_kv=12, head_dim=64, q_len=3, kv_len=3, variant="dense") is None


def test_load_dataset_errors_name_file_and_point(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  \"points\": [\n")
    with pytest.raises(WorkloadError, match=r"bad.json: line 3: not valid JSON"):
        load_dataset(bad)
    bad.write_text(json.dumps({"points": []}))
    with pytest.raises(WorkloadError, match="not a gpu-bench dataset"):
        load_dataset(bad)
    point = dict(make_shape("bert", 1024, "sdpa-flash"), time_s=-1.0)
    bad.write_text(json.dumps({"environment": {}, "points": [point]}))
    with pytest.raises(WorkloadError, match=r"points\[0\] \(bert-1K-dense-bf16-sdpa-flash-b64\): time_s must be"):
        load_dataset(bad)
    del point["flops"]
    bad.write_text(json.dumps({"environment": {}, "points": [point]}))
    with pytest.raises(WorkloadError, match=r"points\[0\]: missing field\(s\) flops"):
        load_dataset(bad)


def test_measurement_mask_matches_the_flop_count():
    """The predicate the measurement uses for SDPA masks, FlexAttention block masks and the reference
    keeps exactly the pairs the FLOP count counts (checked on Python ints, no torch needed)."""
    from einloom.cost_models.gpu_measure import _mask_predicate
    for variant, (q_len, kv_len) in itertools.product(("dense", "causal", "sliding_window", "sinks_window"),
                                                      ((40, 40), (1, 40), (6, 40))):
        shape = {"q_len": q_len, "kv_len": kv_len, "causal": variant != "dense", "window": 9 if "window" in variant
                 else None, "sinks": 3 if variant == "sinks_window" else 0}
        keep = _mask_predicate(shape)
        kept = q_len * kv_len if keep is None else sum(bool(keep(q, k)) for q in range(q_len) for k in range(kv_len))
        causal, window, sinks = gpu._variant_mask(variant, shape["window"], shape["sinks"])
        assert kept == valid_pairs(q_len, kv_len, causal=causal, window=window, sinks=sinks), (variant, q_len)


def test_measurement_module_imports_without_torch():
    from einloom.cost_models import gpu_measure
    assert set(gpu_measure.KERNELS) == set(gpu.KERNELS)
    assert gpu_measure._percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert math.isclose(gpu_measure._percentile([1.0, 2.0, 3.0], 0.0), 1.0)
