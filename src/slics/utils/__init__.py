"""Shared helpers: paths and parameters, atomic writers, figure style, input checks,
the notebook runner and the reports' reference values."""
