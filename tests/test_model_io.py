"""Model files: bit-exact round trip, no pickle, versioned, clear errors, atomic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slics.core.dictionary import SLiCS
from slics.model_io import FORMAT_VERSION, load_model, save_model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((150, 10))
    Y = rng.random((150, 3)) < 0.5
    Y[:3] = np.eye(3, dtype=bool)
    keep = Y.any(axis=1)
    X, Y = X[keep], Y[keep]
    return X, Y, SLiCS(n_atoms=2, n_iter=3, batch_size=50, random_state=7).fit(X, Y)


def test_round_trip_is_bit_exact(tmp_path, data):
    X, Y, model = data
    mean = X.mean(axis=0)
    path = save_model(model, tmp_path / "m.npz", concept_names=["a", "b", "c"], preprocessing="centre",
                      image_mean=mean, metadata={"note": "x"})
    back = load_model(path)
    for attr in ("dictionary_", "atom_concept_", "init_dictionary_", "error_history_"):
        a, b = getattr(model, attr), getattr(back, attr)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert back.transform(X, Y).tobytes() == model.transform(X, Y).tobytes()
    assert back.components(X, Y).tobytes() == model.components(X, Y).tobytes()
    for j in range(3):
        assert back.project(X, j).tobytes() == model.project(X, j).tobytes()
    assert back.get_params() == model.get_params()
    assert back.concept_names_ == ("a", "b", "c") and back.preprocessing_ == "centre"
    assert back.image_mean_.tobytes() == mean.tobytes()
    assert (back.n_iter_, back.n_rejected_) == (model.n_iter_, model.n_rejected_)
    assert back.metadata_["user"] == {"note": "x"}


def test_file_is_npz_without_pickles_and_documented_metadata(tmp_path, data):
    path = save_model(data[2], tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        meta = json.loads(str(z["metadata"]))
    assert meta["format"] == "slics-model" and meta["format_version"] == FORMAT_VERSION == 1
    assert meta["concept_names"] == ["concept 0", "concept 1", "concept 2"]
    assert meta["preprocessing"] == "none" and meta["n_atoms"] == 2 and meta["params"]["batch_size"] == 50


def _rewrite_metadata(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("metadata")))
    meta.update(changes)
    np.savez(path, metadata=np.array(json.dumps(meta)), **arrays)


def test_other_format_version_is_refused_naming_both(tmp_path, data):
    path = save_model(data[2], tmp_path / "m.npz")
    _rewrite_metadata(path, format_version=2)
    with pytest.raises(ValueError, match=r"format_version 2.*reads format_version 1"):
        load_model(path)


def test_bad_files_are_clear_errors(tmp_path, data):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a slics model file"):
        load_model(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="no 'metadata' entry"):
        load_model(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", metadata=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a slics model file"):
        load_model(tmp_path / "pickled.npz")
    path = save_model(data[2], tmp_path / "m.npz")
    _rewrite_metadata(path, n_features=11)
    with pytest.raises(ValueError, match="damaged"):
        load_model(path)


def test_bad_saves_write_nothing(tmp_path, data):
    model = data[2]
    with pytest.raises(ValueError, match="needs the image_mean"):
        save_model(model, tmp_path / "m.npz", preprocessing="centre")
    with pytest.raises(ValueError, match="2 names but the model has 3"):
        save_model(model, tmp_path / "m.npz", concept_names=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        save_model(model, tmp_path / "m.npz", concept_names=["a", "a", "b"])
    with pytest.raises(ValueError, match="end in .npz"):
        save_model(model, tmp_path / "m.pkl")
    with pytest.raises(TypeError, match="fitted"):
        save_model(SLiCS(n_atoms=2), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_model(model, tmp_path / "m.npz", metadata={"x": object()})
    assert list(tmp_path.iterdir()) == []
