"""External resources: a registry (``resources.yaml``) and a verified, concurrency-safe fetcher.

Each registered file is materialised under ``data/external/<mirror path>``: copied from the
mirror folder named by ``SLICS_DATA_MIRROR`` when that folder holds it, otherwise downloaded from
its URL. Either way the sha256 is checked, and the file appears at its destination only once
verified. A file already there is re-verified; a corrupt one is named and replaced.

pooch does the per-file work (known-hash check, download to a temporary file, atomic move);
our code adds what pooch lacks here: the mirror folder as a first source (a pooch downloader),
one ``filelock`` per destination so that several ``fetch`` processes at once neither crash nor
corrupt, and NLTK packages verified file by file (``nltk.download`` installs into a private
temporary folder; only the registered, verified files are moved into place).

Command line: ``python -m slics.data.resources fetch [NAME ...]``.
"""

from __future__ import annotations

from ..utils.errors import EXIT_ERROR

import argparse
import errno
import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path

import yaml
from filelock import FileLock

from ..utils.config import data_dir, env_flag


def _pooch():
    """pooch, imported on first use: it imports ``tqdm.auto``, which warns inside a Jupyter kernel
    without ipywidgets, and a notebook that only reads already-fetched files never needs it."""
    import pooch

    pooch.get_logger().setLevel("WARNING")  # it would announce a mirror copy as a download
    return pooch


MIRROR_ENV = "SLICS_DATA_MIRROR"
REGISTRY_ENV = "SLICS_RESOURCES"     # another registry file (the full profile's rehearsal uses a scratch one)
EXPECTED_KEY = "_expected"
OFFLINE_ENV = "SLICS_OFFLINE"
DOWNLOAD_TIMEOUT_S = 30
NLTK_RESOURCE = "nltk_data"


class ResourceError(RuntimeError):
    """A resource could not be materialised (missing, corrupted or not downloadable)."""


@dataclass(frozen=True)
class ResourceFile:
    resource: str
    mirror: str
    url: str
    sha256: str | None          # None: not pinned yet (full-profile files): pinned on first use, see expected_sha256
    package: str | None = None  # NLTK package that ships this file (nltk.download name)
    profile: str | None = None  # "full": skipped by `fetch` without names

    @property
    def dest(self) -> Path:
        return external_dir() / self.mirror


def external_dir() -> Path:
    return data_dir() / "external"


def _raw_registry(path: str | Path | None = None) -> dict:
    """The registry file as parsed YAML: ``path``, else ``$SLICS_RESOURCES``, else the packaged one."""
    path = path if path is not None else os.environ.get(REGISTRY_ENV) or None
    if path is None:
        text = importlib_resources.files("slics.data").joinpath("resources.yaml").read_text()
    else:
        if not Path(path).is_file():
            raise ResourceError(f"The resource registry {path} does not exist (set by {REGISTRY_ENV} or passed).")
        text = Path(path).read_text()
    return yaml.safe_load(text)


def load_registry(path: str | Path | None = None) -> dict[str, list[ResourceFile]]:
    """Read the registry: resource name -> its files (the ``_expected`` section is not a resource)."""
    raw = _raw_registry(path)
    return {name: [ResourceFile(name, f["mirror"], f["url"], f["sha256"], f.get("package"), entry.get("profile"))
                   for f in entry["files"]]
            for name, entry in raw.items() if name != EXPECTED_KEY}


def expected(key: str):
    """A size or checksum that a reader checks its input against (``_expected.<key>`` of the registry).

    The rehearsal of the full profile (:mod:`slics.rehearsal`) runs on small fixture files through a
    scratch registry (``SLICS_RESOURCES``) that states their own sizes and checksums, so the readers'
    checks still run there.
    """
    values = _raw_registry().get(EXPECTED_KEY, {})
    if key not in values:
        raise KeyError(f"the resource registry has no {EXPECTED_KEY}.{key}.")
    return values[key]


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _mirror_setting() -> str:
    return os.environ.get(MIRROR_ENV, "<unset>")


