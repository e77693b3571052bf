import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from slics.core import storage
from slics.core.objectives import lasso_objective
from slics.core.sparse_coding import align_embeddings, ista
from slics.core.zero_shot import zero_shot_accuracy
from slics.data.cifar import CIFAR10_CLASSES
from slics.sections import ista_clip as sec
from slics.utils.reference import report_table


def _codes(seed=0, n=50, m=30, density=0.1):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n, m)).astype(np.float32)
    W[rng.random((n, m)) > density] = 0
    return W


def _world(seed=1, n_classes=3, per_class=6, d=8, n_extra=9):
    """Small inputs: images near their class prompt, concepts = class prompts + random words."""
    rng = np.random.default_rng(seed)
    classes = rng.normal(size=(n_classes, d)) + 2.0          # a shared offset, like a modality cone
    labels = np.repeat(np.arange(n_classes), per_class)
    images = classes[labels] + 0.3 * rng.normal(size=(len(labels), d))
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    concept_emb = unit(np.vstack([classes, rng.normal(size=(n_extra, d)) + 2.0]))
    inputs = sec.SectionInputs(unit(images), labels, unit(classes), concept_emb,
                               [f"c{i}" for i in range(len(concept_emb))], "test")
    return inputs, align_embeddings(inputs.images, inputs.concept_emb)


# --- Table 2: the report's arithmetic and the honest storage ---------------------

def test_report_memory_arithmetic_reproduces_8_21_and_19_53():
    assert round(sec.report_memory_mib(215.27e4), 2) == 8.21          # Table 1's nnz at 0.05 x 10^4 images
    assert sec.report_memory_mib(215.27e4) == pytest.approx(2_152_700 * 4 / 2 ** 20)
    assert round(sec.report_memory_mib(10_000 * 512), 2) == 19.53     # dense image embeddings, MiB
    assert round(10_000 * 512 * 4 / 1e6, 2) != 19.53                  # not decimal MB
    assert round(215.27e4 * 8 / 2 ** 20, 2) != 8.21                   # not CSR with int32 indices


def test_report_memory_table_reproduces_the_report_column():
    table = sec.report_memory_table(10_000, 384, 1003, run_mean_nonzeros=100.0)
    np.testing.assert_array_equal(table["report_MiB_reproduced"].round(2), table["report_MiB"])
    assert table["run_MiB"].tolist() == pytest.approx([10_000 * 384 * 4 / 2 ** 20, 100 * 10_000 * 4 / 2 ** 20])


def test_memory_table_matches_scipy_storage():
    W = _codes()
    n, m = W.shape
    nnz = np.count_nonzero(W)
    table = sec.memory_table([nnz / n], [0.1], "run", n, 8, m)
    row = table.iloc[0]
    csr = sp.csr_array(W)
    assert row["csr_int32_MiB"] * 2 ** 20 == pytest.approx(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes)
    assert row["values_only_MiB"] * 2 ** 20 == pytest.approx(csr.data.nbytes)
    assert row["coo_int32_MiB"] * 2 ** 20 == pytest.approx(nnz * 12)
    assert row["dense_MiB"] * 2 ** 20 == W.nbytes
    assert row["csr_int32_over_dense_embeddings"] == pytest.approx(storage.storage_bytes(nnz, n, m)["csr_int32"] / (n * 8 * 4))


def test_memory_claim_check_finds_table1_count_only_without_indices():
    claim = sec.memory_claim_check(10_000, 1003).set_index("format")["implied_mean_nonzeros"]
    assert claim["values_only"] == pytest.approx(215.27, abs=0.06)     # 8.21 is rounded
    assert claim["csr_int32"] < 110 and claim["coo_int32"] < 75


# --- reconstructions ------------------------------------------------------------

