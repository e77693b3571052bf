"""The ``slics`` command line at scale: ``fit``, ``caption`` and ``evaluate`` as a user runs them.

Run ``.venv/bin/python benchmarks/bench_cli.py`` (``--quick`` for a smoke run). Writes
``results/benchmarks/cli.json`` (``--out`` to change).

Problem (issue #16's goal: the three verbs together in under a minute on 2 cores): 100,000
random 512-d embeddings drawn from the SLiCS model (:func:`slics.core.planted.make_planted`,
12 concepts, 4 atoms each, 1 to 3 concepts per row), written as ``.npy`` with a labels CSV;
10,000 random vocabulary words; a split of 80,000 train, 1,000 val, 1,000 query and 18,000
pool rows. Each verb is timed as a subprocess (``python -m slics.cli``), so Python's start,
the imports and the reading and writing of files are included:

* ``fit``: ``--n-atoms 4`` (the other settings the defaults: 10 full-batch iterations,
  ``--preprocess centre``);
* ``caption``: 5 words per concept from the 10,000;
* ``evaluate``: ``UF,S-SVD,S-SLiCS`` (the same dictionary sizes), mAP@20, with ``--model``: S-SLiCS is the
  model that ``fit`` wrote on the training rows, not a second fit.

Timings are not reproducible bytes; the JSON records the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ista import machine_info  # noqa: E402  (one machine record for every benchmark)

GOAL_S = 60.0


def write_inputs(folder: Path, n: int, d: int, n_concepts: int, n_words: int, parts: dict) -> None:
    from slics.core.planted import make_planted

    X, Y, _, _ = make_planted(n_samples=n, n_features=d, n_concepts=n_concepts, n_atoms=4, random_state=0)
    np.save(folder / "embeddings.npy", X)
    pd.DataFrame(Y.astype(int), columns=[f"concept{j}" for j in range(n_concepts)]).to_csv(
        folder / "labels.csv", index=False)
    rng = np.random.default_rng(1)
    np.save(folder / "vocab.npy", rng.standard_normal((n_words, d)))
    (folder / "words.txt").write_text("\n".join(f"word{i}" for i in range(n_words)) + "\n")
    split = rng.permutation(np.repeat(list(parts), list(parts.values())))
    pd.DataFrame({"split": split}).to_csv(folder / "split.csv", index=False)
    train = split == "train"                        # what a user fits on: the training rows alone
    np.save(folder / "train.npy", X[train])
    pd.DataFrame(Y[train].astype(int), columns=[f"concept{j}" for j in range(n_concepts)]).to_csv(
        folder / "train_labels.csv", index=False)


def timed(folder: Path, *argv: str) -> float:
    env = dict(os.environ, TQDM_DISABLE="1")
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "slics.cli", *argv], cwd=folder, env=env, capture_output=True,
                       text=True)
    seconds = time.perf_counter() - t
    if r.returncode:
        raise SystemExit(f"slics {argv[0]} failed:\n{r.stderr}")
    return seconds


def main(argv=None) -> int:
    from slics.utils.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "cli.json"))
    args = parser.parse_args(argv)
    if args.quick:
        n, d, C, V = 5000, 64, 12, 1000
        parts = {"train": 4000, "val": 100, "query": 100, "pool": 800}
    else:
        n, d, C, V = 100_000, 512, 12, 10_000
        parts = {"train": 80_000, "val": 1000, "query": 1000, "pool": 18_000}
    with tempfile.TemporaryDirectory(prefix="slics-bench-cli-") as tmp:
        folder = Path(tmp)
        write_inputs(folder, n, d, C, V, parts)
        seconds = {
            "fit": timed(folder, "fit", "--embeddings", "train.npy", "--labels", "train_labels.csv", "--n-atoms", "4",
                         "--out", "model.npz"),
            "caption": timed(folder, "caption", "--model", "model.npz", "--words", "words.txt", "--vocab-embeddings",
                             "vocab.npy", "--out", "captions.csv"),
            "evaluate": timed(folder, "evaluate", "--embeddings", "embeddings.npy", "--labels", "labels.csv",
                              "--split", "split.csv", "--methods", "UF,S-SVD,S-SLiCS", "--n-atoms", "4",
                              "--model", "model.npz", "--out", "table.csv"),
        }
    total = sum(seconds.values())
    record = {"quick": args.quick,
              "problem": {"rows": n, "dim": d, "concepts": C, "atoms_per_concept": 4, "vocabulary": V,
                          "split": parts, "methods": "UF,S-SVD,S-SLiCS", "k": 20,
                          "timing": "each verb as a subprocess: start, imports, files included"},
              "seconds": seconds, "total_s": total, "goal_s": GOAL_S, "goal_met": bool(total < GOAL_S),
              "cpu_count": os.cpu_count(), "load_average_1min_after": os.getloadavg()[0], "machine": machine_info()}
    write_json(args.out, record, significant=4)
    print({k: v for k, v in record.items() if k != "machine"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
