"""The data layer: the resource registry and fetcher, dataset readers, caption mining."""
