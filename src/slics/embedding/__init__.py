"""The embedding layer: backbones (open_clip, the demo text tower), the demo image simulator,
and the embed stages that cache embeddings under ``data/embeddings/``."""
