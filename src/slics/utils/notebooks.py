"""Run a report notebook with papermill, as a DVC stage, and store a byte-stable copy.

``python -m slics.utils.notebooks 01_robustness`` executes
``notebooks/01_robustness.ipynb`` with ``params = {"seed": ..., "robustness": ...}``:
the ``params.yaml`` keys that the stage of the same name declares in ``dvc.yaml``
(declared there once, read here), from
the ``notebooks/`` folder, and writes the executed notebook to
``results/notebooks/01_robustness.ipynb``. Papermill's timestamps, durations
and other volatile metadata are removed, so reruns give identical bytes and
nbval can compare outputs strictly.
"""

from __future__ import annotations

from .errors import EXIT_ERROR

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

# nbformat validates notebooks with jsonschema, whose format checkers import rfc3987_syntax where it is
# installed (JupyterLab's jupyter-events asks for it): that import compiles some forty Earley grammars,
# 2.7 s of one core at the start of every stage, a failing one included. No notebook schema uses the
# "iri" formats it checks, so a stage's process goes without it (an import of it raises ImportError,
# which jsonschema expects of an optional checker).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from traitlets.config import Config  # noqa: E402

from .config import load_params, load_yaml, project_root, results_dir  # noqa: E402
from .io import check_writable, remove_stale, write_text  # noqa: E402
from .progress import ENGINE, CellClock  # noqa: E402
from .schema import ParamsError  # noqa: E402

log = logging.getLogger(__name__)

