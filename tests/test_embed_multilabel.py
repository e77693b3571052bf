"""Embed stages of the retrieval sets: demo at tiny scale, full profile on fixture images."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from slics.data import mirflickr
from slics.data.images import ZipImages
from slics.embedding import encoders, registry
from slics.embedding.embed_multilabel import embed_multilabel
from slics.utils.config import load_params


def _tiny_mir(n=40, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.random((n, len(mirflickr.LABELS38))) < 0.12
    Y[:, mirflickr.LABELS38.index("people")] |= rng.random(n) < 0.5
    Y[-1] = False                                          # one image without labels: dropped
    return mirflickr.from_columns(tuple(f"im{i + 1}.jpg" for i in range(n)), Y)


def _params(profile="demo", backbone="demo", sizes=(10, 5, 5)):
    params = load_params()
    params["profile"] = profile
    params["embed"]["backbone"] = backbone
    params["demo_world"].update(n_descriptors=5)
    params["datasets"]["zero_shot_templates"] = params["datasets"]["zero_shot_templates"][:2]
    for p in ("demo", "full"):
        params["datasets"]["mirflickr25k"]["splits"][p] = dict(zip(("n_train", "n_val", "n_query"), sizes))
    return params


PLACEMENT = np.random.default_rng(0).standard_normal((40, 384))     # stands for the placement words


@pytest.mark.slow
def test_demo_stage_tiny(tmp_path):
    data = _tiny_mir()
    params = _params()
    out = tmp_path / "mir"
    manifest = embed_multilabel("mirflickr25k", params, out_dir=out, data=data, placement=PLACEMENT,
                                progress=False)
    X = np.load(out / "images.npy")
    split = pd.read_csv(out / "split.csv")
    kept = data.drop_unlabelled()
    assert X.shape == (len(kept), 384) and X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert tuple(split["image"]) == kept.image_ids
    assert split["split"].value_counts().to_dict() == {"pool": len(kept) - 20, "train": 10, "val": 5, "query": 5}
    T = np.load(out / "general_text.npy")
    assert T.shape == (11, 384)
    assert np.load(out / "descriptors.npy").shape == (24, 5)          # one row per label column
    written = json.loads((out / "manifest.json").read_text())
    assert written["general_concepts"][5] == "plant_life" and manifest["n_images"] == len(kept)
    again = embed_multilabel("mirflickr25k", params, out_dir=tmp_path / "again", data=data, placement=PLACEMENT,
                             progress=False)
    assert again["n_images"] == manifest["n_images"]
    assert np.load(tmp_path / "again" / "images.npy").tobytes() == X.tobytes()      # deterministic


def _fixture_zip(path, names, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mirflickr/", "")
        for name in names:
            img = Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8))
            import io

            buf = io.BytesIO()
            img.save(buf, format="JPEG")
            zf.writestr(f"mirflickr/{name}", buf.getvalue())


def test_zip_images_by_base_name(tmp_path):
    _fixture_zip(tmp_path / "a.zip", ["im1.jpg", "im2.jpg"])
    images = ZipImages(tmp_path / "a.zip", ["im2.jpg", "im1.jpg"])
    assert len(images) == 2 and images[0].size == (56, 40) and images[0].mode == "RGB"
    with pytest.raises(ValueError, match="not in a.zip"):
        ZipImages(tmp_path / "a.zip", ["im3.jpg"])


@pytest.mark.slow
def test_full_profile_path_with_random_weights(tmp_path, monkeypatch):
    data = _tiny_mir(n=8)
    kept = data.drop_unlabelled()
    _fixture_zip(tmp_path / "mirflickr25k.zip", kept.image_ids)
    model = encoders.OpenClipBackbone("RN50", pretrained=None, device="cpu", name="clip-rn50")
    monkeypatch.setattr(registry, "load_backbone", lambda name, device=None: model)
    images = ZipImages(tmp_path / "mirflickr25k.zip", kept.image_ids)
    manifest = embed_multilabel("mirflickr25k", _params("full", "clip-rn50", (2, 1, 1)), out_dir=tmp_path / "out",
                                data=data,
                                images=images, progress=False)
    X = np.load(tmp_path / "out" / "images.npy")
    assert X.shape == (len(kept), 1024) and manifest["profile"] == "full"
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    direct = model.encode_images([images[i] for i in range(3)], progress=False)
    np.testing.assert_allclose(X[:3], direct, atol=1e-5)        # rows follow the label order


def test_full_profile_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(encoders, "cached_weights", lambda *a, **k: None)
    with pytest.raises(encoders.BackboneUnavailableError, match="offline"):
        embed_multilabel("mirflickr25k", _params("full", "clip-vit-b32"), out_dir=tmp_path / "out",
                         data=_tiny_mir(), progress=False)
    assert not (tmp_path / "out").exists()
