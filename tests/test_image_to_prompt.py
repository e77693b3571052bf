"""Section 3.7 driver: demo spaces, splits, map comparison and prompts."""

import numpy as np
import pytest

from slics.sections import image_generation as gen
from slics.sections import image_to_prompt as sec


def unit_rows(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_demo_target_space_is_a_seeded_rotation_plus_noise():
    X = unit_rows(np.random.default_rng(0), 300, 16)
    Y0, R0 = sec.demo_target_space(X, 0.0, seed=7)
    np.testing.assert_allclose(Y0, X @ R0, atol=1e-12)          # no noise: exactly rotated (norms kept)
    Y, R = sec.demo_target_space(X, 0.3, seed=7)
    np.testing.assert_array_equal(R, R0)
    np.testing.assert_allclose(np.linalg.norm(Y, axis=1), 1.0)
    # noise of norm about 0.3, nearly orthogonal to the unit row: cosine about 1 / sqrt(1 + 0.09)
    cos = np.sum(Y * (X @ R0), axis=1)
    assert abs(cos.mean() - 1 / np.sqrt(1.09)) < 0.01


def test_split_rows_disjoint_seeded_and_test_rows_fixed():
    tr, te = sec.split_rows(100, 30, 20, seed=1)
    assert len(tr) == 30 and len(te) == 20 and not set(tr) & set(te)
    tr2, te2 = sec.split_rows(100, 50, 20, seed=1)
    np.testing.assert_array_equal(te, te2)
    with pytest.raises(ValueError):
        sec.split_rows(10, 8, 5, seed=0)


def test_compare_maps_procrustes_recovers_the_rotation_and_identity_needs_equal_widths():
    X = unit_rows(np.random.default_rng(2), 600, 12)
    Y, R0 = sec.demo_target_space(X, 0.05, seed=3)
    tr, te = sec.split_rows(600, 400, 200, seed=0)
    t = sec.compare_maps(X, Y, tr, te, R0).set_index("method")
    assert t.loc["Procrustes", "rotation_error"] < 0.05
    assert t.loc["identity", "rotation_error"] > 0.5
    assert t.loc["Procrustes", "mse"] < t.loc["identity", "mse"]
    # different widths: identity not applicable
    Z = np.hstack([Y, np.zeros((600, 4))])
    t2 = sec.compare_maps(X, Z, tr, te).set_index("method")
    assert t2.loc["identity"].drop("mse").isna().all() and np.isnan(t2.loc["identity", "mse"])
    assert t2.loc["Procrustes", "mse"] < 0.05


def test_concept_prompts_are_aligned_and_rescaled():
    rng = np.random.default_rng(4)
    R = np.linalg.qr(rng.standard_normal((8, 5)))[0].T          # (5, 8) orthonormal rows
    Z = rng.standard_normal((3, 5))
    Z[1] = 0
    P = gen.concept_prompts(Z, R, target_norm=2.5)
    np.testing.assert_allclose(np.linalg.norm(P[[0, 2]], axis=1), 2.5)
    assert np.all(P[1] == 0)
    np.testing.assert_allclose(P[0] / 2.5, Z[0] @ R / np.linalg.norm(Z[0]), atol=1e-12)


def test_full_profile_fails_fast_without_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="Flickr30k"):
        sec.check_full_inputs(tmp_path / "missing")


def test_centred_alignment_maps_components_and_prompts_have_the_target_norm():
    rng = np.random.default_rng(5)
    R0 = np.linalg.qr(rng.standard_normal((7, 7)))[0][:5]          # (5, 7) orthonormal rows
    X = rng.standard_normal((300, 5)) + 2.0
    Y = (X - X.mean(axis=0)) @ R0 + 3.0
    al = gen.centred_alignment(X, Y, np.arange(200))
    np.testing.assert_allclose(al["R"], R0, atol=1e-8)
    np.testing.assert_allclose(al["target_mean"], Y[:200].mean(axis=0))
    P = gen.generation_prompts(X[:2] - al["source_mean"], al, [4.0, 9.0])
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), [4.0, 9.0])
    np.testing.assert_allclose(P[0] / 4.0, Y[0] / np.linalg.norm(Y[0]), atol=1e-8)


def test_generation_refuses_outside_the_full_profile():
    from slics.utils.config import load_params

    params = load_params()
    with pytest.raises(RuntimeError, match="profile: full"):
        gen.generate(params)
    with pytest.raises(RuntimeError, match="profile: full"):        # the CLI of section 3.7 says the same
        sec.main(["generate"])
    params.update(profile="full")
    params["image_to_prompt"]["generation"]["enabled"] = True
    assert gen.check_generation(params)["method"] == "ding2023"    # embed.backbone need not be the source
    params["slics_clip"]["backbones"]["full"] = ["clip-rn50"]     # no K chosen for the source backbone
    with pytest.raises(ValueError, match="add clip-vit-b32 to it"):
        gen.check_generation(params)


def test_generation_uses_the_k_section_03_chose(tmp_path):
    import json

    path = tmp_path / "slics_clip.json"
    path.write_text(json.dumps({"coco/clip-vit-b32": {"K": 8, "UF": {}}, "mirflickr25k/clip-vit-b32": {"K": 4}}))
    assert gen.chosen_k("coco", "clip-vit-b32", path) == 8
    with pytest.raises(KeyError, match="coco/clip-rn50"):
        gen.chosen_k("coco", "clip-rn50", path)
    with pytest.raises(FileNotFoundError, match="03_slics_clip"):
        gen.chosen_k("coco", "clip-vit-b32", tmp_path / "missing.json")


def test_training_sizes_below_the_dimension_are_refused():
    X = unit_rows(np.random.default_rng(6), 200, 20)
    Y, R0 = sec.demo_target_space(X, 0.1, seed=0)
    with pytest.raises(ValueError, match="not unique"):
        sec.train_size_sweep(X, Y, [10, 50], seed=0, n_test=50, R_true=R0)
    sw = sec.train_size_sweep(X, Y, [20, 100], seed=0, n_test=50, R_true=R0)
    assert list(sw["n_train"]) == [20, 20, 100, 100]
    # more rows, closer to the planted rotation
    pr = sw[sw["method"] == "Procrustes"].set_index("n_train")
    assert pr.loc[100, "rotation_error"] < pr.loc[20, "rotation_error"]
