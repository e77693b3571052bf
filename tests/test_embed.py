"""The embed stage: CIFAR-10 reader, profile checks, fail-fast offline, and a tiny demo run."""

from __future__ import annotations

import io
import json
import pickle
import struct
import time

import numpy as np
import pytest
import yaml

from slics.embedding import encoders
from slics.data.cifar import (CIFAR10_CLASSES, CifarImages, CifarUnavailableError, ensure_cifar10, read_batch,
                         read_cifar10_test)
from slics.utils.config import load_params
from slics.embedding.embed import check_profile, embed_cifar10, load_embeddings, main, make_prompts


# ---------------------------------------------------------------------------------------------
# A CIFAR-10 fixture in the real format. The real files were pickled by Python 2: their keys
# and class names are Python-2 `str`, which load as bytes (b'data') under encoding='bytes' and
# as str under torchvision's encoding='latin1'. This pickler writes `bytes` with those same
# opcodes (SHORT_BINSTRING / BINSTRING), so the fixture behaves like the real files.
# ---------------------------------------------------------------------------------------------

class _Py2StrPickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump_py2(obj, path):
    buf = io.BytesIO()
    _Py2StrPickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def write_cifar_fixture(root, n=12, seed=0, data=None):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data
    labels = [int(v) for v in rng.integers(0, 10, data.shape[0])]
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    _dump_py2({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
               b"filenames": [b"img_%d.png" % i for i in range(data.shape[0])]}, folder / "test_batch")
    _dump_py2({b"num_cases_per_batch": data.shape[0], b"label_names": [c.encode() for c in CIFAR10_CLASSES],
               b"num_vis": 3072}, folder / "batches.meta")
    return data, np.array(labels)


