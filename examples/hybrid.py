"""Seed example 4: a hybrid asymmetric + multimodal Router — query text, document text and images each get their
own encoder — declared in ``conf/model/hybrid.yaml`` and built with ``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/hybrid.py

Stand-ins (see make_standins.py): ``minilm-static`` (efficient query encoder), the bundled all-MiniLM-L6-v2
(document encoder), ``tiny-clip`` (image encoder) and ``minilm-to-clip`` (one Dense projection shared by both text
routes). Nothing is trained together, so the similarities show the wiring, not quality.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402
from multimodal import cat_picture  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def main() -> None:
    ensure_standins(["minilm-static", "tiny-clip", "minilm-to-clip"])
    model = stpipe.build(conf_dir() / "model" / "hybrid.yaml", device="cpu")
    router = model[0]
    print(f"built {model.name}: routes {list(router.sub_modules)}, dimension {model.get_embedding_dimension()}")
    shared = router.sub_modules["query_text"][1] is router.sub_modules["doc_text"][2]
    print(f"projection shared by query_text and doc_text: {shared}")

    # Explicit task + automatic modality inference
    query_embedding = model.encode_query("Find images of cats")
    doc_embedding = model.encode_document("Article about cats")
    multimodal_embedding = model.encode({"text": "A photo of a cat", "image": cat_picture()})
    for name, route in (("query", router.resolve_route("query", "text")),
                        ("document", router.resolve_route("document", "text")),
                        ("text+image", router.resolve_route(None, ("image", "text")))):
        print(f"{name} -> route {route}")

    print(f"Similarity query vs document: {model.similarity(query_embedding, doc_embedding)}")
    print(f"Similarity query vs text+image: {model.similarity(query_embedding, multimodal_embedding)}")


if __name__ == "__main__":
    main()
