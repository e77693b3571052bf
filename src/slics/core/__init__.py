"""The dataset-independent library: the SLiCS estimator, sparse solvers, OMP, zero-shot scoring.

Nothing here knows about a dataset, a backbone or a file: every function takes arrays
(samples and atoms as rows) and returns arrays.
"""