# A JSON-lines file that every notebook stage appends its cell durations to (profiling, off when unset;
# benchmarks/profile_pipeline.py): the executed notebooks themselves keep no timings.
TIMINGS_ENV = "SLICS_TIMINGS"
VOLATILE_CELL_KEYS = ("execution", "papermill")
KEPT_PAPERMILL_KEYS = ("parameters",)


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop timestamps, durations and environment details that change from run to run."""
    papermill = nb.metadata.get("papermill", {})
    nb.metadata["papermill"] = {k: papermill[k] for k in KEPT_PAPERMILL_KEYS if k in papermill}
    nb.metadata.pop("widgets", None)
    # the kernel's Python patch version (3.11.2 on Debian, 3.11.7 here) is the machine's, not the result's
    nb.metadata.get("language_info", {}).pop("version", None)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"  # papermill draws random ids
        for key in VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
    return nb


def record_timings(name: str, nb: nbformat.NotebookNode, seconds: float) -> None:
    """Append stage ``name``'s wall time and papermill's per-cell durations to ``$SLICS_TIMINGS``."""
    path = os.environ.get(TIMINGS_ENV)
    if not path:
        return
    cells = [{"cell": index, "line": next((line for line in cell.source.splitlines() if line.strip()), ""),
              "seconds": cell.metadata.get("papermill", {}).get("duration")}
             for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"stage": name, "seconds": round(seconds, 3), "cells": cells}) + "\n")


def stage_param_keys(stage: str) -> list[str]:
    """The top-level ``params.yaml`` keys that ``stage`` declares in ``dvc.yaml``."""
    stages = load_yaml(project_root() / "dvc.yaml").get("stages", {})
    if stage not in stages:
        raise KeyError(f"dvc.yaml has no stage {stage!r}; a notebook runs as the stage of its own name.")
    keys = []
    for entry in stages[stage].get("params", []):
        if isinstance(entry, str):
            keys.append(entry)
        else:  # {params file: [keys]}
            keys.extend(k for file_keys in entry.values() for k in file_keys)
    return list(dict.fromkeys(key.split(".")[0] for key in keys))  # dvc.yaml order, once each


def select_params(keys: list[str], params: dict | None = None) -> dict:
    """The sub-dictionary of ``params.yaml`` a notebook receives."""
    params = load_params() if params is None else params
    missing = [k for k in keys if k not in params]
    if missing:
        raise KeyError(f"params.yaml has no key(s) {missing}; the stage in dvc.yaml asks for them.")
    return {k: params[k] for k in keys}


# tqdm options for papermill's bar: one line on stderr, refreshed at most every 2 s.
PROGRESS_BAR = {"mininterval": 2.0, "dynamic_ncols": True}
# The kernel's transport: IPC sockets (files in Jupyter's runtime folder) instead of TCP.
KERNEL_CONFIG = Config({"KernelManager": {"transport": "ipc"}})


class StageFailed(RuntimeError):
    """A notebook stage failed; the committed results are untouched."""


def _publish(staging: Path, dest_root: Path) -> list[Path]:
    """Move every file written under ``staging`` to the same place under ``dest_root``.

    Every destination folder is checked first, so a read-only one stops the publication before
    any file has moved (no mix of old and new results).
    """
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    targets = [dest_root / path.relative_to(staging) for path in files]
    for folder in sorted({target.parent for target in targets}):
        check_writable(folder)
    for path, target in zip(files, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    return targets


def run_notebook(name: str, keys: list[str], kernel_name: str = "python3") -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill; return the executed copy's path.

    The notebook writes its tables, figures and metrics into a private staging folder (its
    ``SLICS_RESULTS_DIR``); only when every cell has run are they moved into ``results/``, with
    the executed notebook. A failed run publishes nothing: the committed results stay as they
    were, and the partly executed notebook is kept at ``results/failed/<name>.ipynb``.

    Progress goes to stderr, outside the notebook: a bar with the cells done, the time spent
    and an estimate of the time left, and a line every half minute while one cell runs long
    (:mod:`slics.utils.progress`). The kernel talks to papermill over local IPC
    sockets rather than TCP, which keeps traffic on this machine and silences ipykernel's
    warning about unencrypted TCP.
    """
    import papermill

    params = select_params(keys)  # validates params.yaml first: bad values fail in seconds
    source = project_root() / "notebooks" / f"{name}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"Notebook {source} does not exist.")
    out_root = results_dir()
    if out_root.exists() and not out_root.is_dir():
        raise NotADirectoryError(f"the results folder {out_root} is a file; point SLICS_RESULTS_DIR at a folder "
                                 "(or unset it to write into results/).")
    for folder in (out_root, *sorted(d for d in out_root.glob("*") if d.is_dir() and not d.name.startswith("."))):
        check_writable(folder)                              # before a kernel starts: read-only folders
    out_root.mkdir(parents=True, exist_ok=True)             # a fresh project or scratch run has none yet
    remove_stale(out_root, f".staging-{name}-*")           # left by a killed run of this stage
    with tempfile.TemporaryDirectory(prefix=f".staging-{name}-", dir=out_root) as folder:
        staging = Path(folder)
        executed = staging / "notebooks" / f"{name}.ipynb"
        executed.parent.mkdir(parents=True)
        previous = os.environ.get("SLICS_RESULTS_DIR")
        os.environ["SLICS_RESULTS_DIR"] = str(staging)  # the kernel inherits it
        started = time.monotonic()
        log.info("%s: running %s", name, source.relative_to(project_root()))
        try:
            with CellClock(name) as clock:
                papermill.execute_notebook(
                    str(source), str(executed), parameters={"params": params},
                    cwd=str(source.parent), kernel_name=kernel_name, progress_bar=PROGRESS_BAR | {"desc": name, "file": sys.stderr},
                    report_mode=False, request_save_on_cell_execute=False, config=KERNEL_CONFIG,
                    engine_name=ENGINE, cell_clock=clock,
                )
        except Exception as err:  # a cell raised (PapermillExecutionError), or the kernel died
            failed = out_root / "failed" / f"{name}.ipynb"
            kept = "No notebook was written. "
            if executed.is_file():
                try:            # the fault may be the one that stopped the run (a full disk, a truncated file)
                    write_text(failed, nbformat.writes(clean_notebook(nbformat.read(executed, as_version=4))) + "\n")
                    kept = f"The partly executed notebook is at {failed}; open it to see where. "
                except Exception as keep_err:
                    kept = f"The partly executed notebook could not be kept ({type(keep_err).__name__}: {keep_err}). "
            where = (f"in cell {err.exec_count} with {err.ename}: {err.evalue}"
                     if isinstance(err, papermill.PapermillExecutionError) else f"({type(err).__name__}: {err})")
            raise StageFailed(f"Notebook {name} failed {where}\n{kept}Nothing under {out_root} was changed.") from None
        finally:
            if previous is None:
                os.environ.pop("SLICS_RESULTS_DIR", None)
            else:
                os.environ["SLICS_RESULTS_DIR"] = previous
        raw = nbformat.read(executed, as_version=4)
        record_timings(name, raw, time.monotonic() - started)
        write_text(executed, nbformat.writes(clean_notebook(raw)) + "\n")
        published = _publish(staging, out_root)
        log.info("%s: done in %.0f s, %d files written under %s", name, time.monotonic() - started,
                 len(published), out_root)
    stale = out_root / "failed" / f"{name}.ipynb"
    if stale.is_file():
        stale.unlink()
    return out_root / "notebooks" / f"{name}.ipynb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="notebook name without extension, e.g. 01_robustness")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    try:
        dest = run_notebook(args.name, stage_param_keys(args.name))
    except (ParamsError, StageFailed, KeyError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(f"executed {dest}")
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
