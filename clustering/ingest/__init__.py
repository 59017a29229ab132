"""Ingest: image URLs to CLIP embeddings on Ray Data (``jobs/embed.py``, or :func:`embed_images` in a pipeline)."""

from __future__ import annotations

__all__ = ["embed_images"]


def __getattr__(name: str):
    # Lazily: importing a stage module (read, download, decode, ...) must not import Ray Data.
    if name == "embed_images":
        from clustering.ingest.dataset import embed_images

        return embed_images
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
