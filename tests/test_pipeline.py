"""The pipeline tracks its code: every stage declares every slics module it runs."""

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from slics.utils import pipeline
from slics.utils.config import project_root


def test_dvc_yaml_declares_every_module_each_stage_imports():
    assert pipeline.drift() == {}, "run `python -m slics.utils.pipeline deps --write`"


def test_closure_follows_relative_lazy_and_function_level_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "slics"
    (pkg / "core").mkdir(parents=True)
    (pkg / "utils").mkdir()
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (pkg / "__init__.py").write_text('_PUBLIC = {"Thing": "slics.core.thing"}\n')
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "utils" / "__init__.py").write_text("")
    (pkg / "core" / "thing.py").write_text("def f():\n    from ..utils.checks import check\n")
    (pkg / "utils" / "checks.py").write_text("import numpy\n")
    (pkg / "utils" / "unused.py").write_text("")
    (pkg / "utils" / "table.yaml").write_text("a: 1\n")
    monkeypatch.setenv("SLICS_ROOT", str(tmp_path))
    code = "from slics import Thing\n"
    found = pipeline.closure(pipeline._imported(__import__("ast").parse(code), "__notebook__", False))
    names = sorted(p.relative_to(pkg).as_posix() for p in found)
    assert names == ["__init__.py", "core/__init__.py", "core/thing.py", "utils/__init__.py",
                     "utils/checks.py", "utils/table.yaml"]


def test_input_stages_are_the_data_producers():
    names = pipeline.input_stages()
    assert "fetch" in names and "embed_cifar10" in names
    assert not any(n[:2].isdigit() for n in names)  # no notebook stage


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_dvc_reruns_a_stage_when_a_module_it_imports_changes(tmp_path):
    """End to end with DVC: lock the code as it is, edit a deep helper, ask `dvc status`."""
    root = project_root()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(root / name, tmp_path / name)
    for folder in ("src", "notebooks", "reference", ".dvc"):
        shutil.copytree(root / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "tmp", "cache"))
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    lock = {"schema": "2.0", "stages": {}}
    for name, stage in stages.items():  # a lock in which every code dep is up to date
        deps = [d for d in stage.get("deps", []) if d.startswith(("src/", "notebooks/"))]
        lock["stages"][name] = {"cmd": stage["cmd"], "deps": [
            {"path": d, "hash": "md5", "md5": _md5(tmp_path / d), "size": (tmp_path / d).stat().st_size}
            for d in deps]}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))

    def modified():
        out = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout
        status = json.loads(out or "{}")
        result = {}
        for name, changes in status.items():
            for change in changes:
                deps = change.get("changed deps", {}) if isinstance(change, dict) else {}
                result.setdefault(name, set()).update(
                    p for p, what in deps.items() if what == "modified" and p.startswith("src/"))
        return result

    assert not any(modified().values())
    victim = tmp_path / "src" / "slics" / "utils" / "validation.py"
    victim.write_text(victim.read_text() + textwrap.dedent("""
        # an edit
    """))
    changed = {name for name, paths in modified().items() if "src/slics/utils/validation.py" in paths}
    importers = {name for name in stages if "src/slics/utils/validation.py" in pipeline.stage_code(name)}
    assert importers and changed == importers


def test_input_deps_are_the_files_the_input_stages_read():
    deps = pipeline.input_deps()
    assert {"params.yaml", "dvc.yaml", "results/tables/concepts.csv", "src/slics/embedding/embed.py"} <= set(deps)
    assert not any(d.startswith("data/") for d in deps)  # the input stages' own outputs
    assert all((project_root() / d).is_file() for d in deps)
    assert "src/slics/sections/slics_clip.py" not in deps  # notebook code does not rebuild inputs


def test_interpolate_resolves_dvc_references():
    assert pipeline._interpolate("data/${embed.backbone}/x", {"embed": {"backbone": "demo"}}) == "data/demo/x"


def test_a_failed_input_stage_is_named_without_a_traceback(monkeypatch, capsys):
    """`make inputs` runs the input stages by their commands: one that fails (here its own error,
    exit status 3) stops the run with a line that names the stage and its command, exit status 2,
    no traceback of the subprocess call; the stages after it do not run."""
    from slics.utils.errors import run_main

    ran = []
    commands = {"first": f"{sys.executable} -c \"import sys; print('first ran'); sys.exit(3)\"",
                "second": f"{sys.executable} -c \"print('second ran')\""}
    monkeypatch.setattr(pipeline, "input_stages", lambda: list(commands))
    monkeypatch.setattr(pipeline, "stages", lambda: {k: {"cmd": v} for k, v in commands.items()})
    run = subprocess.run
    monkeypatch.setattr(pipeline.subprocess, "run", lambda args, **kw: ran.append(args) or run(args, **kw))
    status = run_main(pipeline.main, ["inputs"], prog="slics.utils.pipeline")
    err = capsys.readouterr().err
    assert status == 2 and len(ran) == 1
    assert "input stage 'first' (1 of 2) failed with exit status 3" in err and commands["first"] in err
    assert "Traceback" not in err
