"""Build a tiny random-weight CLIP model that loads through the same ``from_pretrained`` path as the real one.

Weights cannot be downloaded in CI or offline demos, so tests and the demo save a ~32-wide, 2-layer CLIP plus its
image processor into a folder. ``python -m clustering.tiny_model OUTDIR`` does the same from the shell.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def build_tiny_clip(outdir: str | Path, *, image_size: int = 224, projection_dim: int = 32, seed: int = 0) -> Path:
    """Save a random-weight ``CLIPModel`` and ``CLIPImageProcessor`` to ``outdir`` and return it.

    Parameters
    ----------
    outdir : str or Path
        Folder to create (parents included); existing model files are overwritten.
    image_size : int, default 224
        Input resolution of the vision tower, kept at CLIP's 224 so preprocessing matches the real model.
    projection_dim : int, default 32
        Embedding dimension the model outputs.
    seed : int, default 0
        Seed for the random weights: the same seed gives the same model, hence the same embeddings.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "vocab_size": 1000, "max_position_embeddings": 77},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": image_size, "patch_size": 32},
        projection_dim=projection_dim,
    )
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    CLIPModel(config).eval().save_pretrained(outdir)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(outdir)
    return outdir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clustering.tiny_model", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder to write the model into")
    parser.add_argument("--projection-dim", type=int, default=32, help="embedding dimension (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default 0)")
    args = parser.parse_args(argv)
    path = build_tiny_clip(args.outdir, projection_dim=args.projection_dim, seed=args.seed)
    print(f"tiny random-weight CLIP written to {path}")


if __name__ == "__main__":
    main()
