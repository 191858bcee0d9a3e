"""The issue-15 library variants (alibi, prefix-lm, softcap, differential) on fusemax-cloud at BERT 4K:
their masks are costed exactly, under the default mapping and under the search.

For the masked ones the schedule's valid points equal the (query, key) pairs the predicate keeps,
counted here per query in closed form; the non-empty tiles equal a count made by hand from the
predicate over the whole 4096 x 4096 grid at the schedule's tile; and the executed MACs are the dense
MACs times the share of the work in those tiles (empty tiles skipped).  prefix-lm's OR mask is run
with prefixes that keep tiles above the diagonal.  differential runs two score products and two
value products in one fused group: exactly twice the MACs of one softmax attention.
"""
from __future__ import annotations

import numpy as np
import pytest

from einloom.cost_models.arch import load_arch
from einloom.cost_models.workload import load_workload
from einloom.einsum import load_cascade
from einloom.mapper.baselines import default_mapping
from einloom.mapper.evaluate import evaluate
from einloom.mapper.search import search

N = 4096                   # BERT at 4K: P = M = N, 768 instances (B = 64 x H = 12), E = F = 64


@pytest.fixture(scope="module")
def cloud():
    return load_arch("fusemax-cloud")


@pytest.fixture(scope="module")
def bert():
    return load_workload("bert").with_seq_len(N)


def visible(name: str, params: dict) -> np.ndarray:
    """[M, P] the pairs the variant's predicate keeps (P = M = N: the query's position is p)."""
    m, p = np.arange(N)[:, None], np.arange(N)[None, :]
    if name == "prefix-lm":
        return (m < params["prefix"]) | (m <= p)
    return m <= p                                       # alibi and softcap: causal


def kept_pairs(name: str, params: dict) -> int:
    """Closed form per query: causal p + 1 keys; prefix-LM max(prefix, p + 1) keys (capped at N)."""
    p = np.arange(N)
    if name == "prefix-lm":
        return int(np.minimum(np.maximum(params["prefix"], p + 1), N).sum())
    return int((p + 1).sum())


def nonempty_share(mask: np.ndarray, chunk: tuple[int, int]) -> float:
    """Share of the dense grid in tiles of ``chunk`` (keys, queries) that hold a kept pair."""
    rows, cols = chunk
    tiles = mask.reshape(N // rows, rows, N // cols, cols).any(axis=(1, 3))
    return float(tiles.mean())


def masked_einsum(schedule):
    (e,) = [e for e in schedule.einsums.values() if e.valid_points is not None]
    return e


CASES = [("alibi", {}), ("softcap", {}), ("prefix-lm", {}), ("prefix-lm", {"prefix": 1000}),
         ("prefix-lm", {"prefix": 3000}), ("prefix-lm", {"prefix": N})]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{'-'.join(map(str, p.values()))}" for n, p in CASES])
def test_mask_costed_exactly_under_the_default_mapping(cloud, bert, name, params):
    mapping, note = default_mapping(name, cloud, bert)
    assert note.startswith("baseline fusemax")
    mapping = mapping.replace(params={**mapping.params, **params})
    ev = evaluate(name, mapping, cloud, bert)
    spec_params = {"prefix": 24, **params}
    qk = masked_einsum(ev.schedule)
    assert qk.valid_points == kept_pairs(name, spec_params)
    share = nonempty_share(visible(name, spec_params), qk.tiles.chunk)
    assert qk.executed_fraction == pytest.approx(share, rel=1e-12)
    assert ev.macs == pytest.approx(ev.dense_macs * share, rel=1e-12)
    kept = qk.valid_points / N ** 2
    assert kept <= share <= kept + qk.tiles.chunk[0] / N        # at most one partial tile per query row
    dense = ev.dense_macs
    assert dense == pytest.approx(768 * N * N * (64 + 64))


def test_prefix_keeps_tiles_above_the_diagonal(cloud, bert):
    """A longer prefix keeps more work; prefix N is bidirectional (no tile skipped)."""
    mapping, _ = default_mapping("prefix-lm", cloud, bert)
    macs = [evaluate("prefix-lm", mapping.replace(params={**mapping.params, "prefix": prefix}), cloud, bert).macs
            for prefix in (24, 1000, 3000, N)]
    assert macs == sorted(macs) and macs[0] < 0.55 * macs[-1]
    causal = evaluate("causal-1pass", default_mapping("causal-1pass", cloud, bert)[0], cloud, bert)
    assert macs[0] == pytest.approx(causal.macs)                # 24 keys: inside the diagonal tiles
    assert macs[-1] == pytest.approx(causal.dense_macs)


@pytest.mark.parametrize("name", ["alibi", "softcap", "prefix-lm"])
def test_search_keeps_the_mask(cloud, bert, name):
    result = search(name, cloud, bert)
    ev = result.best
    qk = masked_einsum(ev.schedule)
    assert qk.valid_points == kept_pairs(name, {"prefix": 24})
    assert ev.macs == pytest.approx(ev.dense_macs * qk.executed_fraction, rel=1e-12)
    assert ev.macs <= 0.55 * ev.dense_macs


def test_alibi_costs_what_causal_costs_plus_its_bias(cloud, bert):
    """The bias is a few elementwise ops per kept score: same tiles, same MACs, latency within 2%."""
    alibi = evaluate("alibi", default_mapping("alibi", cloud, bert)[0], cloud, bert)
    causal = evaluate("causal-1pass", default_mapping("causal-1pass", cloud, bert)[0], cloud, bert)
    assert alibi.macs == pytest.approx(causal.macs)
    assert causal.latency_s <= alibi.latency_s <= 1.02 * causal.latency_s
    assert alibi.energy_pj > causal.energy_pj                   # the bias's adds and multiplies are paid


def test_differential_is_two_softmax_attentions(cloud, bert):
    """Two score products and two value products in one fused group: twice the MACs of FuseMax's
    cascade, both softmaxes bound like FuseMax's (exponents and maxima on the 2D array), latency ~2x."""
    diff_map, note = default_mapping("differential", cloud, bert)
    assert note.startswith("baseline fusemax")
    diff = evaluate("differential", diff_map, cloud, bert)
    one = evaluate("fusemax-1pass", default_mapping("fusemax-1pass", cloud, bert)[0], cloud, bert)
    assert diff.macs == pytest.approx(2 * one.macs)
    assert 1.9 * one.latency_s <= diff.latency_s <= 2.1 * one.latency_s
    assert 1.9 * one.energy_pj <= diff.energy_pj <= 2.1 * one.energy_pj
    for a, b in (("QK1", "QK2"), ("SLN1", "SLN2"), ("SLNV1", "SLNV2"), ("RM1", "RM2")):
        assert diff_map.binding[a] == diff_map.binding[b]
    assert diff_map.binding["QK1"] == "2d" and diff_map.binding["RNV1"] == "1d"
    found = search("differential", cloud, bert)
    assert found.best.macs == pytest.approx(diff.macs) and found.best.latency_s <= diff.latency_s
