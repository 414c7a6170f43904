"""Audio and video inputs of ``Transformer`` (sentence-transformers 6.2's rules).

Audio: a numpy array or tensor with 1–2 dimensions (a mono or multi-channel waveform), ``{"array": …,
"sampling_rate": …}`` (the rate goes to the feature extractor; a batch mixing rates is refused, since a feature
extractor takes one rate per call), a torchcodec ``AudioDecoder``, or the path of an audio file (``.mp3 .wav .ogg
.flac .aac``; counted as audio only when the file exists and the model takes audio). Files are decoded with
torchcodec, the decoder sentence-transformers uses (channels averaged to mono, the file's sampling rate kept);
without it, a clear error says what to install (``pip install 'stpipe[audio]'``) or to pass the decoded waveform.
URLs are refused: stpipe runs offline.

Video: an array or tensor with 4–5 dimensions (frames, channels, height, width), a list of frames (images),
``{"array": frames, "video_metadata": {...}}`` or a torchcodec ``VideoDecoder``. Per-video metadata is passed
to the video processor as a list aligned with the videos; where only some videos carry it, the others get the
frame count of their in-memory frames (as transformers infers it).

>>> extra = {}
>>> unwrap_audio({"array": [0.0, 0.1], "sampling_rate": 16000}, extra), extra
([0.0, 0.1], {'audio': {'sampling_rate': 16000}})
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlparse

AUDIO_SUFFIXES = (".mp3", ".wav", ".ogg", ".flac", ".aac")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv")
YOUTUBE_HOSTS = ("www.youtube.com", "youtube.com", "youtu.be", "m.youtube.com")
INSTALL_HINT = ("decoding audio and video files needs torchcodec (and FFmpeg): pip install 'stpipe[audio]'; or "
                "decode the file yourself and pass {'array': waveform, 'sampling_rate': rate}")


def looks_like_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and " " not in text


def is_media_source(text: str, suffixes: tuple[str, ...]) -> bool:
    """A URL whose path ends in one of ``suffixes``, or an existing local file that does."""
    if looks_like_url(text):
        try:
            return urlparse(text).path.lower().endswith(suffixes)
        except ValueError:
            return False
    return text.lower().endswith(suffixes) and os.path.isfile(text)


def is_audio_source(text: str) -> bool:
    return is_media_source(text, AUDIO_SUFFIXES)


def is_video_source(text: str) -> bool:
    if is_media_source(text, VIDEO_SUFFIXES):
        return True
    try:
        return looks_like_url(text) and urlparse(text).netloc in YOUTUBE_HOSTS
    except ValueError:
        return False


def decoder_kind(x: Any) -> str | None:
    """"audio" / "video" for a torchcodec decoder object (torchcodec is never imported for this), else None."""
    decoders = sys.modules.get("torchcodec.decoders")
    if decoders is None:
        return None
    for kind, name in (("audio", "AudioDecoder"), ("video", "VideoDecoder")):
        cls = getattr(decoders, name, None)
        if isinstance(cls, type) and isinstance(x, cls):
            return kind
    return None


def _decoders() -> Any:
    try:
        import torchcodec.decoders as decoders
    except (ImportError, OSError, RuntimeError) as exc:  # OSError/RuntimeError: torchcodec without FFmpeg
        raise ValueError(f"cannot decode a media file: {INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    return decoders


def decodable(source: str) -> None:
    """ValueError unless ``source`` (a media file path) can be decoded here: not a URL, torchcodec importable."""
    refuse_url(source)
    _decoders()


def refuse_url(text: str) -> None:
    if looks_like_url(text):
        raise ValueError(f"{text!r} is a URL; stpipe runs offline and does not download inputs: download the file "
                         "and pass its path (or the decoded array)")


def record_sampling_rate(rate: Any, extra: dict[str, dict[str, Any]]) -> None:
    """The batch's one ``sampling_rate``; ValueError when two samples disagree."""
    audio = extra.setdefault("audio", {})
    if audio.get("sampling_rate") is not None and audio["sampling_rate"] != rate:
        raise ValueError(f"This batch mixes audio with different sampling rates ({audio['sampling_rate']} and "
                         f"{rate}), but the processor accepts a single sampling rate per batch. Resample the audio "
                         "to a common rate, or encode each sampling rate in a separate call.")
    audio["sampling_rate"] = rate


