"""Seed example 3: a multimodal Router — text to a text encoder projected to the image encoder's dimension, images
and text+image inputs to an image encoder — declared in ``conf/model/multimodal.yaml`` and built with
``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/multimodal.py

Stand-ins (see make_standins.py): ``tiny-clip`` (a random tiny CLIP) replaces ModernVBERT, ``minilm-to-clip`` is the
seeded Dense projection, and the bundled all-MiniLM-L6-v2 is the text encoder. How the topology differs from the
seed's (CLIP returns a pooled embedding, and cannot fuse text with an image) is explained in the YAML file. The image
is drawn with PIL. Nothing is trained: "the similarity will be poor as the model hasn't yet been trained".
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def cat_picture(size: int = 96) -> Image.Image:
    """A small drawing of a cat's face: an orange head with two ears and two eyes on a blue background."""
    img = Image.new("RGB", (size, size), (70, 110, 200))
    d = ImageDraw.Draw(img)
    s = size / 96
    d.polygon([(22 * s, 40 * s), (30 * s, 8 * s), (44 * s, 30 * s)], fill=(230, 140, 40))
    d.polygon([(52 * s, 30 * s), (66 * s, 8 * s), (74 * s, 40 * s)], fill=(230, 140, 40))
    d.ellipse([18 * s, 22 * s, 78 * s, 82 * s], fill=(230, 140, 40))
    d.ellipse([34 * s, 42 * s, 42 * s, 50 * s], fill=(20, 20, 20))
    d.ellipse([54 * s, 42 * s, 62 * s, 50 * s], fill=(20, 20, 20))
    return img


def main() -> None:
    ensure_standins(["tiny-clip", "minilm-to-clip"])
    model = stpipe.build(conf_dir() / "model" / "multimodal.yaml", device="cpu")
    print(f"built {model.name}: modalities {model.modalities}, dimension {model.get_embedding_dimension()}")
    cat = cat_picture()

    # Modality is automatically inferred
    text_embedding = model.encode("A photo of a cat")
    image_embedding = model.encode(cat)
    multimodal_embedding = model.encode({"text": "A photo of a <image>", "image": cat})
    print(f"text {text_embedding.shape}, image {image_embedding.shape}, text+image {multimodal_embedding.shape}")

    # Compute the similarity; it'll be poor as the model hasn't yet been trained
    similarity = model.similarity(text_embedding, multimodal_embedding)
    print(f"Similarity text vs text+image: {similarity}")
    print(f"Similarity text vs image: {model.similarity(text_embedding, image_embedding)}")


if __name__ == "__main__":
    main()
