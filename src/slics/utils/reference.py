"""The reports' own numbers, stored once in ``reference/report_values.yaml``.

Each entry carries its ``place`` in the source document; tables are stored as ``columns``
plus ``rows`` and read back as data frames by :func:`report_table`.
"""

from __future__ import annotations

import pandas as pd

from .config import load_yaml, project_root

REFERENCE_FILE = ("reference", "report_values.yaml")


def report_values(section: str) -> dict:
    """Values the report states for ``section`` (each with its ``place``); missing ones are absent."""
    values = load_yaml(project_root().joinpath(*REFERENCE_FILE))
    if section not in values:
        raise KeyError(f"reference/report_values.yaml has no section {section!r}.")
    return values[section]


def report_value(section: str, key: str):
    """One scalar the report states (the ``value`` of entry ``key`` of ``section``)."""
    entry = report_values(section)[key]
    return entry["value"] if isinstance(entry, dict) and "value" in entry else entry


def report_table(section: str, name: str) -> pd.DataFrame:
    """A table the report prints, as a data frame with the transcribed column names."""
    entry = report_values(section)[name]
    if not isinstance(entry, dict) or "rows" not in entry:
        raise KeyError(f"{section}.{name} in reference/report_values.yaml is not a table.")
    return pd.DataFrame(entry["rows"], columns=entry["columns"])
