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
"""

__all__ = ["alignment", "dictionary", "lasso", "nnls", "normalise", "objectives", "omp", "planted", "pq",
           "retrieval", "sparse_coding", "splice", "storage", "zero_shot"]
