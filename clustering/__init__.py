"""clipcluster: embed image URLs with CLIP at scale, then cluster and explore them."""

__version__ = "0.1.0"
