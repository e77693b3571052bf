"""The compendium as an offline HTML site: headline results, executed notebooks, benchmarks, data provenance."""
