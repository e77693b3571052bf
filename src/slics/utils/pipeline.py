"""The DVC pipeline's code dependencies, derived from imports, and its input stages.

Each stage's ``deps`` in ``dvc.yaml`` must list every ``slics`` module the stage runs, so that
editing any of them reruns it. Writing those lists by hand drifts, so they are derived here:
the stage's entry module (``python -m slics.x.y``), plus, for a notebook stage, every ``slics``
module the notebook imports, closed over the package's own imports (static ones and those inside
functions, found with :mod:`ast`; ``from slics import Name`` follows the lazy table in
``slics/__init__.py``), plus the ``__init__.py`` of each package on the way and the package
data (``*.yaml``) beside those modules.

``python -m slics.utils.pipeline deps --check`` fails when ``dvc.yaml`` has drifted;
``--write`` rewrites the ``src/`` entries of every stage in place (other deps untouched).
``python -m slics.utils.pipeline inputs`` runs the stages whose outputs live under ``data/`` by
their commands, without DVC, so that the tests can build the notebooks' inputs without
rewriting ``dvc.lock``.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .config import load_yaml, project_root

PACKAGE = "slics"
log = logging.getLogger(__name__)


def _src() -> Path:
    return project_root() / "src"


def module_path(module: str) -> Path | None:
    """The file of a ``slics`` module (``.py`` or package ``__init__.py``), or None."""
    base = _src() / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _lazy_table() -> dict[str, str]:
    """``slics/__init__.py``'s ``_PUBLIC`` table: public name -> module."""
    tree = ast.parse(module_path(PACKAGE).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_PUBLIC" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Names of the ``slics`` modules that ``tree`` (the code of ``module``) imports anywhere."""
    found: set[str] = set()
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            for alias in node.names:  # `from pkg import module` or `from slics import PublicName`
                if module_path(f"{base}.{alias.name}") is not None:
                    found.add(f"{base}.{alias.name}")
                elif base == PACKAGE and alias.name in _lazy_table():
                    found.add(_lazy_table()[alias.name])
    return found


def closure(modules: set[str]) -> set[Path]:
    """Files of ``modules`` and of everything they import from ``slics``, transitively."""
    todo, seen = set(modules), set()
    while todo:
        module = todo.pop()
        parts = module.split(".")
        todo.update(".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) not in seen)
        if module in seen:
            continue
        seen.add(module)
        path = module_path(module)
        if path is None:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        todo.update(_imported(tree, module, path.name == "__init__.py") - seen)
    files = {p for p in (module_path(m) for m in seen) if p is not None}
    return files | {data for p in files for data in p.parent.glob("*.yaml")}  # package data they read


def notebook_imports(path: Path) -> set[str]:
    """``slics`` modules imported by the code cells of a notebook."""
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    return _imported(ast.parse(code), "__notebook__", False)


def stages() -> dict:
    return load_yaml(project_root() / "dvc.yaml").get("stages", {})


def stage_code(name: str, stage: dict | None = None) -> list[str]:
    """The ``src/`` files that stage ``name`` runs, relative to the project root, sorted."""
    stage = stage or stages()[name]
    argv = shlex.split(stage["cmd"])
    entries = {argv[argv.index("-m") + 1]} if "-m" in argv else set()
    notebook = project_root() / "notebooks" / f"{name}.ipynb"
    if notebook.is_file():
        entries |= notebook_imports(notebook)
    root = project_root()
    return sorted(p.relative_to(root).as_posix() for p in closure(entries))


def declared_code(stage: dict) -> list[str]:
    return sorted(d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith("src/"))


def drift() -> dict[str, dict[str, list[str]]]:
    """Per stage: code it runs but does not declare (``missing``) and declared code it does not run."""
    report = {}
    for name, stage in stages().items():
        need, have = set(stage_code(name, stage)), set(declared_code(stage))
        if need != have:
            report[name] = {"missing": sorted(need - have), "extra": sorted(have - need)}
    return report


def write_deps() -> None:
    """Rewrite the ``src/`` deps of every stage in ``dvc.yaml`` (comments and order kept)."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = project_root() / "dvc.yaml"
    doc = yaml.load(path.read_text())
    for name, stage in doc["stages"].items():
        other = [d for d in stage.get("deps", []) if not (isinstance(d, str) and d.startswith("src/"))]
        stage["deps"] = other + stage_code(name, stage)
    with open(path, "w") as fh:
        yaml.dump(doc, fh)


def input_stages() -> list[str]:
    """Stages whose outputs all live under ``data/``: the inputs that notebooks read."""
    names = []
    for name, stage in stages().items():
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
        if outs and all(str(o).startswith("data/") for o in outs):
            names.append(name)
    return names


def run_inputs() -> None:
    """Run the input stages by their commands (no DVC, so ``dvc.lock`` is not touched)."""
    root = project_root()
    names = input_stages()
    for i, name in enumerate(names, 1):
        cmd = stages()[name]["cmd"]
        log.info("inputs %d/%d: %s (%s)", i, len(names), name, cmd)
        started = time.monotonic()
        status = subprocess.run(shlex.split(cmd), cwd=root).returncode
        if status:
            # the stage printed its own error; this says which stage, and stops without a traceback
            raise RuntimeError(f"input stage {name!r} ({i} of {len(names)}) failed with exit status {status}; "
                               f"its error is above. Fix that and rerun: {cmd}")
        log.info("inputs %d/%d: %s done in %.0f s", i, len(names), name, time.monotonic() - started)


def input_deps() -> list[str]:
    """Files the input stages read, other than each other's outputs, relative to the root.

    ``make inputs`` rebuilds ``data/`` only when one of these is newer than its stamp:
    ``params.yaml`` and ``dvc.yaml`` (the stages' parameters and commands), their code, and
    committed files such as ``results/tables/concepts.csv``. Folders are left out (a folder's
    time does not change when a file inside it does); those the input stages read are their
    own outputs under ``data/``.
    """
    from .config import load_params

    params = load_params()
    names = input_stages()
    outs = [str(next(iter(o)) if isinstance(o, dict) else o) for n in names for o in stages()[n]["outs"]]
    root = project_root()
    found = {"params.yaml", "dvc.yaml"}
    for name in names:
        for dep in stages()[name].get("deps", []):
            dep = _interpolate(str(dep), params)
            if not any(dep == o or dep.startswith(o.rstrip("/") + "/") for o in outs) and (root / dep).is_file():
                found.add(dep)
    return sorted(found)


def _interpolate(text: str, params: dict) -> str:
    """Replace DVC's ``${a.b}`` references in ``text`` with values from ``params``."""
    def value(match: re.Match[str]) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    deps = sub.add_parser("deps", help="check (the default) or rewrite the src/ deps of every stage")
    mode = deps.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml has drifted (the default)")
    mode.add_argument("--write", action="store_true", help="rewrite the src/ deps, then check")
    inputs = sub.add_parser("inputs", help="build data/ inputs without DVC")
    inputs.add_argument("--list-deps", action="store_true",
                        help="print the files the input stages read (for make) instead of building")
    args = parser.parse_args(argv)
    if args.command == "inputs":
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
        if args.list_deps:
            print(" ".join(input_deps()))
        else:
            run_inputs()
        return 0
    if args.write:
        write_deps()
    problems = drift()
    for name, diff in problems.items():
        print(f"{name}: missing {diff['missing']}, not run {diff['extra']}", file=sys.stderr)
    if problems:
        print("dvc.yaml code deps drifted: run `python -m slics.utils.pipeline deps --write`.", file=sys.stderr)
    else:
        print("dvc.yaml code deps: up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
