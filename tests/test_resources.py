import hashlib

import pytest

from slics.data import resources


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A mirror folder with one file, a data folder, and a one-entry registry."""
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    payload = b"hello compendium\n"
    (mirror / "toy" / "a.txt").write_bytes(payload)
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(resources.MIRROR_ENV, str(mirror))
    monkeypatch.delenv(resources.OFFLINE_ENV, raising=False)
    item = resources.ResourceFile("toy", "toy/a.txt", "http://127.0.0.1:9/a.txt",
                                  hashlib.sha256(payload).hexdigest())
    return {"mirror": mirror, "item": item, "registry": {"toy": [item]}, "payload": payload}


def test_mirror_hit(sandbox):
    (path,) = resources.fetch("toy", sandbox["registry"])
    assert path == sandbox["item"].dest
    assert path.read_bytes() == sandbox["payload"]
    assert path.parent.parent.name == "external"


def test_existing_verified_file_is_kept(sandbox, monkeypatch):
    resources.fetch("toy", sandbox["registry"])
    monkeypatch.setenv(resources.MIRROR_ENV, "/nonexistent")
    monkeypatch.setenv(resources.OFFLINE_ENV, "1")
    assert resources.fetch("toy", sandbox["registry"])[0].read_bytes() == sandbox["payload"]


def test_checksum_mismatch_is_reported_and_leaves_nothing(sandbox):
    (sandbox["mirror"] / "toy" / "a.txt").write_bytes(b"tampered\n")
    with pytest.raises(resources.ResourceError, match="checksum mismatch") as err:
        resources.fetch("toy", sandbox["registry"])
    assert sandbox["item"].sha256 in str(err.value) and "toy" in str(err.value)
    folder = sandbox["item"].dest.parent
    assert not sandbox["item"].dest.exists()
    assert list(folder.iterdir()) == []  # no temporary file left behind


def test_missing_offline_names_the_variable(sandbox, monkeypatch):
    (sandbox["mirror"] / "empty").mkdir()
    monkeypatch.setenv(resources.MIRROR_ENV, str(sandbox["mirror"] / "empty"))
    monkeypatch.setenv(resources.OFFLINE_ENV, "1")
    with pytest.raises(resources.ResourceError, match=resources.MIRROR_ENV) as err:
        resources.fetch("toy", sandbox["registry"])
    assert "toy/a.txt" in str(err.value)
    assert not sandbox["item"].dest.exists()


def test_failed_download_names_url_and_variable(sandbox, monkeypatch):
    monkeypatch.delenv(resources.MIRROR_ENV)
    with pytest.raises(resources.ResourceError, match="downloading http://127.0.0.1:9/a.txt failed") as err:
        resources.fetch("toy", sandbox["registry"])
    assert resources.MIRROR_ENV in str(err.value)
    assert list(sandbox["item"].dest.parent.iterdir()) == []


def test_unknown_resource():
    with pytest.raises(KeyError, match="Unknown resource 'nope'"):
        resources.fetch("nope", {})


def test_registry_is_well_formed():
    registry = resources.load_registry()
    assert {"flickr30k", "splice_vocab", "splice_means", "mirflickr25k_labels", "coco_labels"} <= set(registry)
    for files in registry.values():
        for item in files:
            if item.profile == "full":          # large official archives; some hosts are http only
                assert item.sha256 is None or len(item.sha256) == 64
                assert item.url.startswith(("https://", "http://"))
            else:                               # every input of the demo profile is pinned
                assert len(item.sha256) == 64 and item.url.startswith("https://")
    assert {"coco_instances_2017", "mirflickr25k_images"} <= {n for n, f in registry.items()
                                                              if f[0].profile == "full"}


def test_fetch_without_names_skips_full_profile_archives(monkeypatch):
    fetched = []
    monkeypatch.setattr(resources, "fetch", lambda name, registry=None: fetched.append(name) or [])
    monkeypatch.setattr(resources, "ensure_nltk", lambda: None)
    resources.fetch_all()
    assert "coco_labels" in fetched and "coco_instances_2017" not in fetched
    fetched.clear()
    resources.fetch_all(["coco_instances_2017"])
    assert fetched == ["coco_instances_2017"]


def test_unregistered_hash_is_pinned_on_first_use_then_enforced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "mirror" / "x").mkdir(parents=True)
    (tmp_path / "mirror" / "x" / "a.bin").write_bytes(b"abc")
    monkeypatch.setenv(resources.MIRROR_ENV, str(tmp_path / "mirror"))
    item = resources.ResourceFile("x", "x/a.bin", "https://example.invalid/a.bin", None, profile="full")
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"   # sha256(b"abc")
    assert resources.fetch_file(item).read_bytes() == b"abc"
    assert digest in capsys.readouterr().err
    assert resources.expected_sha256(item) == digest
    # a later corruption is caught against the recorded hash and repaired from the mirror
    item.dest.write_bytes(b"abX")
    assert resources.fetch_file(item).read_bytes() == b"abc"
    assert "corrupt" in capsys.readouterr().err
    # a different upstream file no longer passes silently
    item.dest.unlink()
    (tmp_path / "mirror" / "x" / "a.bin").write_bytes(b"abd")
    with pytest.raises(resources.ResourceError, match="recorded at first use"):
        resources.fetch_file(item)
    assert not item.dest.exists()


def test_real_registry_against_shared_mirror(monkeypatch, tmp_path):
    """Every registered file is in the CI mirror with the registered hash."""
    mirror = resources._mirror_dir()
    if mirror is None or not mirror.is_dir():
        pytest.skip(f"{resources.MIRROR_ENV} is not set to a mirror folder")
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path))
    for name, files in resources.load_registry().items():
        if files[0].profile == "full":
            continue
        for path in resources.fetch(name):
            assert path.is_file()


def test_nltk_offline_without_mirror_is_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path))
    (tmp_path / "nothing").mkdir()
    monkeypatch.setenv(resources.MIRROR_ENV, str(tmp_path / "nothing"))
    monkeypatch.setenv(resources.OFFLINE_ENV, "1")
    with pytest.raises(resources.ResourceError, match="NLTK package"):
        resources.fetch_nltk()


def test_mirror_that_does_not_exist_is_reported(sandbox, monkeypatch):
    monkeypatch.setenv(resources.MIRROR_ENV, "/no/such/mirror")
    with pytest.raises(resources.ResourceError, match="SLICS_DATA_MIRROR=/no/such/mirror does not exist") as err:
        resources.fetch("toy", sandbox["registry"])
    assert "toy/a.txt" in str(err.value)


def test_corrupt_file_in_place_is_named_and_replaced(sandbox, capsys):
    resources.fetch("toy", sandbox["registry"])
    dest = sandbox["item"].dest
    dest.write_bytes(sandbox["payload"][:5])  # truncated
    resources.fetch("toy", sandbox["registry"])
    assert dest.read_bytes() == sandbox["payload"]
    assert f"{dest} is corrupt or truncated" in capsys.readouterr().err


def test_nltk_files_verified_one_by_one(monkeypatch, tmp_path):
    """A package folder missing one registered file is completed, not taken as done."""
    mirror = resources._mirror_dir()
    if mirror is None:
        pytest.skip(f"{resources.MIRROR_ENV} is not set to a mirror folder")
    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path))
    resources.fetch_nltk()
    items = resources.load_registry()["nltk_data"]
    victim = next(i for i in items if i.mirror.endswith("weights.json"))
    victim.dest.unlink()
    resources.fetch_nltk()
    assert all(resources.sha256_of(i.dest) == i.sha256 for i in items)


_FETCH_SCRIPT = """
import sys
from slics.data import resources
resources.fetch_all()
"""


@pytest.mark.slow
def test_concurrent_fetches_end_verified(monkeypatch, tmp_path):
    """Three `fetch` processes at once, repeated, always leave a complete, verified data/external."""
    import subprocess
    import sys

    if resources._mirror_dir() is None:
        pytest.skip(f"{resources.MIRROR_ENV} is not set to a mirror folder")
    registry = {name: files for name, files in resources.load_registry().items()
                if files[0].profile != "full"}          # what `fetch` without names materialises
    for round_ in range(3):
        data = tmp_path / f"round{round_}"
        env = {**__import__("os").environ, "SLICS_DATA_DIR": str(data)}
        procs = [subprocess.Popen([sys.executable, "-c", _FETCH_SCRIPT], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
        monkeypatch.setenv("SLICS_DATA_DIR", str(data))
        for files in registry.values():
            for item in files:
                assert resources.sha256_of(item.dest) == item.sha256, item.mirror
        expected = {item.dest for files in registry.values() for item in files}
        leftovers = [p for p in (data / "external").rglob("*")
                     if p.is_file() and p not in expected and p.parent.name != ".locks"]
        assert leftovers == []  # no temporary file left behind


def test_full_disk_is_one_clear_message(sandbox, monkeypatch):
    import errno

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(resources.shutil, "copyfile", no_space)
    with pytest.raises(resources.ResourceError, match="No space left on the device while writing") as err:
        resources.fetch("toy", sandbox["registry"])
    assert str(sandbox["item"].dest) in str(err.value)
    assert not sandbox["item"].dest.exists()
