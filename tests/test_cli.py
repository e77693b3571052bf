"""The ``slics`` command line: every verb with good input, and with bad input that gives exit
status 2, a message naming the problem, and no output file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slics.captions import word_captions
from slics.cli import main
from slics.core.planted import make_planted
from slics.core.normalise import normalise_rows
from slics.model_io import load_model

NAMES = ["cat", "dog", "car", "tree"]


def preprocess(X, mean):
    """The paper's centring, written out: unit rows, minus the mean, unit rows."""
    return normalise_rows(normalise_rows(X) - mean)

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A planted data set as a user would bring it: embeddings, labels, words, split."""
    d = tmp_path_factory.mktemp("inputs")
    X, Y, D, _ = make_planted(n_samples=400, n_features=24, n_concepts=4, n_atoms=2, random_state=0)
    rng = np.random.default_rng(1)
    np.save(d / "emb.npy", X)
    np.savez(d / "emb.npz", images=X, other=X[:, :3])
    np.save(d / "q.npy", X[:5])
    pd.DataFrame(Y.astype(int), columns=NAMES).to_csv(d / "labels.csv", index=False)
    vocab = np.vstack([D + 0.01 * rng.standard_normal(D.shape), rng.standard_normal((30, 24))])
    np.save(d / "vocab.npy", vocab)
    (d / "words.txt").write_text("\n".join([f"{NAMES[i // 2]}{i % 2}" for i in range(8)]
                                           + [f"noise{i}" for i in range(30)]) + "\n")
    (d / "concepts.txt").write_text("\n".join(NAMES) + "\n")
    np.save(d / "concept_emb.npy", D.reshape(4, 2, 24).mean(axis=1))
    split = np.array(["train"] * 200 + ["val"] * 40 + ["query"] * 40 + ["pool"] * 120)
    pd.DataFrame({"split": split}).to_csv(d / "split.csv", index=False)
    bad = X.copy()
    bad[7, 3] = np.nan
    np.save(d / "nan.npy", bad)
    np.save(d / "narrow.npy", X[:, :20])
    pd.DataFrame(Y[:-1].astype(int), columns=NAMES).to_csv(d / "short_labels.csv", index=False)
    pd.DataFrame(np.c_[Y.astype(int), np.zeros(len(Y), dtype=int)], columns=NAMES + ["bird"]).to_csv(
        d / "unused_concept.csv", index=False)
    two = Y.astype(int)
    two[5, 2] = 2
    pd.DataFrame(two, columns=NAMES).to_csv(d / "two_labels.csv", index=False)
    np.save(d / "objects.npy", np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    assert main(["fit", "--embeddings", str(d / "emb.npy"), "--labels", str(d / "labels.csv"), "--n-atoms", "2",
                 "--n-iter", "3", "--out", str(d / "model.npz")]) == 0
    return d, X, Y


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, out_dir: Path, *argv, match: str):
    """The command exits 2 with ``match`` in its one-line error and leaves ``out_dir`` empty."""
    out_dir.mkdir(exist_ok=True)
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert err.startswith(f"slics {argv[0]}: error: ") and "Traceback" not in err
    assert match in err, err
    assert list(out_dir.iterdir()) == []
    return err


# --------------------------------------------------------------------------- fit
def test_fit_supervised_round_trips_and_centres(files, tmp_path, capsys):
    d, X, Y = files
    code, _, err = run(capsys, "fit", "--embeddings", d / "emb.npz:images", "--labels", d / "labels.csv",
                       "--n-atoms", 2, "--n-iter", 3, "--out", tmp_path / "m.npz")
    assert code == 0 and "4 concepts x 2 atoms on 400 rows" in err
    model = load_model(tmp_path / "m.npz")
    assert model.concept_names_ == tuple(NAMES) and model.preprocessing_ == "centre"
    np.testing.assert_allclose(model.image_mean_, normalise_rows(X).mean(axis=0), rtol=0, atol=1e-15)
    from slics.core.dictionary import SLiCS
    ref = SLiCS(n_atoms=2, n_iter=3, random_state=0).fit(preprocess(X, model.image_mean_), Y)
    assert model.dictionary_.tobytes() == ref.dictionary_.tobytes()
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert json.loads(str(z["metadata"]))["user"]["labels"] == "labels.csv"


def test_fit_unsupervised_with_concept_embeddings(files, tmp_path, capsys):
    d, X, _ = files
    code, _, _ = run(capsys, "fit", "--embeddings", d / "emb.npy", "--unsupervised", "--concepts",
                     d / "concepts.txt", "--concept-embeddings", d / "concept_emb.npy", "--n-atoms", 2,
                     "--preprocess", "unit", "--out", tmp_path / "u.npz")
    assert code == 0
    model = load_model(tmp_path / "u.npz")
    assert model.concept_names_ == tuple(NAMES) and model.preprocessing_ == "unit" and model.image_mean_ is None
    assert model.metadata_["user"]["n_pseudo_labels"] == 2


@pytest.mark.parametrize("args, match", [
    (["--embeddings", "{d}/emb.npy", "--labels", "{d}/short_labels.csv"], "has 399 rows but the embeddings have 400"),
    (["--embeddings", "{d}/nan.npy", "--labels", "{d}/labels.csv"], "1 NaN or infinite value"),
    (["--embeddings", "{d}/objects.npy", "--labels", "{d}/labels.csv"], "pickle"),
    (["--embeddings", "{d}/emb.npz", "--labels", "{d}/labels.csv"], "holds the arrays"),
    (["--embeddings", "{d}/missing.npy", "--labels", "{d}/labels.csv"], "does not exist"),
    (["--embeddings", "{d}/emb.npy", "--labels", "{d}/unused_concept.csv"], "no embedding has the concept(s) ['bird']"),
    (["--embeddings", "{d}/emb.npy", "--unsupervised"], "--unsupervised needs --concepts"),
    (["--embeddings", "{d}/narrow.npy", "--unsupervised", "--concepts", "{d}/concepts.txt",
      "--concept-embeddings", "{d}/concept_emb.npy"], "has 24 columns but 20 are expected"),
    (["--embeddings", "{d}/emb.npy", "--labels", "{d}/labels.csv", "--preprocess", "tokens"], "--n-tokens"),
    (["--embeddings", "{d}/emb.npy", "--labels", "{d}/two_labels.csv"], "row 7, column 'car' holds '2'"),
])
def test_fit_bad_input(files, tmp_path, capsys, args, match):
    d = files[0]
    out = tmp_path / "out"
    fails(capsys, out, "fit", *[a.format(d=d) for a in args], "--out", out / "m.npz", match=match)


def test_fit_bad_out_suffix_before_work(files, tmp_path, capsys):
    d = files[0]
    fails(capsys, tmp_path / "out", "fit", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv",
          "--out", tmp_path / "out" / "m.pkl", match="use one of .npz")


# --------------------------------------------------------------------------- caption
def test_caption_writes_words_per_concept(files, tmp_path, capsys):
    d = files[0]
    code, _, _ = run(capsys, "caption", "--model", d / "model.npz", "--words", d / "words.txt",
                     "--vocab-embeddings", d / "vocab.npy", "--n-words", 3, "--out", tmp_path / "c.csv")
    assert code == 0
    table = pd.read_csv(tmp_path / "c.csv")
    words = (d / "words.txt").read_text().split()
    expected = word_captions(load_model(d / "model.npz"), np.load(d / "vocab.npy"), words, n_words=3)
    assert table["concept"].tolist() == NAMES
    assert table["words"].tolist() == [", ".join(w) for w in expected.values()]
    code, out, _ = run(capsys, "caption", "--model", d / "model.npz", "--words", d / "words.txt",
                       "--vocab-embeddings", d / "vocab.npy")
    assert code == 0 and out.startswith("| concept")


def test_caption_puts_a_concepts_own_atoms_first(files, tmp_path, capsys):
    """Words embedded exactly on a concept's atoms have zero error: they caption it (no centring)."""
    d = files[0]
    model = load_model(d / "model.npz")
    rng = np.random.default_rng(5)
    np.save(tmp_path / "v.npy", np.vstack([rng.standard_normal((20, 24)), model.dictionary_]))
    (tmp_path / "w.txt").write_text("\n".join([f"noise{i}" for i in range(20)]
                                              + [f"{NAMES[i // 2]}{i % 2}" for i in range(8)]))
    code, _, _ = run(capsys, "caption", "--model", d / "model.npz", "--words", tmp_path / "w.txt", "--no-centre",
                     "--vocab-embeddings", tmp_path / "v.npy", "--n-words", 2, "--out", tmp_path / "c.md")
    assert code == 0
    lines = (tmp_path / "c.md").read_text().splitlines()[2:]
    assert len(lines) == 4
    for name, line in zip(NAMES, lines):
        assert sorted(line.split("|")[2].strip().split(", ")) == [f"{name}0", f"{name}1"]


