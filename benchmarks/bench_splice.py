"""SpLiCE decomposition: the package's solver against SpLiCE's own approach, at matched objective.

Run ``.venv/bin/python benchmarks/bench_splice.py`` (``--quick`` for a smoke run). Writes
``results/benchmarks/splice.json`` (``--out`` to change).

Problem: the demo's real LAION-10k vocabulary embeddings (``data/embeddings/demo/cifar10/
laion10k_vocab.npy``, centred and renormalised as SpLiCE does) as the dictionary, and
centred MIRFlickr25K demo image embeddings as the signals, with the ``slics_clip.splice.lam``
of ``params.yaml``: ``min_{w >= 0} ||z - w V||^2 + lam ||w||_1``.

* ``package``: :func:`slics.core.splice.nonneg_lasso` (the exact batched solver of
  :mod:`slics.core.lasso`), on ``n_images`` images at once, including its Gram matrix of the
  vocabulary; numba's compilation is done by a warm-up call first and not timed.
* ``reference``: a per-image loop of scikit-learn ``Lasso(positive=True)`` on the whole
  vocabulary (SpLiCE's own approach), with a tight tolerance, timed on the first
  ``n_reference`` images and extrapolated linearly to ``n_images`` (said in the JSON).

The reference's objective is the target: on the reference images the JSON records both mean
objectives and their largest relative difference, and the time ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv=None) -> int:
    from sklearn.linear_model import Lasso

    from bench_slics import machine_info
    from slics.core.objectives import lasso_objective
    from slics.core.splice import SpLiCE, nonneg_lasso
    from slics.embedding.retrieval_set import load_set
    from slics.utils.config import load_params
    from slics.utils.io import write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "results" / "benchmarks" / "splice.json"))
    args = parser.parse_args(argv)
    params = load_params()
    lam = float(params["slics_clip"]["splice"]["lam"])
    rs = load_set("mirflickr25k", params)
    sp = SpLiCE(lam=lam).fit(rs.vocab)
    n, n_ref = (50, 5) if args.quick else (2000, 40)
    Z = rs.X[rs.rows("pool")[:n]].astype(np.float64)
    V = sp.vocab_
    nonneg_lasso(Z[:2], V, lam)                           # numba compilation (cached on disk)

    t = time.perf_counter()
    W_all = nonneg_lasso(Z, V, lam)
    t_pkg = time.perf_counter() - t
    W, Z = W_all[:n_ref], Z[:n_ref]

    d = V.shape[1]
    t = time.perf_counter()
    W_ref = np.zeros_like(W)
    for i in range(n_ref):
        model = Lasso(alpha=lam / (2 * d), fit_intercept=False, positive=True, tol=1e-8, max_iter=20_000)
        model.fit(V.T, Z[i])
        W_ref[i] = model.coef_
    t_ref = (time.perf_counter() - t) * n / n_ref

    f_pkg, f_ref = lasso_objective(Z, V, W, lam), lasso_objective(Z, V, W_ref, lam)
    record = {
        "problem": {"images": n, "vocabulary": int(V.shape[0]), "dim": int(d), "lam": lam,
                    "objective": "||z - w V||^2 + lam ||w||_1, w >= 0",
                    "reference_images_timed": n_ref,
                    "reference_time": f"measured on {n_ref} images, extrapolated linearly to {n}"},
        "package_s": t_pkg, "sklearn_lasso_loop_s": t_ref, "speedup": t_ref / t_pkg,
        "mean_objective_package": float(f_pkg.mean()), "mean_objective_sklearn": float(f_ref.mean()),
        "max_relative_objective_difference": float(np.max((f_pkg - f_ref) / f_ref)),
        "mean_nonzeros_package": float(np.count_nonzero(W, axis=1).mean()),
        "mean_nonzeros_sklearn": float(np.count_nonzero(W_ref > 0, axis=1).mean()),
        "machine": machine_info(),
    }
    write_json(args.out, record, significant=4)
    print({k: v for k, v in record.items() if k != "machine"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