def test_each_reconstruction_against_its_formula():
    inputs, aligned = _world()
    W = _codes(seed=2, n=len(inputs.images), m=len(inputs.concepts), density=0.4).astype(np.float64)
    A_raw = inputs.concept_emb.T
    expected = {
        "A_w_plus_mu_c": (W @ A_raw.T + aligned.concept_mean, inputs.class_emb),
        "Ac_w_plus_mu_c": (W @ aligned.D + aligned.concept_mean, inputs.class_emb),
        "Ac_w_vs_centred_classes": (W @ aligned.D, inputs.class_emb - aligned.concept_mean),
        "Ac_w_plus_mu_img": (W @ aligned.D + aligned.image_mean, inputs.class_emb),
    }
    assert set(expected) == set(sec.RECONSTRUCTIONS)
    summary = sec.code_summary(W, 0.1, aligned, inputs)
    for how, (Z_hat, classes) in expected.items():
        got, got_classes = sec.reconstruct_as(how, W, aligned, inputs.concept_emb, inputs.class_emb)
        np.testing.assert_allclose(got, Z_hat, atol=1e-12)
        cos = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
        np.testing.assert_allclose(cos(got_classes), cos(classes), atol=1e-12)
        accuracy = np.mean(np.argmax(cos(Z_hat) @ cos(classes).T, axis=1) == inputs.labels)
        assert sec.classify_codes(W, aligned, inputs, how) == accuracy
        assert summary[f"accuracy_{how}"] == accuracy
    with pytest.raises(ValueError, match="unknown reconstruction"):
        sec.reconstruct_as("nope", W, aligned, inputs.concept_emb, inputs.class_emb)


def test_literal_reconstruction_identity():
    """A w = A_c diag(||a_j - mu_c||) w + (sum w) mu_c: what the report's formula adds to A_c w."""
    inputs, aligned = _world()
    W = _codes(seed=3, n=len(inputs.images), m=len(inputs.concepts), density=0.5).astype(np.float64)
    norms = np.linalg.norm(inputs.concept_emb - aligned.concept_mean, axis=1)
    literal, _ = sec.reconstruct_as("A_w_plus_mu_c", W, aligned, inputs.concept_emb, inputs.class_emb)
    identity = (W * norms) @ aligned.D + (W.sum(axis=1, keepdims=True) + 1) * aligned.concept_mean
    np.testing.assert_allclose(literal, identity, atol=1e-12)


def test_perfect_codes_classify_like_the_centred_images():
    inputs, aligned = _world(d=8, n_extra=9)
    W = np.linalg.lstsq(aligned.D.T, aligned.Z.T, rcond=None)[0].T   # A_c w = z_c exactly (A_c = D^T is 8 x 12)
    np.testing.assert_allclose(W @ aligned.D, aligned.Z, atol=1e-10)
    assert sec.classify_codes(W, aligned, inputs, "Ac_w_plus_mu_img") == \
        zero_shot_accuracy(aligned.Z + aligned.image_mean, inputs.class_emb, inputs.labels)


# --- exact optimum ----------------------------------------------------------------

def test_exact_codes_match_sklearn_lasso_and_kkt():
    from sklearn.linear_model import Lasso

    inputs, aligned = _world(n_extra=20)
    lam = 0.05
    W = sec.exact_codes(aligned.Z, aligned.D, lam, tol=1e-10)
    d = aligned.D.shape[1]
    for i in range(3):    # the report's objective is 2d times Lasso's at alpha = lam / (2 d)
        ref = Lasso(alpha=lam / (2 * d), fit_intercept=False, tol=1e-12, max_iter=100_000).fit(aligned.D.T, aligned.Z[i])
        np.testing.assert_allclose(W[i], ref.coef_, atol=1e-5)
    G = 2 * (aligned.Z - W @ aligned.D) @ aligned.D.T          # -gradient of the smooth part
    assert np.all(np.abs(G) <= lam + 1e-6)
    on = W != 0
    np.testing.assert_allclose(G[on], lam * np.sign(W[on]), atol=1e-6)
    W_ista = ista(aligned.Z, aligned.D, lam, lr=0.01, n_iter=20)
    assert np.all(lasso_objective(aligned.Z, aligned.D, W, lam) <= lasso_objective(aligned.Z, aligned.D, W_ista, lam) + 1e-12)
    np.testing.assert_allclose(sec.exact_codes(aligned.Z, aligned.D, lam, init=W_ista, tol=1e-10), W, atol=1e-5)


