"""An audio-text Router: waveforms go to an audio encoder, texts to a text encoder projected into the same space,
declared in ``conf/model/audio_text.yaml`` and built with ``stpipe.build``.

    python examples/make_standins.py   # once (the example also does it when stand-ins are missing)
    python examples/audio_text.py

Stand-ins (see make_standins.py): ``tiny-wav2vec2`` (a random tiny wav2vec2) replaces facebook/wav2vec2-base,
``minilm-to-wav2vec2`` is a seeded Dense(384 -> 32), and the bundled all-MiniLM-L6-v2 is the text encoder. Audio is
given as arrays or ``{"array", "sampling_rate"}`` dicts; an audio file's path works too when torchcodec is installed
(``pip install 'stpipe[audio]'``), otherwise stpipe says so. Nothing is trained: the similarities are not meaningful.
"""

from __future__ import annotations

import os
import tempfile
import wave

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from make_standins import ensure_standins  # noqa: E402

import stpipe  # noqa: E402
from stpipe.resources import conf_dir  # noqa: E402

RATE = 16000


def tone(freq: float, seconds: float = 0.5) -> np.ndarray:
    """A sine tone as a float32 mono waveform at 16 kHz."""
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def main() -> None:
    ensure_standins(["tiny-wav2vec2", "minilm-to-wav2vec2"])
    model = stpipe.build(conf_dir() / "model" / "audio_text.yaml", device="cpu")
    print(f"built {model.name}: modalities {model.modalities}, dimension {model.get_embedding_dimension()}")

    # Modality is inferred per input: a 1-D array or an {array, sampling_rate} dict is audio, a string is text
    sounds = [tone(440.0), {"array": tone(880.0, 0.8), "sampling_rate": RATE}]
    texts = ["a high beep", "a low hum"]
    audio_embeddings = model.encode(sounds)
    text_embeddings = model.encode(texts)
    mixed = model.encode([texts[0], sounds[0]])  # one call, two routes
    print(f"audio {audio_embeddings.shape}, text {text_embeddings.shape}, mixed {mixed.shape}")
    print(f"Similarity audio vs text: {model.similarity(audio_embeddings, text_embeddings)}")
    with tempfile.TemporaryDirectory() as tmp:  # an audio file by path: decoded with torchcodec when installed
        path = os.path.join(tmp, "beep.wav")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((tone(440.0) * 32767).astype("<i2").tobytes())
        try:
            print(f"from the file: {model.encode(path).shape}")
        except ValueError as exc:  # without torchcodec: what to install, naming the input
            print(f"refused: {exc}")


if __name__ == "__main__":
    main()
