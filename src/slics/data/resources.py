"""External resources: a registry (``resources.yaml``) and a verified fetcher.

Each registered file is materialised under ``data/external/<mirror path>``:
first copied from the mirror folder named by ``SLICS_DATA_MIRROR`` when that
folder holds it, otherwise downloaded from its URL. The sha256 is checked
either way, and the file only appears at its destination once verified.

NLTK data is resolved the same way: the mirror's ``nltk_data/`` folder, else
``nltk.download(..., raise_on_error=True)`` into ``data/external/nltk_data``;
:func:`ensure_nltk` points NLTK at that folder, so nobody sets ``NLTK_DATA``.

Command line: ``python -m slics.data.resources fetch [NAME ...]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path

import yaml

from ..utils.config import data_dir, env_flag
from ..utils.io import atomic_path

MIRROR_ENV = "SLICS_DATA_MIRROR"
OFFLINE_ENV = "SLICS_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30
NLTK_PACKAGES = {
    # nltk.download name -> path inside an nltk_data folder
    "stopwords": "corpora/stopwords",
    "punkt_tab": "tokenizers/punkt_tab",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng",
}


class ResourceError(RuntimeError):
    """A resource could not be materialised (missing, corrupted or not downloadable)."""


@dataclass(frozen=True)
class ResourceFile:
    resource: str
    mirror: str
    url: str
    sha256: str | None          # None: not pinned yet (full-profile archives); printed when fetched
    profile: str | None = None  # "full": skipped by `fetch` without names

    @property
    def dest(self) -> Path:
        return external_dir() / self.mirror


def external_dir() -> Path:
    return data_dir() / "external"


def load_registry(path: str | Path | None = None) -> dict[str, list[ResourceFile]]:
    """Read the registry: resource name -> its files."""
    if path is None:
        text = importlib_resources.files("slics.data").joinpath("resources.yaml").read_text()
    else:
        text = Path(path).read_text()
    raw = yaml.safe_load(text)
    return {name: [ResourceFile(name, f["mirror"], f["url"], f["sha256"], entry.get("profile"))
                   for f in entry["files"]]
            for name, entry in raw.items()}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mirror_dir() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


def fetch_file(item: ResourceFile) -> Path:
    """Materialise one file at ``item.dest`` (verified), and return that path."""
    dest = item.dest
    if dest.is_file() and (item.sha256 is None or sha256_of(dest) == item.sha256):
        return dest
    mirror = _mirror_dir()
    source = mirror / item.mirror if mirror else None
    with atomic_path(dest) as tmp:
        if source is not None and source.is_file():
            shutil.copyfile(source, tmp)
            origin = f"mirror file {source}"
        elif env_flag(OFFLINE_ENV):
            raise ResourceError(
                f"Resource '{item.resource}': {item.mirror} is not available offline. "
                f"Set {MIRROR_ENV} to a folder holding a copy at <folder>/{item.mirror} "
                f"(currently {MIRROR_ENV}={os.environ.get(MIRROR_ENV, '<unset>')}), "
                f"or unset {OFFLINE_ENV} to download it from {item.url}."
            )
        else:
            try:
                with urllib.request.urlopen(item.url, timeout=DOWNLOAD_TIMEOUT_S) as response, \
                        open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as err:
                raise ResourceError(
                    f"Resource '{item.resource}': downloading {item.url} failed ({err}). "
                    f"If you are offline, set {MIRROR_ENV} to a folder holding a copy at "
                    f"<folder>/{item.mirror} (currently {MIRROR_ENV}="
                    f"{os.environ.get(MIRROR_ENV, '<unset>')})."
                ) from err
            origin = item.url
        actual = sha256_of(tmp)
        if item.sha256 is None:
            print(f"warning: resource '{item.resource}': {item.mirror} has no pinned sha256; "
                  f"it is {actual} (record it in resources.yaml).", file=sys.stderr)
        elif actual != item.sha256:
            raise ResourceError(
                f"Resource '{item.resource}': checksum mismatch for {item.mirror} from {origin}: "
                f"expected sha256 {item.sha256}, got {actual}. The copy is corrupted or a different "
                f"version; replace it with the file from {item.url}. Nothing was written."
            )
    return dest


def fetch(name: str, registry: dict[str, list[ResourceFile]] | None = None) -> list[Path]:
    """Materialise every file of resource ``name``; return their local paths."""
    registry = registry or load_registry()
    if name not in registry:
        raise KeyError(f"Unknown resource '{name}'. Known resources: {', '.join(sorted(registry))}.")
    return [fetch_file(item) for item in registry[name]]


def resource_path(name: str, mirror_path: str) -> Path:
    """Local path of one file of a resource, fetching the resource if needed."""
    for path in fetch(name):
        if path.as_posix().endswith(mirror_path):
            return path
    raise KeyError(f"Resource '{name}' has no file {mirror_path}.")


def nltk_dir() -> Path:
    return external_dir() / "nltk_data"


def fetch_nltk() -> Path:
    """Materialise the NLTK packages the compendium uses under ``data/external/nltk_data``."""
    target = nltk_dir()
    mirror = _mirror_dir()
    for package, subdir in NLTK_PACKAGES.items():
        dest = target / subdir
        if dest.is_dir() and any(dest.iterdir()):
            continue
        source = mirror / "nltk_data" / subdir if mirror else None
        if source is not None and source.is_dir():
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            os.replace(tmp, dest)
            continue
        if env_flag(OFFLINE_ENV):
            raise ResourceError(
                f"NLTK package '{package}' is not available offline. Set {MIRROR_ENV} to a folder "
                f"holding nltk_data/{subdir}, or unset {OFFLINE_ENV} to download it."
            )
        import nltk

        try:
            nltk.download(package, download_dir=str(target), quiet=True, raise_on_error=True)
        except Exception as err:  # nltk raises ValueError or URLError
            raise ResourceError(
                f"NLTK package '{package}' could not be downloaded ({err}). If you are offline, set "
                f"{MIRROR_ENV} to a folder holding nltk_data/{subdir}."
            ) from err
    return target


def ensure_nltk() -> Path:
    """Fetch the NLTK data if needed and make NLTK find it; return the folder."""
    import nltk

    folder = fetch_nltk()
    os.environ["NLTK_DATA"] = str(folder)
    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    return folder


def fetch_all(names: list[str] | None = None) -> None:
    registry = load_registry()
    default = [name for name in sorted(registry) if all(f.profile != "full" for f in registry[name])]
    for name in names or default:
        paths = fetch(name, registry)
        print(f"{name}: {len(paths)} file(s) verified")
    if not names:
        ensure_nltk()
        print(f"nltk_data: {', '.join(NLTK_PACKAGES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="materialise resources (all when none is named)")
    fetch_cmd.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    try:
        fetch_all(args.names)
    except (ResourceError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