def _other_version(d: Path, tmp_path: Path) -> Path:
    with np.load(d / "model.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("metadata")))
    meta["format_version"] = 2
    path = tmp_path / "v2.npz"
    np.savez(path, metadata=np.array(json.dumps(meta)), **arrays)
    return path


def test_caption_bad_input(files, tmp_path, capsys):
    d = files[0]
    out = tmp_path / "out"
    common = ["--words", d / "words.txt", "--out", out / "c.md"]
    fails(capsys, out, "caption", "--model", d / "model.npz", "--vocab-embeddings", d / "narrow.npy", *common,
          match="20 columns but 24 are expected")
    np.save(tmp_path / "v37.npy", np.load(d / "vocab.npy")[:37])
    fails(capsys, out, "caption", "--model", d / "model.npz", "--vocab-embeddings", tmp_path / "v37.npy", *common,
          match="38 words but the vocabulary embeddings have 37 rows")
    fails(capsys, out, "caption", "--model", _other_version(d, tmp_path), "--vocab-embeddings", d / "vocab.npy",
          *common, match="format_version 2")
    fails(capsys, out, "caption", "--model", d / "emb.npy", "--vocab-embeddings", d / "vocab.npy", *common,
          match="not a slics model file")


# --------------------------------------------------------------------------- components
def test_components_match_the_model(files, tmp_path, capsys):
    d, X, Y = files
    # label columns in another order are matched by name
    pd.DataFrame(Y[:, ::-1].astype(int), columns=NAMES[::-1]).to_csv(tmp_path / "rev.csv", index=False)
    code, _, _ = run(capsys, "components", "--model", d / "model.npz", "--embeddings", d / "emb.npy",
                     "--labels", tmp_path / "rev.csv", "--out", tmp_path / "c.npz")
    assert code == 0
    model = load_model(d / "model.npz")
    expected = model.components(preprocess(X, model.image_mean_), Y)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert z["components"].tobytes() == expected.tobytes()
        assert z["concept_names"].tolist() == NAMES
    assert run(capsys, "components", "--model", d / "model.npz", "--embeddings", d / "emb.npy", "--labels",
               d / "labels.csv", "--out", tmp_path / "c.npy")[0] == 0
    assert np.load(tmp_path / "c.npy", allow_pickle=False).tobytes() == expected.tobytes()


def test_components_bad_input(files, tmp_path, capsys):
    d, _, Y = files
    out = tmp_path / "out"
    pd.DataFrame(Y.astype(int), columns=["cat", "dog", "car", "bird"]).to_csv(tmp_path / "bird.csv", index=False)
    fails(capsys, out, "components", "--model", d / "model.npz", "--embeddings", d / "emb.npy", "--labels",
          tmp_path / "bird.csv", "--out", out / "c.npy", match="unknown concept name(s) ['bird']")
    fails(capsys, out, "components", "--model", d / "model.npz", "--embeddings", d / "narrow.npy", "--labels",
          d / "labels.csv", "--out", out / "c.npy", match="20 columns but 24 are expected")
    fails(capsys, out, "components", "--model", d / "model.npz", "--embeddings", d / "emb.npy", "--labels",
          d / "short_labels.csv", "--out", out / "c.npy", match="has 399 rows but the embeddings have 400")
    fails(capsys, out, "components", "--model", _other_version(d, tmp_path), "--embeddings", d / "emb.npy",
          "--labels", d / "labels.csv", "--out", out / "c.npy", match="format_version 2")


# --------------------------------------------------------------------------- retrieve
def test_retrieve_matches_brute_force(files, tmp_path, capsys):
    d, X, _ = files
    code, _, _ = run(capsys, "retrieve", "--model", d / "model.npz", "--pool", d / "emb.npy", "--queries",
                     d / "q.npy", "--concept", "dog", "--concept", "tree", "-k", 7, "--out", tmp_path / "r.csv")
    assert code == 0
    got = pd.read_csv(tmp_path / "r.csv")
    assert len(got) == 2 * 5 * 7
    model = load_model(d / "model.npz")
    P = normalise_rows(preprocess(X, model.image_mean_))
    for j, name in ((1, "dog"), (3, "tree")):
        F = normalise_rows(model.project(preprocess(X[:5], model.image_mean_), j))
        S = F @ P.T
        for q in range(5):
            rows = got[(got["concept"] == name) & (got["query"] == q)].sort_values("rank")
            order = np.lexsort((np.arange(len(P)), -S[q]))[:7]
            assert rows["index"].tolist() == order.tolist()
            np.testing.assert_allclose(rows["score"], S[q, order], atol=1e-6)


def test_retrieve_bad_input(files, tmp_path, capsys):
    d = files[0]
    out = tmp_path / "out"
    base = ["--model", d / "model.npz", "--out", out / "r.csv"]
    err = fails(capsys, out, "retrieve", *base, "--pool", d / "emb.npy", "--queries", d / "q.npy",
                "--concept", "bird", match="unknown concept name(s) ['bird']")
    assert "cat, dog, car, tree" in err
    fails(capsys, out, "retrieve", *base, "--pool", d / "emb.npy", "--queries", d / "narrow.npy",
          "--concept", "dog", match="20 columns but 24 are expected")
    fails(capsys, out, "retrieve", *base, "--pool", d / "nan.npy", "--queries", d / "q.npy",
          "--concept", "dog", match="NaN")
    fails(capsys, out, "retrieve", *base, "--pool", d / "q.npy", "--queries", d / "q.npy",
          "--concept", "dog", "-k", 6, match="between 1 and the pool size (5)")
    fails(capsys, out, "retrieve", "--model", _other_version(d, tmp_path), "--out", out / "r.csv", "--pool",
          d / "emb.npy", "--queries", d / "q.npy", "--concept", "dog", match="format_version 2")


# --------------------------------------------------------------------------- evaluate
def test_evaluate_table(files, tmp_path, capsys):
    d = files[0]
    code, _, err = run(capsys, "evaluate", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv",
                       "--split", d / "split.csv", "--methods", "UF,S-SVD,S-SLiCS,U-SLiCS,SpLiCE,F-SpLiCE",
                       "--concept-embeddings", d / "concept_emb.npy", "--vocab-embeddings", d / "vocab.npy",
                       "--n-atoms", 2, "--n-iter", 2, "--out", tmp_path / "t.csv")
    assert code == 0, err
    t = pd.read_csv(tmp_path / "t.csv")
    assert t["method"].tolist() == ["UF", "S-SVD", "S-SLiCS", "U-SLiCS", "SpLiCE", "F-SpLiCE"]
    assert t["map@20_general"].between(0, 1).all()
    # on planted concepts the filtered methods beat unfiltered retrieval
    assert t.set_index("method").loc["S-SLiCS", "map@20_general"] > t.set_index("method").loc["UF", "map@20_general"]


def test_evaluate_reuses_a_model_fitted_on_the_train_rows(files, tmp_path, capsys):
    d = files[0]
    split = pd.read_csv(d / "split.csv")["split"].to_numpy()
    X, labels = np.load(d / "emb.npy"), pd.read_csv(d / "labels.csv")
    np.save(tmp_path / "train.npy", X[split == "train"])
    labels[split == "train"].to_csv(tmp_path / "train_labels.csv", index=False)
    code, _, err = run(capsys, "fit", "--embeddings", tmp_path / "train.npy", "--labels", tmp_path / "train_labels.csv",
                       "--n-atoms", 2, "--n-iter", 2, "--out", tmp_path / "m.npz")
    assert code == 0, err
    common = ["--embeddings", d / "emb.npy", "--labels", d / "labels.csv", "--split", d / "split.csv",
              "--methods", "UF,S-SLiCS", "--n-atoms", 2, "--n-iter", 2]
    assert run(capsys, "evaluate", *common, "--out", tmp_path / "refit.csv")[0] == 0
    assert run(capsys, "evaluate", *common, "--model", tmp_path / "m.npz", "--out", tmp_path / "reused.csv")[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "refit.csv"), pd.read_csv(tmp_path / "reused.csv"))
    out = tmp_path / "out"
    fails(capsys, out, "evaluate", *common, "--model", d / "model.npz", "--out", out / "t.csv",
          match="not fitted on this split's train rows")          # fitted on every row
    fails(capsys, out, "evaluate", *common[:6], "--methods", "UF", "--model", tmp_path / "m.npz",
          "--out", out / "t.csv", match="--model stands for S-SLiCS")
    fails(capsys, out, "evaluate", *common, "--preprocess", "unit", "--model", tmp_path / "m.npz",
          "--out", out / "t.csv", match="fitted with --preprocess centre")