def test_fixture_has_the_real_key_format(tmp_path):
    write_cifar_fixture(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    assert {b"data", b"labels"} <= set(raw) and raw[b"data"].dtype == np.uint8
    assert set(read_batch(tmp_path / "cifar-10-batches-py" / "test_batch")) >= {"data", "labels"}


def test_cifar_reader_matches_torchvision(tmp_path, monkeypatch):
    data, labels = write_cifar_fixture(tmp_path)
    images, got_labels, classes = read_cifar10_test(tmp_path)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert got_labels.dtype == np.int64 and np.array_equal(got_labels, labels)
    assert classes == list(CIFAR10_CLASSES)
    # pixel (row 0, col 1) of image 0: R, G, B come from the three 1024-byte planes
    assert tuple(images[0, 0, 1]) == (data[0, 1], data[0, 1025], data[0, 2049])

    import torchvision.datasets.cifar as tv

    monkeypatch.setattr(tv, "check_integrity", lambda *a, **k: True)   # the fixture has no real md5
    monkeypatch.setattr(tv.CIFAR10, "_check_integrity", lambda self: True)
    ds = tv.CIFAR10(str(tmp_path), train=False, download=False)
    assert np.array_equal(ds.data, images) and ds.targets == got_labels.tolist() and ds.classes == classes

    pil = CifarImages(images)
    assert len(pil) == 12 and pil[3].size == (32, 32) and pil[3].mode == "RGB"
    assert np.array_equal(np.asarray(pil[3]), images[3]) and np.array_equal(np.asarray(ds[3][0]), images[3])


def test_cifar_reader_rejects_bad_files(tmp_path):
    write_cifar_fixture(tmp_path, data=np.zeros((2, 100), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(n, 3072\)"):
        read_cifar10_test(tmp_path)
    evil = tmp_path / "evil"
    evil.write_bytes(pickle.dumps({"data": time.sleep}))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        read_batch(evil)


def test_cifar_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("SLICS_DATA_MIRROR", raising=False)
    start = time.perf_counter()
    with pytest.raises(CifarUnavailableError, match=r"(?s)not in .*CIFAR10\(.*train=False, download=True\)"):
        ensure_cifar10(tmp_path / "cifar10", offline=True)
    assert time.perf_counter() - start < 5
    write_cifar_fixture(tmp_path / "present")
    with pytest.raises(CifarUnavailableError, match="md5"):       # present but not the real files
        ensure_cifar10(tmp_path / "present", offline=True)


# ---------------------------------------------------------------------------------------------
# profiles and fail-fast
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile, backbone, match", [
    ("demo", "clip-vit-b32", "Profile 'demo' needs embed.backbone: demo"),
    ("full", "demo", "Profile 'full' needs embed.backbone: clip-vit-b32 or clip-rn50"),
    ("full", "clip-vit-h14", "'clip-vit-h14' is not a registered backbone"),
    ("full", "dinov2-vitb14", "'dinov2-vitb14' has no text tower"),
    ("fast", "demo", "Unknown profile"),
])
def test_profile_backbone_mismatch(profile, backbone, match):
    with pytest.raises(ValueError, match=match):
        check_profile(profile, backbone)
    params = load_params()
    params.update(profile=profile)
    params["embed"]["backbone"] = backbone
    with pytest.raises(ValueError, match=match):
        embed_cifar10(params, concepts=["dog"])


def test_prompt_template_needs_one_slot():
    assert make_prompts("a photo of a {}", ["cat"]) == ["a photo of a cat"]
    with pytest.raises(ValueError, match="exactly one"):
        make_prompts("a photo", ["cat"])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Data dir and Hugging Face cache in tmp, offline; heavy modules imported up front so that
    the fail-fast timings measure the checks, not imports."""
    import huggingface_hub.constants
    import open_clip  # noqa: F401
    import torchvision.datasets  # noqa: F401

    monkeypatch.setenv("SLICS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SLICS_DATA_MIRROR", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


def _full_params(tmp_path, backbone="clip-vit-b32"):
    params = load_params()
    params["profile"] = "full"
    params["embed"]["backbone"] = backbone
    params["image_to_prompt"]["train_sizes"] = [600, 800]     # >= ViT-B/32's 512 dimensions
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_full_profile_offline_fails_fast(isolated, capsys):
    start = time.perf_counter()
    assert main(["cifar10", "--params", str(_full_params(isolated))]) == 2          # the CLI error status
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 10
    assert "create_model_and_transforms('ViT-B-32', pretrained='openai')" in err
    assert "offline mode is set (HF_HUB_OFFLINE=1)" in err
    assert not (isolated / "data" / "embeddings").exists()


def test_full_profile_with_weights_but_no_cifar_fails_fast(isolated, monkeypatch, capsys):
    monkeypatch.setattr(encoders, "cached_weights", lambda *a, **k: isolated / "weights.bin")
    start = time.perf_counter()
    assert main(["cifar10", "--params", str(_full_params(isolated, "clip-rn50"))]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - start < 10
    assert "CIFAR-10 test set is not in" in err and "download=True" in err


# ---------------------------------------------------------------------------------------------
# the demo stage at tiny scale
# ---------------------------------------------------------------------------------------------

def test_demo_embed_end_to_end_small(isolated):
    params = load_params()
    params["demo_world"].update(n_per_class=5, n_descriptors=10, placement_words=38)     # tiny vocabularies
    vocab = ["cat", "dog", "kitten", "puppy", "car", "truck", "boat", "ship", "plane", "bird", "horse",
             "pony", "deer", "frog", "toad", "jet", "van", "bus", "animal", "pet"]
    vocab += [f"thing{i}" for i in range(60)]
    placement_lines = ("feline meow whiskers tabby kitties purring canine barking pooch hound jetliner runway "
                       "hangar sedan coupe hatchback antlers fawn stag amphibian tadpole pond stallion mare "
                       "saddle gallop vessel hull harbor anchor lorry pickup freight cargo wings feathers beak "
                       "nest").split()                   # stand for laion.txt's words below the LAION-10k
    concepts = ["man", "street", "dog", "water", "cat", "tree", "car", "grass"]
    manifest = embed_cifar10(params, concepts=concepts, vocab_words=vocab, placement_lines=placement_lines,
                             progress=False)

    images = load_embeddings("demo", "cifar10_images")
    labels = load_embeddings("demo", "cifar10_labels")
    classes = load_embeddings("demo", "cifar10_classes.npy")
    concept_emb = load_embeddings("demo", "concepts")
    vocab_emb = load_embeddings("demo", "laion10k_vocab")
    assert images.shape == (50, 384) and images.dtype == np.float64
    assert labels.dtype == np.int64 and np.array_equal(np.bincount(labels), [5] * 10)
    assert classes.shape == (10, 384) and concept_emb.shape == (8, 384) and vocab_emb.shape == (len(vocab), 384)
    for A in (images, classes, concept_emb, vocab_emb):
        assert A.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-5)

    written = json.loads((isolated / "data" / "embeddings" / "demo" / "cifar10" / "manifest.json").read_text())
    assert written["backbone"] == "demo" and written["profile"] == "demo" and written["seed"] == params["seed"]
    assert written["files"]["cifar10_images.npy"] == {"shape": [50, 384], "dtype": "float64"}
    assert written["demo_world"]["n_per_class"] == 5 and "timings" not in written
    assert 0 <= written["checks"]["zero_shot_accuracy"] <= 1 and manifest["timings"]["total_s"] > 0

    before = images.tobytes()
    placement_words = (isolated / "data" / "embeddings" / "demo" / "cifar10" / "placement_words.txt").read_text().split()
    assert load_embeddings("demo", "placement_vocab").shape == (len(placement_words), 384)
    assert load_embeddings("demo", "descriptors").shape == (10, 10)
    assert placement_words and not set(placement_words) & (set(vocab) | set(concepts))
    embed_cifar10(params, concepts=concepts, vocab_words=vocab, placement_lines=placement_lines, progress=False)
    assert load_embeddings("demo", "cifar10_images").tobytes() == before      # deterministic


def test_load_embeddings_missing_says_dvc_repro(isolated):
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        load_embeddings("demo", "nothing_here")


def test_atomic_dir_keeps_previous_contents_on_failure(tmp_path):
    from slics.utils.io import atomic_dir

    dest = tmp_path / "emb"
    with atomic_dir(dest) as staging:
        (staging / "a.npy").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(dest) as staging:
            (staging / "a.npy").write_text("v2-partial")
            raise RuntimeError("encoder crashed")
    assert (dest / "a.npy").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb"]  # no staging folder left
    with atomic_dir(dest) as staging:
        (staging / "b.npy").write_text("v3")
    assert sorted(p.name for p in dest.iterdir()) == ["b.npy"]
