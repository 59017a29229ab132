"""Build random-weight CLIP models that load through the same ``from_pretrained`` path as the real one.

Weights cannot be downloaded in CI or offline demos, so tests and the demo save a ~32-wide, 2-layer CLIP plus its
image processor and a tokenizer into a folder. ``--architecture vit-b-32`` builds the real
``openai/clip-vit-base-patch32`` shapes instead (throughput benchmarks: speed does not depend on the weights).
``python -m clustering.devtools.tiny_model OUTDIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TINY_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
ARCHITECTURES = ("tiny", "vit-b-32")
TEXT_VOCAB_SIZE = 1000  # rows of the token embedding: room for the tokenizer's 514 tokens
MAX_TOKENS = 77  # CLIP's context length


def build_tokenizer(outdir: str | Path):
    """Save a byte-level CLIP tokenizer to ``outdir`` and return it: built offline, deterministic, no merges.

    The vocabulary is laid out like CLIP's: the 256 byte symbols of ``tokenizers``' ByteLevel alphabet, the same
    symbols ending a word (``</w>``), then ``<|startoftext|>`` and ``<|endoftext|>``. Without merges every character
    is a token: enough for tests, and unlike a trained BPE (whose tie-breaking varies run to run) the same every time.
    ``AutoTokenizer.from_pretrained(outdir)`` loads it as it loads openai/clip-vit-base-patch32's.
    """
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    vocab.update({symbol + "</w>": len(symbols) + i for i, symbol in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)
    tokenizer.save_pretrained(outdir)
    return tokenizer


def build_tiny_clip(outdir: str | Path, *, projection_dim: int = 32, seed: int = 0, architecture: str = "tiny") -> Path:
    """Save a random-weight ``CLIPModel``, its ``CLIPImageProcessor`` and a tokenizer to ``outdir`` and return it.

    Parameters
    ----------
    outdir : str or Path
        Folder to create (parents included); existing model files are overwritten.
    projection_dim : int, default 32
        Embedding dimension of the tiny model (``vit-b-32`` keeps CLIP's 512).
    seed : int, default 0
        Seed for the random weights: the same seed gives the same model, hence the same embeddings.
    architecture : {"tiny", "vit-b-32"}, default "tiny"
        ``tiny``: 32-wide, 2-layer towers (fast tests). ``vit-b-32``: the shapes of openai/clip-vit-base-patch32.
    """
    import torch
    from transformers import CLIPConfig, CLIPModel

    from clustering.analysis.posts.names import quiet_transformers

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(outdir)
    torch.manual_seed(seed)
    # The text tower pools the first end-of-text token, so its ids must be the tokenizer's (padding is end-of-text).
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    ids["pad_token_id"] = tokenizer.pad_token_id
    text = {"vocab_size": TEXT_VOCAB_SIZE, "max_position_embeddings": MAX_TOKENS, **ids}
    vision = {"image_size": 224, "patch_size": 32}
    if architecture == "tiny":
        text, vision, dims = {**text, **TINY_TOWER}, {**vision, **TINY_TOWER}, {"projection_dim": projection_dim}
    else:  # CLIPConfig's defaults are ViT-B/32; only the vocabulary is shrunk (benchmarks time the vision tower)
        dims = {"projection_dim": 512}
    # clipcluster_random_weights is recorded in every shard's metadata: no output can pass this off as real CLIP.
    config = CLIPConfig(text_config=text, vision_config=vision, clipcluster_random_weights=True, **dims)
    with quiet_transformers():  # no save bar nor image-backend notice in the demo's console
        from transformers import CLIPImageProcessor  # its import is what notices the missing torchvision

        CLIPModel(config).eval().save_pretrained(outdir)
        CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(outdir)
    return outdir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m clustering.devtools.tiny_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("outdir", help="folder to write the model into")
    parser.add_argument("--projection-dim", type=int, default=32, help="embedding dimension of the tiny model (32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights (default 0)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="tiny", help="model shapes (default tiny)")
    args = parser.parse_args(argv)
    path = build_tiny_clip(
        args.outdir, projection_dim=args.projection_dim, seed=args.seed, architecture=args.architecture
    )
    print(f"random-weight CLIP ({args.architecture}) written to {path}")


if __name__ == "__main__":
    main()
