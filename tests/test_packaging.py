"""Packaging: every subpackage is listed in pyproject.toml, and only ``einloom.*`` is importable."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"einloom": "einloom", "einsum": "einloom.einsum", "mapper": "einloom.mapper",
          "cost_models": "einloom.cost_models", "sim": "einloom.sim", "rtl": "einloom.rtl"}


def _config() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, dotted in MAPPED.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            found.add(".".join([dotted, *rel.parts]) if rel.parts else dotted)
    return found


def test_every_package_folder_is_listed():
    listed = set(_config()["packages"])
    missing = sorted(_packages_on_disk() - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_listed_packages_exist_and_are_mapped_names():
    config = _config()
    for package in config["packages"]:
        assert package == "einloom" or package.startswith("einloom."), package
        assert package in _packages_on_disk(), f"{package} is listed but has no __init__.py"
    assert config["package-dir"] == {"einloom": "einloom", **{v: k for k, v in MAPPED.items() if k != "einloom"}}


@pytest.mark.parametrize("name", ["einsum", "mapper", "sim", "rtl", "cost_models"])
def test_no_top_level_package_outside_einloom(name, tmp_path):
    """Run from an empty folder so the repository root is not on sys.path (as for an installed user)."""
    code = (f"import importlib.util, sys; spec = importlib.util.find_spec({name!r}); "
            f"origin = getattr(spec, 'origin', None) or str(getattr(spec, 'submodule_search_locations', ''));"
            f"print('FOUND', origin) if spec is not None and {str(ROOT)!r} in origin else print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok", f"top-level '{name}' is importable: {proc.stdout}"
    proc = subprocess.run([sys.executable, "-c", f"import einloom.{name}; print(einloom.{name}.__name__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"einloom.{name}", proc.stderr[-500:]