def test_evaluate_bad_input(files, tmp_path, capsys):
    d = files[0]
    out = tmp_path / "out"
    base = ["--out", out / "t.md"]
    ok = ["--embeddings", d / "emb.npy", "--labels", d / "labels.csv", "--split", d / "split.csv"]
    fails(capsys, out, "evaluate", *ok, *base, "--methods", "UF,S-PCA", match="unknown method(s) ['S-PCA']")
    fails(capsys, out, "evaluate", *ok, *base, "--methods", "SpLiCE", "--concept-embeddings",
          d / "concept_emb.npy", match="need a word vocabulary")
    fails(capsys, out, "evaluate", *ok, *base, "--methods", "U-SLiCS", match="need concept-name embeddings")
    fails(capsys, out, "evaluate", "--embeddings", d / "nan.npy", "--labels", d / "labels.csv", "--split",
          d / "split.csv", *base, match="NaN")
    fails(capsys, out, "evaluate", "--embeddings", d / "emb.npy", "--labels", d / "short_labels.csv", "--split",
          d / "split.csv", *base, match="399 rows but the embeddings have 400")
    (tmp_path / "split.txt").write_text("train\n" * 300 + "test\n" * 100)
    fails(capsys, out, "evaluate", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv", "--split",
          tmp_path / "split.txt", *base, match="unknown name(s) ['test']")
    (tmp_path / "short.txt").write_text("train\n" * 399)
    fails(capsys, out, "evaluate", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv", "--split",
          tmp_path / "short.txt", *base, match="399 entries but the embeddings have 400")
    fails(capsys, out, "evaluate", *ok, *base, "--methods", "U-SLiCS", "--concept-embeddings", d / "narrow.npy",
          match="20 columns but 24 are expected")
    pd.DataFrame({"bird/robin": np.zeros(400, dtype=int)}).to_csv(tmp_path / "sub.csv", index=False)
    fails(capsys, out, "evaluate", *ok, *base, "--sub-labels", tmp_path / "sub.csv",
          match="'<concept>/<sub-label>'")