def _mirror_dir() -> Path | None:
    """The mirror folder, or None when unset; a set but missing folder is an error, not a skip."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise ResourceError(
            f"{MIRROR_ENV}={value} does not exist or is not a folder. Point it at a folder holding "
            f"copies of the inputs (for example ../shared/data), or unset it to download them."
        )
    return folder.resolve()


def _flat_name(dest: Path) -> str:
    return dest.relative_to(external_dir()).as_posix().replace("/", "__")


def _lock(dest: Path) -> FileLock:
    locks = external_dir() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / (_flat_name(dest) + ".lock")))


def _pin_file(dest: Path) -> Path:
    return external_dir() / ".pins" / (_flat_name(dest) + ".sha256")


def expected_sha256(item: ResourceFile) -> str | None:
    """The registered sha256, or for an unregistered one (full-profile files whose hash could not be
    read offline) the sha256 recorded when this data folder first received the file: trust on first
    use, so that a later corruption or a changed upstream file is still caught."""
    if item.sha256 is not None:
        return item.sha256
    pin = _pin_file(item.dest)
    return pin.read_text().strip() if pin.is_file() else None


def _record_pin(item: ResourceFile) -> None:
    pin = _pin_file(item.dest)
    if item.sha256 is None and not pin.is_file():
        pin.parent.mkdir(parents=True, exist_ok=True)
        digest = sha256_of(item.dest)
        pin.write_text(digest + "\n")
        print(f"warning: resource '{item.resource}': {item.mirror} has no registered sha256; recorded "
              f"{digest} in {pin} and verified against it from now on (register it in resources.yaml).",
              file=sys.stderr)


def _verified(dest: Path, sha256: str | None) -> bool:
    """True when ``dest`` holds the right bytes; a wrong file is named and removed.

    With no known sha256 (an unregistered file seen for the first time) a present file counts as verified."""
    if not dest.is_file():
        return False
    if sha256 is None:
        return True
    actual = sha256_of(dest)
    if actual == sha256:
        return True
    print(f"warning: {dest} is corrupt or truncated (sha256 {actual}, expected {sha256}); "
          "replacing it.", file=sys.stderr)
    dest.unlink()
    return False


def _copy_from(source: Path):
    """A pooch downloader that copies ``source`` instead of downloading."""
    def download(url, output_file, pooch_obj=None):
        if hasattr(output_file, "write"):
            with open(source, "rb") as fh:
                shutil.copyfileobj(fh, output_file)
        else:
            shutil.copyfile(source, output_file)
    return download


def _source(item: ResourceFile):
    """(pooch downloader, description of the origin) for one file, or raise when offline."""
    try:
        mirror = _mirror_dir()
    except ResourceError as err:
        raise ResourceError(f"Resource '{item.resource}' ({item.mirror}): {err}") from None
    if mirror is not None and (mirror / item.mirror).is_file():
        return _copy_from(mirror / item.mirror), f"mirror file {mirror / item.mirror}"
    if env_flag(OFFLINE_ENV):
        raise ResourceError(
            f"Resource '{item.resource}': {item.mirror} is not available offline. "
            f"Set {MIRROR_ENV} to a folder holding a copy at <folder>/{item.mirror} "
            f"(currently {MIRROR_ENV}={_mirror_setting()}), or unset {OFFLINE_ENV} to download it from {item.url}."
        )
    return _pooch().HTTPDownloader(timeout=DOWNLOAD_TIMEOUT_S, progressbar=False), item.url


def _retrieve(item: ResourceFile, downloader, origin: str) -> None:
    dest, expected = item.dest, expected_sha256(item)
    try:
        _pooch().retrieve(item.url, known_hash=None if expected is None else f"sha256:{expected}",
                          fname=dest.name, path=dest.parent, downloader=downloader, progressbar=False)
    except ValueError as err:  # pooch: hash mismatch (the temporary file is already removed)
        which = "registered" if item.sha256 else f"recorded at first use in {_pin_file(dest)}"
        raise ResourceError(
            f"Resource '{item.resource}': checksum mismatch for {item.mirror} from {origin}: expected the "
            f"{which} sha256 {expected} ({err}). The copy is corrupted or a different version; replace it "
            f"with the file from {item.url}. Nothing was written."
        ) from err
    except Exception as err:  # requests' connection and HTTP errors are OSErrors too
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise ResourceError(f"No space left on the device while writing {dest}: free some space "
                                f"under {dest.parent} (or set SLICS_DATA_DIR elsewhere) and rerun.") from None
        if origin != item.url:
            raise
        raise ResourceError(
            f"Resource '{item.resource}': downloading {item.url} failed ({err}). If you are offline, set "
            f"{MIRROR_ENV} to a folder holding a copy at <folder>/{item.mirror} "
            f"(currently {MIRROR_ENV}={_mirror_setting()})."
        ) from err


def fetch_file(item: ResourceFile) -> Path:
    """Materialise one file at ``item.dest`` (verified), and return that path."""
    dest = item.dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _lock(dest):
        if not _verified(dest, expected_sha256(item)):
            downloader, origin = _source(item)
            _retrieve(item, downloader, origin)
            print(f"{item.mirror}: verified copy of {origin}", file=sys.stderr)
        _record_pin(item)
    return dest


def fetch(name: str, registry: dict[str, list[ResourceFile]] | None = None) -> list[Path]:
    """Materialise every file of resource ``name``; return their local paths."""
    registry = registry if registry is not None else load_registry()
    if name not in registry:
        raise KeyError(f"Unknown resource '{name}'. Known resources: {', '.join(sorted(registry))}.")
    if name == NLTK_RESOURCE:
        fetch_nltk(registry[name])
        return [item.dest for item in registry[name]]
    return [fetch_file(item) for item in registry[name]]


def resource_path(name: str, mirror_path: str) -> Path:
    """Local path of one file of a resource, fetching the resource if needed."""
    for path in fetch(name):
        if path.as_posix().endswith(mirror_path):
            return path
    raise KeyError(f"Resource '{name}' has no file {mirror_path}.")


def nltk_dir() -> Path:
    return external_dir() / NLTK_RESOURCE


def _nltk_download(package: str, items: list[ResourceFile]) -> None:
    """``nltk.download`` into a private folder, then move the verified registered files into place."""
    import nltk

    external_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".nltk-{package}-", dir=external_dir()) as tmp:
        try:
            nltk.download(package, download_dir=tmp, quiet=True, raise_on_error=True)
        except Exception as err:  # nltk raises ValueError or URLError, and may just return False
            raise ResourceError(
                f"NLTK package '{package}' could not be downloaded ({err}). If you are offline, set "
                f"{MIRROR_ENV} to a folder holding {NLTK_RESOURCE}/... (currently {MIRROR_ENV}={_mirror_setting()})."
            ) from err
        for item in items:
            got = Path(tmp) / Path(item.mirror).relative_to(NLTK_RESOURCE)
            if not got.is_file() or sha256_of(got) != item.sha256:
                raise ResourceError(
                    f"NLTK package '{package}' downloaded, but {item.mirror} is missing or differs from the "
                    f"registered sha256 {item.sha256}: NLTK changed the package. Set {MIRROR_ENV} to a folder "
                    f"holding the registered copy.")
            with _lock(item.dest):
                item.dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(got, item.dest)


def fetch_nltk(items: list[ResourceFile] | None = None) -> Path:
    """Materialise the registered NLTK files under ``data/external/nltk_data``, each verified."""
    items = items if items is not None else load_registry()[NLTK_RESOURCE]
    by_package: dict[str, list[ResourceFile]] = {}
    for item in items:
        by_package.setdefault(item.package, []).append(item)
    for package, files in by_package.items():
        missing = []
        for item in files:
            item.dest.parent.mkdir(parents=True, exist_ok=True)
            with _lock(item.dest):
                if _verified(item.dest, item.sha256):
                    continue
                mirror = _mirror_dir()
                if mirror is not None and (mirror / item.mirror).is_file():
                    _retrieve(item, _copy_from(mirror / item.mirror), f"mirror file {mirror / item.mirror}")
                else:
                    missing.append(item)
        if missing and env_flag(OFFLINE_ENV):
            raise ResourceError(
                f"NLTK package '{package}' is not available offline ({', '.join(i.mirror for i in missing)}). "
                f"Set {MIRROR_ENV} to a folder holding those files (currently {MIRROR_ENV}={_mirror_setting()}), "
                f"or unset {OFFLINE_ENV} to download them.")
        if missing:
            _nltk_download(package, missing)
    return nltk_dir()


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
        print(f"{name}: {len(fetch(name, registry))} file(s) verified")


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
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    from slics.utils.errors import run_main

    sys.exit(run_main(main))
