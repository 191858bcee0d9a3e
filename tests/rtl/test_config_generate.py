"""Architecture YAML -> RtlConfig validation, Verilog generation, manifest, lint, CLI."""
import json
from pathlib import Path

import pytest

from einloom.cli import main
from einloom.einsum.errors import ArchError
from einloom.rtl import RtlConfig, generate
from einloom.rtl.tb.runner import lint
from rtl_archs import line_of, shaped

ARCHS = Path(__file__).resolve().parents[2] / "examples" / "archs"
BF16_ARCH = ARCHS / "rtl-4x4-bf16.yaml"
GOOD = (ARCHS / "rtl-4x4-int8.yaml").read_text()


def write(tmp_path, text):
    path = tmp_path / "arch.yaml"
    path.write_text(text)
    return path


OLD_CONFIGS = {   # RtlConfig.to_dict() of the rtl-only files before they became architectures (commit 1dc9486)
    "rtl-4x4-int8": {"name": "rtl-4x4-int8", "array_2d": {"rows": 4, "cols": 4}, "array_1d": {"width": 4},
                     "clock_mhz": 100.0, "rtl": {"number_format": {"kind": "fixed", "input_bits": 8, "frac_bits": 4,
                                                                   "acc_bits": 32},
                                                 "head_dim": 16, "value_dim": 16, "max_keys": 256,
                                                 "max_queries": 64, "scale": True, "tile_m": 4}},
    "rtl-8x8-int8": {"name": "rtl-8x8-int8", "array_2d": {"rows": 8, "cols": 8}, "array_1d": {"width": 8},
                     "clock_mhz": 100.0, "rtl": {"number_format": {"kind": "fixed", "input_bits": 8, "frac_bits": 4,
                                                                   "acc_bits": 32},
                                                 "head_dim": 16, "value_dim": 16, "max_keys": 256,
                                                 "max_queries": 64, "scale": True, "tile_m": 8}},
    "rtl-4x4-bf16": {"name": "rtl-4x4-bf16", "array_2d": {"rows": 4, "cols": 4}, "array_1d": {"width": 4},
                     "clock_mhz": 100.0, "rtl": {"number_format": {"kind": "bf16", "acc_latency": 4}, "head_dim": 8, "value_dim": 8,
                                                 "max_keys": 64, "max_queries": 64, "scale": True, "tile_m": 4}},
}


@pytest.mark.parametrize("name", sorted(OLD_CONFIGS))
def test_config_from_architecture_equals_the_old_parsed_config(name):
    from einloom.cost_models.arch import load_arch
    cfg = RtlConfig.from_arch(load_arch(ARCHS / f"{name}.yaml"))
    assert cfg.to_dict() == OLD_CONFIGS[name]
    assert RtlConfig.from_dict(cfg.to_dict()).fmt.describe() == cfg.fmt.describe()


