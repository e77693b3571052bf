"""Project paths and parameters.

Every knob lives in ``params.yaml`` at the project root. The root is found by
walking up from the working directory (notebooks run from ``notebooks/`` under
papermill and from ``results/notebooks/`` under nbval), or taken from
``SLICS_ROOT``. ``SLICS_RESULTS_DIR`` redirects every written result, which is
how the nbval run re-executes notebooks without touching tracked files.
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path

import yaml

ROOT_MARKERS = ("params.yaml", "dvc.yaml")


def project_root(start: str | Path | None = None) -> Path:
    """Return the compendium root (the folder holding ``params.yaml``)."""
    env = os.environ.get("SLICS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).is_file() for marker in ROOT_MARKERS):
            return folder
    raise FileNotFoundError(
        f"Could not find the compendium root (a folder with {' and '.join(ROOT_MARKERS)}) "
        f"above {here}. Run from inside the repository or set SLICS_ROOT."
    )


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to 1, true, yes or on (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def results_dir() -> Path:
    """Folder for generated tables, figures and metrics (``results/`` by default)."""
    env = os.environ.get("SLICS_RESULTS_DIR")
    return Path(env).resolve() if env else project_root() / "results"


def upstream_results_dir() -> Path:
    """The project's own ``results/``, where upstream stages' outputs are read from.

    Unlike :func:`results_dir` it ignores ``SLICS_RESULTS_DIR``: that variable redirects what
    a run writes, not the committed inputs it reads (such as the concept list).
    """
    return project_root() / "results"


def data_dir() -> Path:
    """Folder for fetched and generated inputs (``data/``, git-ignored)."""
    env = os.environ.get("SLICS_DATA_DIR")
    return Path(env).resolve() if env else project_root() / "data"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found the key {key!r} twice (first on line {seen[key] + 1}); YAML would silently keep the "
                    "last one: delete one of them", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class ConfigError(ValueError):
    """A YAML file cannot be read as the compendium's configuration."""


@lru_cache(maxsize=None)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        try:
            return yaml.load(fh, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None


def load_yaml(path: str | Path) -> dict:
    """Load a YAML file (a fresh copy, safe to mutate)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist{' (a folder)' if path.is_dir() else ''}: "
                                "pass the path of a YAML file.")
    return copy.deepcopy(_load(str(path.resolve())))


def load_params(path: str | Path | None = None) -> dict:
    """Load ``params.yaml`` (a fresh copy, safe to mutate), validated against :mod:`.schema`."""
    from .schema import validate

    path = Path(path) if path else project_root() / "params.yaml"
    params = load_yaml(path)
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (profile, seed, ...), got {type(params).__name__}.")
    return validate(params, source=str(path))