def test_lambda_sweep_table1_and_ablation():
    inputs, aligned = _world(per_class=10, n_extra=20)
    rows = sec.subset_rows(len(inputs.images), 12, seed=0)
    sweep, codes = sec.lambda_sweep(inputs, aligned, [0.05, 5.0], lr=0.01, n_iter=30, exact_rows=rows, keep=(0.05,))
    assert len(sweep) == 6 and set(zip(sweep["solver"], sweep["images"])) == \
        {("ista", "all"), ("ista", "subset"), ("exact", "subset")}
    assert codes[0.05].shape == (len(inputs.images), len(inputs.concepts)) and set(codes) == {0.05}
    ista_all = sweep[(sweep["solver"] == "ista") & (sweep["images"] == "all")].iloc[0]
    assert ista_all["mean_nonzeros"] == np.count_nonzero(codes[0.05]) / len(inputs.images)
    t1 = sec.table1(sweep)
    report = report_table("ista_clip", "table1").set_index("lambda")
    assert t1["report_mean_nonzeros"].tolist() == [report.loc[0.05, "mean_nonzeros"], report.loc[5.0, "mean_nonzeros"]]
    assert t1["report_accuracy"].tolist() == pytest.approx([0.8853, 0.10])
    assert (t1["ista_relative_gap"] >= -1e-9).all()
    assert t1.loc[1, "subset_exact_mean_nonzeros"] == 0.0          # lambda = 5 >= max |2 A^T z| empties every code
    assert list(sec.ablation_table(sweep).columns[3:]) == [f"accuracy_{h}" for h in sec.RECONSTRUCTIONS]
    distance = sec.distance_to_report(sweep).set_index("reconstruction")
    run = sweep[(sweep["solver"] == "ista") & (sweep["images"] == "all")].set_index("lambda")
    how = sec.REPORT_RECONSTRUCTION
    expected = [abs(run.loc[0.05, f"accuracy_{how}"] - 0.8853), abs(run.loc[5.0, f"accuracy_{how}"] - 0.10)]
    assert distance.loc[how, "mean_abs_difference"] == pytest.approx(np.mean(expected))
    assert distance.loc[how, "max_abs_difference"] == pytest.approx(max(expected))
    metrics = sec.section_metrics("demo", "test", 29, 0.9, sweep, {"lambda": 0.05})
    assert set(metrics["sweep"]) == {"ista_all", "ista_subset", "exact_subset"}
    assert set(metrics["sweep"]["ista_all"]) == {"0.05", "5"}


def test_subset_rows_and_subset():
    rows = sec.subset_rows(100, 10, seed=4)
    assert len(set(rows)) == 10 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, sec.subset_rows(100, 10, seed=4))
    assert np.array_equal(sec.subset_rows(5, None, 0), np.arange(5))
    inputs, aligned = _world()
    sub_inputs, sub_aligned = sec.subset(inputs, aligned, [0, 3])
    np.testing.assert_array_equal(sub_aligned.Z, aligned.Z[[0, 3]])
    np.testing.assert_array_equal(sub_aligned.image_mean, aligned.image_mean)
    assert sub_inputs.labels.tolist() == inputs.labels[[0, 3]].tolist()


# --- notebook cells moved into functions -------------------------------------------

def test_modality_gap_against_direct_cosines():
    inputs, aligned = _world()
    gap = sec.modality_gap(inputs, aligned, n_images=5, seed=0).set_index("pair")
    rows = np.random.default_rng(0).choice(len(inputs.images), size=5, replace=False)
    X = inputs.images[rows]
    assert gap.loc["image-image", "raw"] == round((X @ X.T).mean(), 4)          # rounded to its printed precision
    assert gap.loc["image-concept", "raw"] == round((X @ inputs.concept_emb.T).mean(), 4)
    assert gap.loc["image-concept", "centred"] == round((aligned.Z[rows] @ aligned.D.T).mean(), 4) + 0.0
    assert len(sec.modality_gap(inputs, aligned, n_images=10_000, seed=0)) == 2   # capped at the images there are