@pytest.mark.parametrize("path", sorted(ARCHS.glob("rtl-*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_rtl_architecture_describes_its_core(path):
    """Each shipped rtl-* file states the latencies the generator builds (rtl-4x4-int16 once gave its
    output multiply 3 cycles after the unit became 5: loading it failed)."""
    cfg = RtlConfig.from_yaml(path)
    assert cfg.name == path.stem


@pytest.mark.parametrize("old,new,field,match", [
    ("    exp: {cycles: 1, latency: 4}", "    exp: {cycles: 1, latency: 5}", "array_1d.units.exp",
     "gives latency 5 for its 'exp' unit; the generated core's has latency 4"),
    ("    recip: {cycles: 1, latency: 7}", "    recip: {cycles: 1}", "array_1d.units.recip", "gives no latency"),
    ("  capacity_bytes: 9216", "  capacity_bytes: 8192", "global_buffer.capacity_bytes", "write capacity_bytes: 9216"),
    ("  banks: 12", "  banks: 4", "global_buffer.banks", "write banks: 12"),
    ("data: {format: int8, bits: 8}", "data: {format: bf16, bits: 16}", "data", "takes 8-bit inputs"),
])
def test_architecture_must_describe_the_core(tmp_path, old, new, field, match):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ArchError, match=match) as info:
        RtlConfig.from_yaml(path)
    assert info.value.location.field == field and info.value.location.line == line_of(GOOD, old.strip()), info.value


def test_a_deeper_2d_multiply_is_built_as_the_architecture_asks(tmp_path):
    """``array_2d.units.mac`` latency 5 on a fixed-point core: three fabric registers behind the DSP's
    two (the cycle model reads the depth), kept through to_dict/from_dict; the default depth is None."""
    from einloom.rtl.attention import core_params
    assert RtlConfig.from_yaml(write(tmp_path, GOOD)).mac_latency is None
    cfg = RtlConfig.from_yaml(write(tmp_path, GOOD.replace("mac: {cycles: 1, latency: 3}", "mac: {cycles: 1, latency: 5}")))
    assert cfg.mac_latency == 5 and cfg.units().product_latency == 5 and core_params(cfg).mac_latency == 5
    back = RtlConfig.from_dict(cfg.to_dict())
    assert back.mac_latency == 5 and core_params(back) == core_params(cfg)


@pytest.mark.parametrize("latency", [2, 7])
def test_a_2d_multiply_the_format_cannot_build_is_refused(tmp_path, latency):
    old = "    mac: {cycles: 1, latency: 3}   # QK"
    path = write(tmp_path, GOOD.replace(old, old.replace("latency: 3", f"latency: {latency}")))
    with pytest.raises(ArchError, match=rf"gives latency {latency} for its 'mac' unit; the generated core's fixed mac "
                       r"has a latency of 3 to 6 \(hint: write array_2d.units.mac: \{cycles: 1, latency: 3\}\)") as info:
        RtlConfig.from_yaml(path)
    assert info.value.location.field == "array_2d.units.mac" and info.value.location.line == line_of(GOOD, old.strip())


def test_example_configs_load():
    cfg = RtlConfig.from_yaml(ARCHS / "rtl-8x8-int8.yaml")
    assert (cfg.rows, cfg.cols, cfg.head_dim, cfg.value_dim, cfg.tile_m) == (8, 8, 16, 16, 8)
    assert cfg.fmt.kind == "fixed" and cfg.fmt.input_bits == 8


@pytest.mark.parametrize("old,new,field,after", [
    ("  width: 4 ", "  width: 8 ", "array_1d.width", 0),
    ("  rows: 4 ", "  rows: 0 ", "array_2d.rows", 0),
    ("head_dim: 16", "head_dim: sixteen", "rtl.head_dim", 0),
    ("acc_bits: 32", "acc_bits: 16", "rtl.number_format.acc_bits", 0),
    ("acc_bits: 32", "acc_bits: 32, bogus: 1", "rtl.number_format.bogus", 0),
    ("kind: fixed", "kind: posit", "rtl.number_format.kind", 0),
    ("scale: true", "scale: true\n  tile_m: 2", "rtl.tile_m", 1),
    ("scale: true", "scale: true\n  colour: red", "rtl.colour", 1),
])
def test_errors_name_file_line_field(tmp_path, old, new, field, after):
    line = line_of(GOOD, old) + after
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ArchError) as info:
        RtlConfig.from_yaml(path)
    loc = info.value.location
    assert loc.field == field and loc.line == line and loc.file == str(path), str(info.value)


def test_missing_rtl_section(tmp_path):
    path = write(tmp_path, GOOD.split("\nrtl:")[0])
    with pytest.raises(ArchError, match="missing required field 'rtl'"):
        RtlConfig.from_yaml(path)


@pytest.fixture(scope="module")
def design_4x4():
    return generate(RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml"))


def test_generate_api(design_4x4):
    d = design_4x4
    assert d.top_name == "einloom_rtl_4x4_int8"
    assert f"module {d.top_name}(" in d.verilog
    names = {p["name"]: p for p in d.manifest["ports"]}
    assert names["q__payload"]["width"] == 16 * 8 and names["out__payload"]["width"] == 16 * 16
    assert names["out__ready"]["direction"] == "input" and names["out__valid"]["direction"] == "output"
    ex = d.manifest["latency"]["examples"][0]
    lat = d.manifest["latency"]
    # by hand: period = max(E + F = 32, 3R + exp 4 + 3 = 19, 2R + 4 + rescale 4 + 5 = 21, F + 4 + 1, R + 1)
    # = 32; 16 blocks x 16 tiles = 256 slots + the last block's ending slot, issued every 32 cycles from
    # cycle 1 (no block waits for the previous one's beats): the last at 1 + 256 * 32 = 8,193; its first
    # beat `out` = 69 cycles later (tile_start E + R + 4 = 24 (K enters at feed 3: the buffers' read
    # latency 2 + 1; the PE's product 3 registers), recip_load + C = 28, recip_capture + 1 + recip 6 = 35,
    # rnv_snap = slnv (E + R + 6 = 26) + F + rescale 4 = 46, out_mul = 47, out = 47 + F + output 5 + the
    # payload register 1 = 69), 4 beats, + 1
    assert lat["period"] == 32 and lat["timeline"]["out"] == 69
    assert (ex["P"], ex["M"], ex["compute_cycles"]) == (64, 64, 8193 + 69 + 4 + 1)
    assert ex["util_2d"] == round(64 * 64 * 32 / (16 * 8267), 4)



def test_manifest_examples_within_buffers(tmp_path):
    # a small buffer: the example shapes are clamped to it and none is listed twice
    text = shaped(2, 2, 4, 4, max_keys=32, max_queries=16)
    examples = generate(RtlConfig.from_yaml(write(tmp_path, text))).manifest["latency"]["examples"]
    shapes = [(ex["P"], ex["M"], ex["causal"]) for ex in examples]
    assert shapes == [(16, 32, False), (16, 32, True)]

@pytest.mark.slow
def test_lint_clean(tmp_path, design_4x4):
    vpath, _ = design_4x4.write(tmp_path)
    clean, output = lint(vpath, design_4x4.top_name)
    assert clean, output


def test_lint_detects_problems(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output [1:0] y);\n  wire never_driven;\n  assign y = {a, never_driven};\nendmodule\n")
    clean, _ = lint(bad, "bad")
    assert not clean


@pytest.mark.slow
def test_larger_array_generates_and_lints(tmp_path):
    text = shaped(16, 16)
    d = generate(RtlConfig.from_yaml(write(tmp_path, text)))
    vpath, _ = d.write(tmp_path / "out")
    clean, output = lint(vpath, d.top_name)
    assert clean, output[-2000:]


@pytest.mark.slow
def test_cli_rtl(tmp_path, capsys):
    assert main(["rtl", "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (tmp_path / f"{manifest['top']}.v").exists() and (tmp_path / "manifest.json").exists()


def test_cli_rtl_error_is_one_line(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("  width: 4 ", "  width: 3 "))
    assert main(["rtl", "--arch", str(path), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "array_1d.width" in err and f":{line_of(GOOD, '  width: 4 ')}:" in err


@pytest.mark.parametrize("rows,cols,dim", [(2, 4, 2), (1, 4, 1), (12, 12, 1), (11, 11, 1)])
def test_every_shape_builds(tmp_path, rows, cols, dim):
    """The shapes the sequential core refused (its phase hand-offs lacked slack) build now: the slot
    period absorbs every hand-off (tests/rtl/test_core_sim.py simulates two of them bit-exact)."""
    from einloom.rtl.attention import core_params
    cfg = RtlConfig.from_yaml(write(tmp_path, shaped(rows, cols, dim, dim)))
    tl = core_params(cfg).timeline()
    assert tl.period >= max(2 * dim, 3 * rows + 6, max(rows, cols) + 1)


def test_pipelined_accumulate_shape_is_a_config_error(tmp_path):
    """A pipelined accumulate the core cannot order like the golden model (more rows than the SLD's
    interleaved partial sums) is refused with the field; the arch file's unit latencies follow L."""
    text = BF16_ARCH.read_text()
    for old, new in [("acc_latency: 4", "acc_latency: 2"), ("mac: {cycles: 1, latency: 6}", "mac: {cycles: 1, latency: 4}"),
                     ("add: {cycles: 1, latency: 4}", "add: {cycles: 1, latency: 2}")]:
        assert old in text, old
        text = text.replace(old, new)
    with pytest.raises(ArchError, match="rows R = 4 must be at most acc_latency") as info:
        RtlConfig.from_yaml(write(tmp_path, text))
    assert info.value.location.field == "rtl.number_format"
    wrong = BF16_ARCH.read_text().replace("mac: {cycles: 1, latency: 6}", "mac: {cycles: 1, latency: 2}")
    assert wrong != BF16_ARCH.read_text()
    with pytest.raises(ArchError, match="has latency 6") as info:
        RtlConfig.from_yaml(write(tmp_path, wrong))


def test_key_index_wide_enough_for_padding_keys():
    from einloom.rtl.vector import key_index_bits
    # max_keys 7 (index_bits 3), R = 5: the last tile's padding keys reach 7 + 5 - 2 = 10 > 7
    assert key_index_bits(3, 5) == 4 and (1 << key_index_bits(3, 5)) > 7 + 5 - 2
    for ib in range(1, 12):
        for rows in range(1, 65):
            assert (1 << key_index_bits(ib, rows)) > (1 << ib) - 1 + rows - 1


SMALL = str(ARCHS.parents[0] / "workloads" / "rtl-small.yaml")


@pytest.mark.parametrize("spec", ["fusemax-1pass", "causal-1pass"])
def test_cli_rtl_accepts_the_cascades_it_implements(tmp_path, capsys, spec):
    assert main(["rtl", spec, "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "--workload", SMALL,
                 "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["parameters"]["rtl"]["head_dim"] == 16
    # the manifest records the schedule the core implements and its cycles (the cycle model's)
    from einloom.rtl.attention import core_params
    from einloom.sim.rtl_core import run_core
    sched = manifest["schedule"]
    assert sched["cascade"] == spec and sched["mapping"]["name"] == "rtl-core"
    assert [g["pipeline"] for g in sched["groups"]] == ["interleave"]
    assert {n: e["array"] for n, e in sched["einsums"].items() if e["array"] == "2d"}.keys() >= {"SLNV"}
    sc = manifest["schedule_cycles"]
    cfg = RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml")
    assert (sc["P"], sc["M"], sc["causal"]) == (64, 64, spec == "causal-1pass")
    assert sc["compute_cycles"] == run_core(core_params(cfg), 64, 64, sc["causal"]).cycles


@pytest.mark.parametrize("argv,match", [
    (["lightning"], r"cannot build cascade lightning: its Einsum BQ .* has no counterpart"),
    (["fusemax-1pass", "--workload", SMALL, "--seq-len", "128"], r"P = 128, but the core's buffers hold 64"),
    (["fusemax-1pass", "--workload", "bert", "--seq-len", "64"], r"built for E = 16, but the workload has E = 64"),
])
def test_cli_rtl_refuses_what_the_core_cannot_build(tmp_path, capsys, argv, match):
    import re
    assert main(["rtl", *argv, "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err


def test_mapping_checks_name_the_einsum_and_reason(tmp_path):
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.einsum import load_cascade
    from einloom.einsum.errors import MappingError
    from einloom.mapper.lower import lower
    from einloom.rtl.core_form import check_schedule, core_mapping, match_core
    from dataclasses import replace
    arch, cascade = load_arch(ARCHS / "rtl-4x4-int8.yaml"), load_cascade("causal-1pass")
    roles = match_core(cascade, scale=True)
    assert roles.causal and roles.on_2d == ("BQK", "SLNV")
    workload = load_workload(SMALL)
    mapping = core_mapping(roles, arch)
    dims = check_schedule(lower(cascade, mapping, arch, workload), roles, arch)
    assert dims == {"head_dim": 16, "value_dim": 16, "tile_m": 4, "tile_p": 4, "P": 64, "M": 64}
    bad = replace(mapping, binding={**mapping.binding, "LM": "2d"})
    arch2 = load_arch("fusemax-cloud")   # has a max unit on its 2D array: the mapping lowers, the core refuses
    with pytest.raises(MappingError, match=r"Einsum LM \(the tile max\) is bound to the 2d array; the RTL core "
                                           r"computes it in the 1D lanes"):
        check_schedule(lower(cascade, bad, arch2, workload), roles, arch)
    from einloom.mapper.mapping import FusionGroup
    sequential = replace(mapping, groups=(FusionGroup(("all",), "sequential"),))
    with pytest.raises(MappingError, match=r"interleaves consecutive key tiles \(M1\) across its 2D and 1D arrays; "
                                           r"this mapping's group 0 is 'sequential'"):
        check_schedule(lower(cascade, sequential, arch, workload), roles, arch)
    small_tile = replace(mapping, params={"M0": 2}, tiling={**mapping.tiling, "M0": {"spatial": 2}})
    with pytest.raises(MappingError, match="puts the key tile M0 \\(4 keys\\) on the 2D rows"):
        check_schedule(lower(cascade, small_tile, arch, workload), roles, arch)


@pytest.mark.parametrize("arch", ["rtl-4x4-int8", "rtl-8x8-int8"])
@pytest.mark.parametrize("command", ["map", "sim"])
def test_rtl_archs_map_and_simulate(capsys, arch, command):
    assert main([command, "fusemax-1pass", "--arch", str(ARCHS / f"{arch}.yaml"), "--workload", SMALL,
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    mapping = out["mapping"] if command == "map" else None
    if mapping is not None:
        assert mapping["name"] == "rtl-core" and mapping["binding"]["2d"] == ["QK", "SLNV"]
    else:
        assert out["simulation"]["latency_cycles"] > 0 and out["simulation"]["dram_bytes"] == 4 * 64 * 16


def test_default_mapping_is_the_core_only_on_a_core(capsys):
    # fpga-small's rtl: section is a placeholder the core cannot derive from: its default stays FuseMax
    assert main(["map", "fusemax-1pass", "--arch", "fpga-small", "--workload", SMALL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mapping"]["name"] == "fusemax"
    assert main(["map", "fusemax-1pass", "--arch", "fpga-small", "--workload", SMALL, "--mapping", "rtl-core"]) == 2
    assert "missing required field 'max_keys'" in capsys.readouterr().err


def _library_text(name):
    from einloom.einsum.loader import resolve_spec_path
    return resolve_spec_path(name).read_text()


def test_core_form_is_structural_not_by_name():
    """A renamed copy of causal-1pass (tensors, rank variables, params, operand order) is the same core;
    a top-left causal mask or a missing scale is not."""
    import re
    from einloom.base.errors import SpecError
    from einloom.einsum.loader import parse_cascade_text
    from einloom.rtl.core_form import match_core
    text = _library_text("causal-1pass")
    renamed = text
    for old, new in (("SLNV", "PV"), ("SLN", "EXPS"), ("BQK", "DOT"), ("QK", "S"), ("RM", "RUNMAX"), ("LM", "TMAX"),
                     ("offset", "shift"), ("m0", "j"), ("M0", "J")):
        renamed = re.sub(rf"\b{old}\b", new, renamed)
    renamed = renamed.replace("scale * Q[e, p] * BK[e, m1, j]", "BK[e, m1, j] * Q[e, p] * scale")
    roles = match_core(parse_cascade_text(renamed, "renamed.yaml"), scale=True)
    assert roles.causal and roles.tile_param == "J" and roles.on_2d == ("DOT", "PV")
    assert roles.einsums["RM"] == "RUNMAX" and roles.ranks["M0"] == "J"
    from einloom.cost_models.arch import load_arch
    from einloom.cost_models.workload import load_workload
    from einloom.mapper.lower import lower
    from einloom.rtl.core_form import check_schedule, core_mapping
    arch = load_arch(ARCHS / "rtl-8x8-int8.yaml")
    cascade = parse_cascade_text(renamed, "renamed.yaml")
    schedule = lower(cascade, core_mapping(roles, arch), arch, load_workload(SMALL))
    assert check_schedule(schedule, roles, arch)["tile_m"] == 8
    top_left = text.replace("<= p + offset", "<= p")
    with pytest.raises(SpecError, match=r"the mask of QK .* is not a bottom-right causal band"):
        match_core(parse_cascade_text(top_left, "top-left.yaml"), scale=True)
    with pytest.raises(SpecError, match=r"without a scale: rtl.scale is false"):
        match_core(parse_cascade_text(text, "c.yaml"), scale=False)
    wrong_offset = text.replace("offset: M - P", "offset: P - M")
    with pytest.raises(SpecError, match=r"param offset must be M - P"):
        match_core(parse_cascade_text(wrong_offset, "o.yaml"), scale=True)


@pytest.mark.parametrize("spec,window,sinks", [("sliding-window", 24, 0), ("sinks-window", 16, 4)])
def test_band_masks_come_from_the_where_predicate(tmp_path, capsys, spec, window, sinks):
    """sliding-window and sinks-window are the core with its window/sinks inputs set from the cascade's
    where predicate (evaluated, not looked up by name): a renamed window param and another window
    value give the same core with the new value; the manifest records the inputs and the cycles."""
    from einloom.einsum.loader import parse_cascade_text
    from einloom.rtl.core_form import match_core
    from einloom.sim.rtl_core import run_core
    from einloom.rtl.attention import core_params
    roles = match_core(parse_cascade_text(_library_text(spec), f"{spec}.yaml"), scale=True)
    assert (roles.causal, roles.window, roles.sinks) == (True, window, sinks)
    renamed = (_library_text(spec).replace(f"  window: {window}", "  band: 9").replace("< window)", "< band)")
               .replace("window: window", "window: band"))
    roles = match_core(parse_cascade_text(renamed, "renamed.yaml"), scale=True)
    assert (roles.window, roles.sinks) == (9, sinks)
    assert main(["rtl", spec, "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "--workload", SMALL, "-o", str(tmp_path),
                 "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["mask_inputs"] == {"causal": 1, "window": window, "sinks": sinks}
    cfg = RtlConfig.from_yaml(ARCHS / "rtl-4x4-int8.yaml")
    run = run_core(core_params(cfg), 64, 64, True, window=window, sinks=sinks)
    assert manifest["schedule_cycles"]["compute_cycles"] == run.cycles and run.tiles_skipped > 0


def test_a_mask_the_lanes_cannot_compute_is_refused():
    """A band the 1D lanes do not compute (a non-causal window: keys on both sides of the query) is refused
    naming the Einsum and the reason."""
    from einloom.einsum.loader import parse_cascade_text
    from einloom.einsum.errors import SpecError
    from einloom.rtl.core_form import match_core
    text = _library_text("sliding-window").replace("(m1*M0 + m0 <= p + offset) and ", "")
    with pytest.raises(SpecError, match=r"QK: .*the mask of QK .* is not a bottom-right causal band"):
        match_core(parse_cascade_text(text, "two-sided.yaml"), scale=True)


def test_gqa_folds_heads_into_runs_and_groups_into_query_columns(tmp_path, capsys):
    """gqa's extra output ranks are found structurally (removing them leaves the core's form): J indexes K
    and V (one run per K/V head), G only Q and AV (the group's queries as more columns)."""
    assert main(["rtl", "gqa", "--arch", str(ARCHS / "rtl-4x4-int8.yaml"), "-o", str(tmp_path), "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    fold = manifest["query_fold"]
    assert fold["heads"] == {"J": 2} and fold["query_groups"] == {"G": 3} and fold["runs"] == 2
    assert fold["queries_per_run"] == 3 * (64 // 3) == manifest["schedule_cycles"]["P"]
    assert fold["compute_cycles"] == 2 * manifest["schedule_cycles"]["compute_cycles"]
