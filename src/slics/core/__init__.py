"""The dataset-independent library: estimators, sparse solvers, retrieval and scoring.

Nothing here knows about a dataset, a backbone or a file: every function takes arrays
(samples and atoms as rows: a dictionary ``D`` is ``(n_atoms, d)`` and codes ``W`` satisfy
``X ≈ W @ D``) and returns arrays. The modules (``__all__``; the package does not import them
until they are used):

- ``dictionary``: :class:`~slics.core.dictionary.SLiCS`, the supervised concept dictionary.
- ``splice``: :class:`~slics.core.splice.SpLiCE`, the vocabulary baseline.
- ``pq``: :class:`~slics.core.pq.TokenQuantiser`, :class:`~slics.core.pq.QuantisedPool`.
- ``alignment``: :class:`~slics.core.alignment.ProcrustesAlignment`,
  :class:`~slics.core.alignment.LeastSquaresAlignment`.
- ``lasso``: exact ``lasso``, ``lasso_path``, ``duality_gap``.
- ``sparse_coding``: the report's ``ista``, ``fista``, ``align_embeddings``, ``reconstruct``.
- ``nnls``: ``nnls_batch``; ``omp``: ``nn_omp``, ``group_nn_omp``.
- ``zero_shot``: ``zero_shot_accuracy``, ``zero_shot_pseudo_labels``, ``cosine_similarity``.
- ``retrieval``: ``top_k``, ``filtered_retrieval``, ``mean_average_precision``.
- ``objectives``: ``lasso_objective``, the one objective of every lasso-type solver.
- ``normalise``: ``normalise_rows``, the one row normaliser.
- ``planted``: synthetic problems with a planted dictionary; ``storage``: sparse-storage bytes.

Solvers kept only as references for the tests and benchmarks live in :mod:`slics.core.reference`
(not in ``__all__``; the pipeline never imports them).

Parameter names keep one meaning across the modules:

- ``n_atoms``: atoms *per concept* (``SLiCS``, ``make_planted``); a whole dictionary has
  ``m`` atoms (``m = n_concepts * n_atoms`` for SLiCS), written ``(m, d)`` in the shapes.
- ``lam``: the L1 weight of ``||x - w D||^2 + lam ||w||_1`` (``objectives.lasso_objective``),
  the same scale in ``ista``, ``fista``, ``lasso``, ``lasso_path`` and ``SpLiCE``; ``ridge`` is
  the L2 weight of ``nnls_batch`` and ``SLiCS``.
- ``k``: how many best items are kept (candidates in ``top_k``, concepts per image in
  ``zero_shot_pseudo_labels``).
- ``tol`` is always a *relative* stopping tolerance, but of the quantity each solver can
  certify: the duality gap (``lasso``, ``SpLiCE``), the change of the codes (``fista``), the
  KKT conditions (``nnls_batch``), the decrease of the reconstruction error (``SLiCS``);
  each docstring says which.
- ``n_iter`` counts iterations of the whole problem (fixed in ``ista``, a cap in ``fista``,
  alternating iterations in ``SLiCS``); ``max_iter`` caps a per-row inner solver (``lasso``, ``nnls_batch``).
"""

__all__ = ["alignment", "dictionary", "lasso", "nnls", "normalise", "objectives", "omp", "planted", "pq",
           "retrieval", "sparse_coding", "splice", "storage", "zero_shot"]