def test_convergence_experiment():
    inputs, aligned = _world(n_extra=20)
    rows = np.arange(10)
    W_exact = sec.exact_codes(aligned.Z[rows], aligned.D, 0.05)
    histories, summary = sec.convergence_experiment(aligned, rows, 0.05, 0.01, n_iter=20, horizon=60, tol=0.0)
    ista_history, fista_history = histories.values()
    assert len(ista_history) == 61 and summary["ista_objective_at_n_iter"] == ista_history[20]
    assert summary["ista_objective_at_horizon"] == ista_history[-1] <= ista_history[20]
    assert summary["exact_objective"] <= min(ista_history.min(), fista_history.min()) + 1e-9
    assert summary["exact_objective"] == pytest.approx(lasso_objective(aligned.Z[rows], aligned.D, W_exact, 0.05).sum(),
                                                       rel=1e-6)
    with pytest.raises(ValueError, match="horizon"):
        sec.convergence_experiment(aligned, rows, 0.05, 0.01, n_iter=20, horizon=10, tol=0.0)


# --- Table 3 and helpers ------------------------------------------------------------

def test_top_concepts_counts_ties_and_report_columns():
    W = np.array([[1.0, 0, 2], [0.5, 0, 0], [0, 0, -1]])
    table = sec.top_concepts(W, ["b", "cat", "a"], k=3)
    # a and b are both used by 2 images: the tie goes alphabetically
    assert table["concept"].tolist() == ["a", "b", "cat"]
    assert table["nonzero_images"].tolist() == [2, 2, 0]
    assert table["mean_abs_weight"].tolist() == pytest.approx([1.5, 0.75, 0.0])
    assert table["report_concept"].tolist() == ["cat", "animals", "deer"]
    assert table["report_nonzero_count"].tolist() == [6182, 5802, 5767]
    assert table["report_concept_nonzero_images"].iloc[0] == 0 and table["report_concept_nonzero_images"].iloc[1:].isna().all()


def test_example_items_are_distinct_classes_and_seeded():
    labels = np.repeat(np.arange(10), 20)
    a = sec.example_items(labels, 4, seed=3)
    assert len(set(labels[a])) == 4
    assert np.array_equal(a, sec.example_items(labels, 4, seed=3))


def test_top_weights_skips_zeros():
    W = np.array([[0.0, 0.3, -0.5, 0.0]])
    top = sec.top_weights(W, 0, ["a", "b", "c", "d"], k=3)
    assert top["concept"].tolist() == ["c", "b"]


def test_every_written_float_has_a_precision():
    inputs, aligned = _world(per_class=10, n_extra=20)
    sweep, _ = sec.lambda_sweep(inputs, aligned, [0.05], lr=0.01, n_iter=5, exact_rows=np.arange(6))
    for table in (sec.table1(sweep), sec.ablation_table(sweep), sec.memory_table([3.0], [0.1], "x", 10, 8, 29),
                  sec.report_memory_table(10, 8, 29, 3.0), sec.memory_claim_check(10_000, 1003),
                  sec.modality_gap(inputs, aligned, 5, 0).rename(columns={"raw": "cosine", "centred": "cosine"})):
        floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
        assert not [c for c in floats if c not in sec.DECIMALS], floats
    assert sec.rounded({"lambda": 0.123456, "fista_iterations": 3}) == {"lambda": 0.12, "fista_iterations": 3}
    assert len(CIFAR10_CLASSES) == 10


def test_convergence_figure_draws_rounding_level_gaps_at_a_fixed_floor():
    """Gaps under GAP_FLOOR of the optimum are rounding (they differ between BLAS builds): they are
    drawn at the floor, and the axis's bottom does not follow them."""
    import matplotlib.pyplot as plt

    from slics.sections import ista_clip as sec

    optimum = 303.15
    floor = sec.GAP_FLOOR * optimum
    limits = []
    for noise in (1e-13, 7e-13):                       # two machines' last iterates
        history = optimum + np.concatenate([np.logspace(2, -9, 50), [noise, noise]])
        fig = sec.figure_convergence({"FISTA": history}, optimum)
        ax = fig.axes[0]
        limits.append(ax.get_ylim())
        assert ax.lines[0].get_ydata().min() == floor
        plt.close(fig)
    assert limits[0] == limits[1] and limits[0][0] == floor / 2
