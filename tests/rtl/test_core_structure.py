"""The core derived from the schedule's loop nest (rtl/schedule.py derive_structure), einloom rtl --search
(rtl/select.py), the manifest's loop_nest/phases/buffers, refusals naming the Einsum or mapping field."""
import json
import re
from pathlib import Path

import pytest

from einloom.cli import main

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
A44 = str(ARCHS / "rtl-4x4-int8.yaml")
A88 = str(ARCHS / "rtl-8x8-int8.yaml")


def structure_of(spec, arch_path, sizes, mapping=None):
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.mapper.lower import lower
    from einloom.rtl.core_form import core_mapping, core_structure, match_core
    arch = load_arch(arch_path)
    cascade = load_cascade(spec)
    roles = match_core(cascade, scale=True)
    schedule = lower(cascade, mapping or core_mapping(roles, arch), arch, None, sizes=sizes)
    rtl = arch.rtl
    return schedule, core_structure(schedule, roles, cascade, arch, max_keys=rtl["max_keys"],
                                    max_queries=rtl["max_queries"])


@pytest.mark.parametrize("spec", ["fusemax-1pass", "causal-1pass", "sliding-window"])
@pytest.mark.parametrize("arch,rows", [(A44, 4), (A88, 8)])
@pytest.mark.parametrize("p,m", [(64, 64), (24, 40), (5, 200)])
def test_counters_follow_the_schedule(spec, arch, rows, p, m):
    schedule, st = structure_of(spec, arch, {"P": p, "M": m, "E": 16, "F": 16})
    roles = [c.role for c in st.counters]
    # a rank whose whole extent is on the array has no temporal loop, so no counter (bound 1)
    assert roles == ["query_block"] * (p > rows) + ["key_tile", "contraction", "value"]
    assert st.bound("query_block") == -(-p // rows) and st.bound("key_tile") == -(-m // rows)
    assert st.counter("key_tile").width == max(1, (-(-m // rows) - 1).bit_length())
    assert st.bound("contraction") == 16 and st.bound("value") == 16
    # every counter's bound is the product of the schedule's temporal loops of its rank
    loops = [lp for lp in schedule.groups[0].loops if lp.kind == "temporal"]
    for c in st.counters:
        assert c.levels == tuple((lp.level, lp.rank, lp.extent) for lp in loops if lp.rank in c.ranks)
    assert st.template_2d == tuple(n for n, e in schedule.einsums.items() if e.array == "2d")
    assert [ph.einsum for ph in st.phases] == list(schedule.groups[0].einsums)
    bufs = {b.tensor: b for b in st.buffers}
    assert bufs["K"].words == bufs["V"].words == -(-m // rows)        # whole K, V resident: reused per block
    assert bufs["Q"].resident == min(p, rows) * 16                     # one query block is what the nest reuses
    assert bufs["Q"].words == -(-p // rows)                            # the load protocol keeps a run's queries


def test_counters_change_with_e_and_f():
    _, st = structure_of("fusemax-1pass", A44, {"P": 8, "M": 8, "E": 16, "F": 16})
    from einloom.cost_models.arch import load_arch
    assert st.bound("value") == 16
    schedule, st2 = structure_of("fusemax-1pass", A44, {"P": 8, "M": 8, "E": 4, "F": 12})
    assert (st2.bound("contraction"), st2.bound("value")) == (4, 12)
    assert load_arch(A44)


def test_gqa_heads_are_runs_and_groups_fold_into_the_query_counter():
    _, st = structure_of("gqa", A44, {"J": 2, "G": 3, "P": 21, "M": 64, "E": 16, "F": 16})
    assert [c.role for c in st.counters][:2] == ["run", "query_block"]
    assert st.runs == 2 and st.queries_per_run == 63
    assert st.bound("query_block") == 16            # ceil(3 * 21 / 4): one block sequence per run
    assert st.counter("run").ranks == ("J",) and set(st.counter("query_block").ranks) == {"G", "P"}


def test_buffers_from_residency_refused_with_the_field(tmp_path):
    from einloom.base.errors import MappingError
    with pytest.raises(MappingError, match=r"keeps .* elements of K resident .* holds 64 words per bank \(rtl.max_keys\)"):
        structure_of("fusemax-1pass", A44, {"P": 8, "M": 512, "E": 16, "F": 16})


def test_loop_order_with_key_tiles_outside_query_blocks_is_refused():
    from einloom.base.errors import MappingError
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.core_form import core_mapping, match_core
    roles = match_core(load_cascade("fusemax-1pass"), scale=True)
    mp = core_mapping(roles, load_arch(A44))
    bad = mp.replace(loop_order={"GLB": ("M1", "P"), "PE": ("E", "F")})
    with pytest.raises(MappingError, match=r"M1 at GLB outside P at GLB.*keeps the running state of one query block only"):
        structure_of("fusemax-1pass", A44, {"P": 64, "M": 64, "E": 16, "F": 16}, bad)


def run_rtl(capsys, *argv):
    code = main(["rtl", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_search_picks_a_buildable_mapping_and_reports_the_others(tmp_path, capsys):
    code, out, err = run_rtl(capsys, "--arch", A44, "-o", str(tmp_path), "--search")
    assert code == 0, err
    found = re.search(r"search \(latency\): ([\d,]+) mappings scored in (\d+) families; narrowed to the core's "
                      r"binding: (\d+) families buildable \(the core's own mapping included\), (\d+) refused", out)
    assert found and int(found.group(3)) >= 1, out
    # ranked by the core's cycles (= RTL); every buildable candidate gives the same core here
    assert re.search(r"chosen: .*; 32,843 cycles \(the core = RTL\); [\d,]+ cycles \(mapper model\)", out), out
    assert re.search(r"ranked by the core's cycles: all \d+ buildable candidates give the same core \(32,843 cycles", out), out
    assert re.search(r"best unbuildable found: [\d,]+ cycles \(mapper model\).*refused: Einsum \w+", out), out
    man = json.loads((tmp_path / "manifest.json").read_text())
    s = man["search"]
    assert s["buildable_families"] == int(found.group(3))
    assert s["chosen_core_cycles"] == man["schedule_cycles"]["compute_cycles"] == 32843
    assert {c["core_cycles"] for c in s["buildable_candidates"]} == {32843}
    # the mapper's model of the core's mapping is the core's cycles, never below them (item 3)
    assert 32843 <= s["chosen_latency_cycles"] <= 32843 * 1.002
    assert s["best_unbuildable"]["latency_cycles"] > s["chosen_latency_cycles"]
    assert man["schedule"]["mapping"]["binding"] == s["chosen"]["binding"]
    # the chosen mapping's products are on the 2D array, the key tile on its rows
    assert set(s["chosen"]["binding"]["2d"]) == {"QK", "SLNV"}
    assert man["loop_nest"][1]["role"] == "key_tile" and man["loop_nest"][1]["bound"] == 256 // 4


def test_manifest_records_loop_nest_phases_buffers_and_cycles(tmp_path, capsys):
    from einloom.sim.rtl_core import run_core
    from einloom.rtl.attention import core_params
    from einloom.rtl import RtlConfig
    code, out, err = run_rtl(capsys, "gqa", "--arch", A44, "-o", str(tmp_path))
    assert code == 0, err
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert [c["role"] for c in man["loop_nest"]] == ["run", "query_block", "key_tile", "contraction", "value"]
    assert [p["einsum"] for p in man["phases"]] == man["schedule"]["groups"][0]["einsums"]
    assert {b["tensor"] for b in man["buffers"]} == {"Q", "K", "V"}
    assert set(man["units_1d"]) == {"max", "add", "exp", "mul", "div"}
    sc = man["structure_cycles"]
    cfg = RtlConfig.from_yaml(A44)
    one = run_core(core_params(cfg), sc["queries_per_run"], sc["keys"], False).cycles
    assert sc["compute_cycles"] == sc["runs"] * one == man["query_fold"]["compute_cycles"]
    assert "loop nest (one counter per temporal loop" in out


def test_mapping_file_refusals_name_the_field(tmp_path, capsys):
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.core_form import core_mapping, match_core
    roles = match_core(load_cascade("fusemax-1pass"), scale=True)
    mp = core_mapping(roles, load_arch(A44))
    cases = [
        (mp.replace(binding={**mp.binding, "SLNV": "1d"}), r"Einsum SLNV .* is bound to the 1d array"),
        (mp.replace(spatial={"2d": {"rows": ("M0",), "cols": ("E",)}, "1d": {"lanes": ("P",)}},
                    tiling={"M0": {"spatial": 4}, "E": {"spatial": 4}}),
         r"Einsum QK spreads E over 2d.cols; the RTL core runs E in time inside each PE"),
        (mp.replace(groups=(mp.groups[0].__class__(("all",), "sequential", None),)),
         r"interleaves consecutive key tiles .* group 0 is 'sequential'"),
    ]
    for i, (bad, match) in enumerate(cases):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(_yaml(bad))
        code, out, err = run_rtl(capsys, "--arch", A44, "-o", str(tmp_path / "o"), "--mapping", str(path))
        assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(match, err), err


def _yaml(mapping):
    import yaml
    return yaml.safe_dump(json.loads(json.dumps(mapping.to_dict())), sort_keys=False)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["rtl-4x4-int8", "rtl-4x4-bf16"])
def test_verify_gqa_folded_heads_bit_exact(capsys, arch):
    code = main(["verify", "gqa", "--arch", str(ARCHS / f"{arch}.yaml"), "--quick", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["passed"], data
    cases = {c["name"]: c for c in data["cases"]}
    assert cases["fold"]["heads"] == 2 and cases["fold"]["groups"] == 3
    assert cases["mqa_fold"]["heads"] == 1 and cases["mqa_fold"]["groups"] == 4
    assert cases["fold"]["cycles"] == cases["fold"]["expected_cycles"]
    assert cases["fold_negative_corrupt"]["passed"] is False        # the scoreboard can fail


def _causal_gqa(tmp_path):
    text = (Path(__file__).resolve().parents[2] / "einsum" / "library" / "gqa.yaml").read_text()
    text = text.replace("name: gqa", "name: causal-gqa").replace("  M0: 16\n", "  M0: 16\n  offset: M - P\n")
    text = text.replace("  - QK[m1, j, g, m0, p]     = scale",
                        "  - QK[m1, j, g, m0, p]     = where(m1*M0 + m0 <= p + offset, BQK[m1, j, g, m0, p])\n"
                        "  - BQK[m1, j, g, m0, p]    = scale")
    text = text.replace("= RNV[M1, j, g, f, p] / RD[M1, j, g, p]",
                        "= where(RD[M1, j, g, p] > 0, RNV[M1, j, g, f, p] / RD[M1, j, g, p], 0)")
    text = text.split("reference:")[0]
    path = tmp_path / "causal-gqa.yaml"
    path.write_text(text)
    return path


def test_causal_gqa_fold_is_refused(tmp_path, capsys):
    from einloom.einsum import load_cascade
    path = _causal_gqa(tmp_path)
    load_cascade(str(path))          # a valid cascade: the refusal is the core's
    code, out, err = run_rtl(capsys, str(path), "--arch", A44, "--ranks", "J=2,G=2,P=8,M=12", "-o", str(tmp_path / "o"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    # both cores refuse it, each with its reason: the fixed core's fold would move the diagonal, the lane
    # core's lanes would read the query coordinate of folded heads
    assert "Einsum QK" in err and "move the causal diagonal" in err, err
    assert "the lane core cannot run" in err and "fold into the query columns" in err, err


LANE = str(ARCHS / "rtl-4x4-bf16.yaml")


def _lane_plan(spec):
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lane_build import plan_lanes
    arch = load_arch(LANE)
    return plan_lanes(load_cascade(spec), arch, {"P": 12, "M": 20, "E": 8, "F": 8}), arch


@pytest.mark.parametrize("spec,tile", [("flash1-1pass", "M1"), ("relu-attention", "M")])
def test_lane_core_counters_from_its_schedule(spec, tile):
    from einloom.rtl.lane_check import lane_structure
    plan, arch = _lane_plan(spec)
    st = lane_structure(plan.schedule, plan.program.structure, plan.cascade, arch)
    assert [(c.role, c.bound) for c in st.counters] == [("query_block", 3), ("key_tile", 5), ("contraction", 8),
                                                       ("value", 8)]
    assert st.counter("key_tile").ranks == (tile,)
    assert set(st.template_2d) == {n for n, e in plan.schedule.einsums.items() if e.array == "2d"}
    assert all(p.array == "1d" for p in st.phases if p.einsum not in st.template_2d)


def test_lane_core_refuses_a_mapping_it_cannot_build():
    from einloom.base.errors import MappingError
    from einloom.mapper.lower import lower
    from einloom.rtl.lane_check import check_lane_schedule
    from einloom.rtl.lanes.compile import lane_mapping
    plan, arch = _lane_plan("flash1-1pass")
    sizes = {"P": 12, "M": 20, "E": 8, "F": 8}
    own = lane_mapping(plan.cascade, arch, sizes=sizes)
    check_lane_schedule(lower(plan.cascade, own, arch, None, sizes=sizes), own, arch)       # its own: fine
    on_1d = own.replace(binding={**own.binding, "SLNV": "1d"})
    with pytest.raises(MappingError, match=r"Einsum SLNV is a multiply-accumulate product with a sum reduction "
                                           r"bound to the 1D lanes"):
        check_lane_schedule(lower(plan.cascade, on_1d, arch, None, sizes=sizes), own, arch)
    plan2, _ = _lane_plan("fusemax-1pass")
    own2 = lane_mapping(plan2.cascade, arch, sizes=sizes)
    on_2d = own2.replace(binding={**own2.binding, "SPD": "2d"})
    with pytest.raises(MappingError, match=r"Einsum SPD is bound to the 2D array but is not a multiply-accumulate"):
        check_lane_schedule(lower(plan2.cascade, on_2d, arch, None, sizes=sizes), own2, arch)
    turned = own.replace(spatial={"2d": {"rows": ("P",), "cols": ("M0",)}, "1d": {"lanes": ("P",)}})
    with pytest.raises(MappingError, match=r"does not put the key tile M0 on the 2D rows"):
        check_lane_schedule(lower(plan.cascade, turned, arch, None, sizes=sizes), own, arch)


def test_lane_core_search_reports_buildable_and_manifest(tmp_path, capsys):
    code, out, err = run_rtl(capsys, "flash1-1pass", "--arch", LANE, "-o", str(tmp_path), "--search")
    assert code == 0, err
    assert re.search(r"narrowed to the core's binding: [1-9]\d* families buildable", out), out
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["search"]["buildable_families"] >= 1 and "lane program" in man["search"]["implemented"]
    assert [c["role"] for c in man["loop_nest"]] == ["query_block", "key_tile", "contraction", "value"]
    assert set(man["search"]["chosen"]["binding"]["2d"]) == {"QK", "SLNV"}


def test_lane_core_mapping_file_refused_with_the_einsum(tmp_path, capsys):
    from einloom.cost_models.arch import load_arch
    from einloom.einsum import load_cascade
    from einloom.rtl.lanes.compile import lane_mapping
    own = lane_mapping(load_cascade("flash1-1pass"), load_arch(LANE), sizes={"P": 64, "M": 64, "E": 8, "F": 8})
    path = tmp_path / "bad.yaml"
    path.write_text(_yaml(own.replace(binding={**own.binding, "QK": "1d"})))
    code, out, err = run_rtl(capsys, "flash1-1pass", "--arch", LANE, "-o", str(tmp_path / "o"), "--mapping", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "Einsum QK is a multiply-accumulate product with a sum reduction bound to the 1D lanes" in err, err


@pytest.mark.slow
def test_verify_search_runs_the_chosen_core(capsys):
    code = main(["verify", "causal-1pass", "--arch", A44, "--search", "--quick", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 0 and data["passed"] and data["search"]["buildable_families"] >= 1
    assert "best unbuildable" in captured.err
    assert all(c["causal"] or c.get("corrupt") for c in data["cases"])


def test_synth_builds_the_searched_core_and_refuses_search_without_arch(capsys):
    import argparse
    from einloom.commands.synth import _design
    args = argparse.Namespace(arch=A44, spec="sliding-window", mapping=None, search=True, workload=None,
                              seq_len=None, ranks="", also=[], verilog=None, top=None, demo=None)
    verilog, top, manifest = _design(args)
    assert top == "einloom_rtl_4x4_int8" and "module einloom_rtl_4x4_int8" in verilog
    assert manifest["search"]["buildable_families"] >= 1 and manifest["mask_inputs"]["window"] == 24
    assert "narrowed to the core's binding" in capsys.readouterr().err
    assert main(["synth", "--demo", "2x2", "--search", "--target", "ecp5"]) == 2
    err = capsys.readouterr().err
    assert "--search: applies only with --arch" in err and len(err.strip().splitlines()) == 1


def test_gqa_on_the_lane_core_runs_one_core_run_per_kv_head_and_folds_the_groups(tmp_path, capsys):
    """GQA's K/V heads (J) are one lane-core run each, its query groups (G) fold into the query blocks:
    the loop nest has a run counter over J and a query-block counter over G, and the expected cycles
    are the runs times one run's cycle model."""
    code, out, err = run_rtl(capsys, "gqa", "--arch", LANE, "--also", "fusemax-1pass", "--ranks", "J=2,G=3,P=4,M=8",
                             "-o", str(tmp_path))
    assert code == 0, err
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    roles = {c["role"]: c for c in manifest["loop_nest"]}
    assert roles["run"]["bound"] == 2 and roles["query_block"]["bound"] == 3, manifest["loop_nest"]
    sc = manifest["structure_cycles"]
    assert sc["runs"] == 2 and sc["queries_per_run"] == 12
    assert sc["compute_cycles"] == 2 * sc["per_run"]["compute_cycles"]


def test_search_falls_back_to_the_core_own_mapping_when_no_family_is_buildable(tmp_path, capsys):
    code, out, err = run_rtl(capsys, "gqa", "--arch", A88, "-o", str(tmp_path), "--search", "--json")
    assert code == 0, err
    man = json.loads(out)
    s = man["search"]
    assert s["chosen"]["name"] == "rtl-core" and s["chosen_latency_cycles"] is None
    assert "does not fit" in s["chosen_unscored"] and s["best_unbuildable"]["latency_cycles"] > 0
    assert [c["role"] for c in man["loop_nest"]][:2] == ["run", "query_block"]


def test_search_ranks_buildable_candidates_by_the_cores_cycles_not_the_model():
    """``_rank_by_core``: the fastest core wins even when the mapper's model prefers another candidate;
    equal cores fall back to the model; a candidate the core refuses is left out."""
    from types import SimpleNamespace

    from einloom.base.errors import MappingError
    from einloom.rtl.select import _rank_by_core
    cores = {"a": 900, "b": 700, "c": 700, "d": None}
    models = {"a": 100.0, "b": 300.0, "c": 200.0, "d": 1.0}

    def core_cycles(schedule):
        if cores[schedule] is None:
            raise MappingError("the core cannot build it")
        return cores[schedule]
    chosen, evaluation, ranked = _rank_by_core(
        [(k, k, None) for k in "abcd"], lower_fn=lambda m: m, core_cycles=core_cycles,
        score=lambda m: SimpleNamespace(latency_cycles=models[m]))
    assert chosen == "c" and evaluation.latency_cycles == 200.0
    assert [(w, c) for w, c, _ in ranked] == [("c", 700), ("b", 700), ("a", 900)]