def unwrap_audio(value: Any, extra: dict[str, dict[str, Any]]) -> Any:
    """The waveform the feature extractor takes (``extra["audio"]`` collects the sampling rate)."""
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (int, float)):
        return [unwrap_audio(v, extra) for v in value]
    if isinstance(value, dict):
        if "sampling_rate" in value:
            record_sampling_rate(value["sampling_rate"], extra)
        return value["array"]
    if isinstance(value, str):
        refuse_url(value)
        value = _decoders().AudioDecoder(value)
    if decoder_kind(value) == "audio":
        samples = value.get_all_samples()  # (channels, samples)
        record_sampling_rate(samples.sample_rate, extra)
        return samples.data.mean(dim=0).numpy()
    return value


def is_frames(value: Any) -> bool:
    from stpipe.modules.modality import infer_modality

    if not isinstance(value, (list, tuple)) or not value:
        return False
    try:
        return all(infer_modality(frame) == "image" for frame in value)
    except ValueError:
        return False


def unwrap_video(value: Any, extra: dict[str, dict[str, Any]]) -> Any:
    """The frames the video processor takes; ``extra["video"]["video_metadata"]`` gets one entry per video."""
    if is_frames(value):
        value = {"array": value, "video_metadata": None}
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            got = unwrap_video(item, extra)
            out.extend(got if isinstance(got, (list, tuple)) else [got])
        return out
    metadata = extra.setdefault("video", {}).setdefault("video_metadata", [])
    if isinstance(value, dict):
        metadata.append(value.get("video_metadata"))
        frames = value["array"]
        return [list(frames)] if isinstance(frames, (list, tuple)) else frames
    if isinstance(value, str):
        refuse_url(value)
        value = _decoders().VideoDecoder(value)
    if decoder_kind(value) == "video":
        batch = value.get_frames_in_range(0, len(value))
        meta = value.metadata
        metadata.append({"fps": meta.average_fps, "total_num_frames": meta.num_frames,
                         "duration": meta.duration_seconds, "frames_indices": list(range(batch.data.shape[0]))})
        return batch.data
    metadata.append(None)
    return value


def reconcile_video_metadata(videos: list[Any], extra: dict[str, dict[str, Any]]) -> None:
    """No video carried metadata → none is passed; otherwise fill the gaps from each video's frame count
    (ValueError for a video only known by its path). ``videos``: the unwrapped video of each input, where a list
    holds several videos (a video given as frames is one such list entry, so its frames are counted)."""
    video = extra.get("video")
    if not video or "video_metadata" not in video:
        return
    entries = video["video_metadata"]
    # one entry per video: an unwrapped input is one video (an array) or a list of videos (frame lists, arrays)
    videos = [v for value in videos for v in (value if isinstance(value, (list, tuple)) else [value])]
    if all(e is None for e in entries):
        del video["video_metadata"]
        if not video:
            del extra["video"]
        return
    for i, (entry, frames) in enumerate(zip(entries, videos, strict=False)):
        if entry is None:
            if isinstance(frames, str) or not hasattr(frames, "__len__"):
                raise ValueError("This batch mixes videos that carry per-sample 'video_metadata' with videos that do "
                                 "not. Default metadata can only be inferred for in-memory videos (frame arrays or "
                                 "lists), so either pass 'video_metadata' for every video in the batch or for none.")
            n = len(frames)
            entries[i] = {"total_num_frames": n, "fps": None, "duration": None, "frames_indices": list(range(n))}