# --------------------------------------------------------------------------- the process
def test_process_exit_status_and_no_traceback(files, tmp_path):
    d = files[0]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    r = subprocess.run([sys.executable, "-m", "slics.cli", "retrieve", "--model", str(d / "model.npz"), "--pool",
                        str(d / "emb.npy"), "--queries", str(d / "q.npy"), "--concept", "bird"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "unknown concept name" in r.stderr
    r = subprocess.run([sys.executable, "-m", "slics.cli", "retrieve", "--debug", "--model", str(d / "model.npz"),
                        "--pool", str(d / "emb.npy"), "--queries", str(d / "q.npy"), "--concept", "bird"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "Traceback" in r.stderr
    r = subprocess.run([sys.executable, "-m", "slics.cli", "fit", "--embeddings", "x.npy"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2 and "slics fit: error: the following arguments are required: --out" in r.stderr


# --------------------------------------------------------------------------- other input kinds
def test_parquet_embeddings(files, tmp_path, capsys):
    d, X, _ = files
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "e.parquet").write_bytes(b"PAR1")
        fails(capsys, tmp_path / "out", "fit", "--embeddings", tmp_path / "e.parquet", "--labels", d / "labels.csv",
              "--out", tmp_path / "out" / "m.npz", match="pip install pyarrow")
        return
    pd.DataFrame(X, columns=[f"d{i}" for i in range(X.shape[1])]).to_parquet(tmp_path / "wide.parquet")
    pd.DataFrame({"embedding": list(X)}).to_parquet(tmp_path / "vectors.parquet")
    for name in ("wide.parquet", "vectors.parquet"):
        assert run(capsys, "fit", "--embeddings", tmp_path / name, "--labels", d / "labels.csv", "--n-atoms", 2,
                   "--n-iter", 3, "--out", tmp_path / f"{name}.npz")[0] == 0
        model = load_model(tmp_path / f"{name}.npz")
        assert model.dictionary_.tobytes() == load_model(d / "model.npz").dictionary_.tobytes()


@pytest.mark.slow
def test_unsupervised_with_the_demo_text_tower(files, tmp_path, capsys):
    """``--backbone demo`` embeds the concept names with MiniLM (384-d): it fits 384-d embeddings only."""
    d, _, Y = files
    rng = np.random.default_rng(2)
    np.save(tmp_path / "e384.npy", rng.standard_normal((400, 384)))
    assert run(capsys, "fit", "--embeddings", tmp_path / "e384.npy", "--unsupervised", "--concepts",
               d / "concepts.txt", "--backbone", "demo", "--n-atoms", 2, "--out", tmp_path / "m.npz")[0] == 0
    assert load_model(tmp_path / "m.npz").concept_names_ == tuple(NAMES)
    fails(capsys, tmp_path / "out", "fit", "--embeddings", d / "emb.npy", "--unsupervised", "--concepts",
          d / "concepts.txt", "--backbone", "demo", "--out", tmp_path / "out" / "m.npz",
          match="gives 384-d embeddings but the image embeddings are 24-d")


def test_tokens_preprocessing_is_stored_and_reapplied(files, tmp_path, capsys):
    from slics.core.pq import normalise_tokens

    d, X, Y = files
    assert run(capsys, "fit", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv", "--n-atoms", 2,
               "--preprocess", "tokens", "--n-tokens", 4, "--out", tmp_path / "t.npz")[0] == 0
    model = load_model(tmp_path / "t.npz")
    assert (model.preprocessing_, model.n_tokens_) == ("tokens", 4)
    assert run(capsys, "components", "--model", tmp_path / "t.npz", "--embeddings", d / "emb.npy", "--labels",
               d / "labels.csv", "--out", tmp_path / "c.npy")[0] == 0
    expected = model.components(normalise_tokens(X, 4), Y)
    assert np.load(tmp_path / "c.npy", allow_pickle=False).tobytes() == expected.tobytes()
    fails(capsys, tmp_path / "out", "fit", "--embeddings", d / "emb.npy", "--labels", d / "labels.csv",
          "--preprocess", "tokens", "--n-tokens", 5, "--out", tmp_path / "out" / "m.npz",
          match="--n-tokens 5 must divide the embedding dimension 24")
