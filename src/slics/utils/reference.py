"""The reports' own numbers, stored once in ``reference/report_values.yaml``."""

from __future__ import annotations

from .config import load_yaml, project_root


def report_values(section: str) -> dict:
    """Values the report states for ``section`` (with their ``source``); missing ones are absent."""
    values = load_yaml(project_root() / "reference" / "report_values.yaml")
    if section not in values:
        raise KeyError(f"reference/report_values.yaml has no section {section!r}.")
    return values[section]
