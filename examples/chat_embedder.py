"""A chat-template embedding model: a causal LM whose chat template renders every input (texts and conversations),
pooled at its last token, declared in ``conf/model/chat_embedder.yaml`` and built with ``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/chat_embedder.py

Stand-in (see make_standins.py): ``tiny-chat-lm``, a random tiny Qwen2 causal LM with a ChatML chat template,
replaces a chat-template embedding model. A prompt (``encode_query`` uses the ``query`` prompt) becomes a leading
system message. Nothing is trained: the similarities are not meaningful, the example shows the wiring.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from make_standins import ensure_standins  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402


def main() -> None:
    ensure_standins(["tiny-chat-lm"])
    model = stpipe.build(conf_dir() / "model" / "chat_embedder.yaml", device="cpu")
    print(f"built {model.name}: modalities {model.modalities}, dimension {model.get_embedding_dimension()}")
    rendered = model[0].tokenizer.decode(model.preprocess(["what is the capital of france?"],
                                                          prompt=model.prompts["query"])["input_ids"][0])
    print("the query as the model sees it:", repr(rendered))

    query = model.encode_query("what is the capital of france?")
    documents = model.encode_document(["Paris is the capital of France.", "Cats sleep a lot."])
    conversation = [{"role": "user", "content": "i need a city in france"},
                    {"role": "assistant", "content": "paris?"},
                    {"role": "user", "content": "yes, its capital"}]
    chat = model.encode(conversation)  # one conversation is one input
    print(f"query {query.shape}, documents {documents.shape}, conversation {chat.shape}")
    print(f"Similarity query vs documents: {model.similarity(query, documents)}")
    print(f"Similarity conversation vs documents: {model.similarity(chat, documents)}")


if __name__ == "__main__":
    main()
