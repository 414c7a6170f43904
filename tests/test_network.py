"""How stpipe uses the network (README "Network"): a model found nowhere on this machine is found out before any
download; offline that is a validation error naming every place looked at (and the stand-ins script / the model
store where relevant); online the build makes ONE download attempt, with a short timeout and no retries.

The online tests run ``stpipe`` in a subprocess with ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` unset and
``HF_ENDPOINT`` pointing at a local server of the test's own, so the "hub" is unreachable (or answers 503) on
every machine. What is asserted is behaviour (one request, the error text, exit code 2), never the seconds."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import stpipe
from stpipe import resources
from stpipe.errors import LoadError

REPO = Path(__file__).resolve().parent.parent
MISSPELT = {"modules": [{"type": "Transformer", "model_name_or_path": "all-MiniLM-L6-v3"}, {"type": "Pooling"}]}


@pytest.fixture()
def places(tmp_path, monkeypatch) -> dict[str, Path]:
    """An empty model store and an empty Hugging Face cache, so nothing is found by accident."""
    store, cache = tmp_path / "store", tmp_path / "hf-cache"
    store.mkdir()
    cache.mkdir()
    monkeypatch.setenv("STPIPE_MODELS", str(store))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return {"store": store, "cache": cache, "dir": tmp_path}


def _online_env(places: dict[str, Path], endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": endpoint, "STPIPE_MODELS": str(places["store"]),
            "HF_HUB_CACHE": str(places["cache"]), "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}


def _encode(places: dict[str, Path], endpoint: str, model: str) -> subprocess.CompletedProcess:
    yaml = places["dir"] / "model.yaml"
    yaml.write_text(f"modules:\n  - type: Transformer\n    model_name_or_path: {model}\n  - type: Pooling\n")
    inputs = places["dir"] / "in.txt"
    inputs.write_text("a cat\n")
    return subprocess.run([sys.executable, "-m", "stpipe", "encode", str(yaml), f"inputs={inputs}",
                           f"output={places['dir'] / 'out.npy'}"], env=_online_env(places, endpoint),
                          capture_output=True, text=True, timeout=60, cwd=places["dir"])


@pytest.fixture()
def refused() -> Iterator[str]:
    """An endpoint on loopback that refuses connections: a port bound (so nobody else takes it) but not listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


@pytest.fixture()
def busy_hub() -> Iterator[tuple[str, list[str]]]:
    """A local "hub" answering 503 (a status huggingface_hub retries on) to every request, counting them."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------------------------- online
def test_misspelt_model_online_with_the_hub_unreachable_fails_at_once_naming_where_stpipe_looked(places, refused):
    r = _encode(places, refused, "all-MiniLM-L6-v3")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Retrying" not in r.stderr
    assert "[build.model-path] modules[0].model_name_or_path" in r.stderr
    assert f"downloading it from {refused} failed (one attempt" in r.stderr
    for place in (places["dir"] / "all-MiniLM-L6-v3", places["store"] / "all-MiniLM-L6-v3",
                  places["cache"] / "models--all-MiniLM-L6-v3"):
        assert str(place) in r.stderr
    assert "did you mean 'all-MiniLM-L6-v2'?" in r.stderr


def test_online_build_makes_one_request_to_a_hub_that_answers_503(places, busy_hub):
    """huggingface_hub and transformers retry a 503 five times with back-off; stpipe asks once."""
    endpoint, seen = busy_hub
    r = _encode(places, endpoint, "org/some-model")
    assert r.returncode == 2, r.stderr
    assert "one attempt" in r.stderr and "503" in r.stderr
    # (huggingface_hub may also fetch its own /api/agent-harnesses registry, once a day, for its user agent)
    assert [s for s in seen if "some-model" in s] == ["GET /api/models/org/some-model"]


def test_missing_standin_online_names_the_script_and_the_store(places, refused):
    r = _encode(places, refused, "tiny-clip")
    assert r.returncode == 2, r.stderr
    assert "python examples/make_standins.py" in r.stderr and "$STPIPE_MODELS" in r.stderr
    assert str(places["store"]) in r.stderr


def test_online_validation_warns_and_names_the_one_download(places, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.warns(stpipe.errors.ConfigWarning, match="downloads? it from the Hugging Face Hub once"):
        stpipe.validate(MISSPELT)


def test_a_model_nowhere_is_downloaded_once_then_loaded_from_its_snapshot(places, monkeypatch, tiny_bert_dir):
    """The happy online path, with huggingface_hub's two calls replaced: one metadata request (short timeout),
    one snapshot download (no other runtimes' weights, no pickles when safetensors exist); the build then
    loads the snapshot directory."""
    import shutil
    import types

    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls: list[tuple[str, dict]] = []
    files = [types.SimpleNamespace(rfilename=f) for f in ("config.json", "model.safetensors", "pytorch_model.bin")]

    def model_info(self, repo_id, **kw):
        calls.append(("model_info", {"repo_id": repo_id, **kw}))
        return types.SimpleNamespace(siblings=files, sha="0" * 40)

    def snapshot_download(repo_id, **kw):
        calls.append(("snapshot_download", {"repo_id": repo_id, **kw}))
        snap = places["cache"] / "models--org--tiny" / "snapshots" / ("0" * 40)
        shutil.copytree(tiny_bert_dir, snap)
        return str(snap)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    pipe = stpipe.build({"modules": [{"type": "Transformer", "model_name_or_path": "org/tiny"},
                                     {"type": "Pooling"}]}, validate=False, device="cpu")
    assert [c[0] for c in calls] == ["model_info", "snapshot_download"]
    assert calls[0][1]["timeout"] == resources.HUB_TIMEOUT
    assert "*.bin" in calls[1][1]["ignore_patterns"] and "*.onnx" in calls[1][1]["ignore_patterns"]
    assert pipe[0].model_name_or_path.endswith("0" * 40)
    assert pipe.encode(["a cat"]).shape == (1, 32)


# ----------------------------------------------------------------------------------------------- offline
def test_misspelt_model_offline_is_an_immediate_validation_error(places, monkeypatch):
    monkeypatch.chdir(places["dir"])
    with pytest.raises(stpipe.ConfigError) as exc:
        stpipe.validate(MISSPELT)
    (p,) = [p for p in exc.value.problems if p.code == "check.model-path"]
    assert p.severity == "error" and p.path_str == "modules[0].model_name_or_path"
    assert str(places["store"] / "all-MiniLM-L6-v3") in p.message
    assert str(places["cache"] / "models--all-MiniLM-L6-v3") in p.message
    assert str(places["dir"] / "all-MiniLM-L6-v3") in p.message
    assert "did you mean 'all-MiniLM-L6-v2'?" in p.hint and "HF_HUB_OFFLINE is set" in p.hint


def test_missing_standin_offline_hints_at_the_script(places):
    definition = {"modules": [{"type": "Transformer", "model_name_or_path": "tiny-clp"}]}
    with pytest.raises(stpipe.ConfigError) as exc:
        stpipe.validate(definition)
    (p,) = [p for p in exc.value.problems if p.code == "check.model-path"]
    assert "did you mean 'tiny-clip'?" in p.hint
    assert "python examples/make_standins.py" in p.hint and "$STPIPE_MODELS" in p.hint


def test_build_offline_without_validation_is_the_same_error(places):
    with pytest.raises(stpipe.ConfigError) as exc:
        stpipe.build(MISSPELT, validate=False)
    (p,) = exc.value.problems
    assert p.code == "build.model-path" and p.path_str == "modules[0].model_name_or_path"
    assert "cannot find model 'all-MiniLM-L6-v3'" in p.message and str(places["store"]) in p.message


def test_local_files_only_never_downloads(places, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(LoadError, match="cannot find model 'org/x'; looked in: .*the Hugging Face cache"):
        resources.local_model("org/x", local_files_only=True)


# ----------------------------------------------------------------------------------------------- the resolver
def test_locate_model_finds_the_hf_cache_snapshot_at_a_revision(places, tmp_path):
    repo = tmp_path / "other-cache" / "models--org--m"
    for rev in ("a" * 40, "b" * 40):
        (repo / "snapshots" / rev).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "refs" / "v2").write_text("b" * 40)
    found = resources.locate_model("org/m", cache_folder=tmp_path / "other-cache")
    assert (found.source, found.path) == ("hf-cache", str(repo / "snapshots" / ("a" * 40)))
    assert resources.locate_model("org/m", cache_folder=tmp_path / "other-cache", revision="v2").path == \
        str(repo / "snapshots" / ("b" * 40))
    assert resources.locate_model("org/m", cache_folder=tmp_path / "other-cache", revision="c" * 40).path is None
    assert not resources.locate_model("org/m").found  # the default cache (empty here)


@pytest.mark.parametrize("name, hub", [("org/name", True), ("name", True), ("./name", False), ("/abs/name", False),
                                       ("a/b/c", False), ("~/m", False), ("..", False), ("org/..", False)])
def test_what_counts_as_a_hub_id(name, hub):
    assert resources.looks_like_hub_id(name) is hub


def test_standin_names_are_those_of_the_script():
    from conftest import make_standins

    assert resources.STANDIN_MODEL_NAMES == make_standins.STANDINS


def test_stpipe_load_of_a_hub_id_nowhere_makes_the_same_single_attempt(places, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls: list[str] = []

    def model_info(self, repo_id, **kw):
        calls.append(repo_id)
        raise ConnectionError("no route to the hub")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append("snapshot_download"))
    with pytest.raises(LoadError, match=r"org/saved-model.*one attempt.*no route to the hub") as exc:
        stpipe.load("org/saved-model")
    assert calls == ["org/saved-model"]
    assert str(places["cache"] / "models--org--saved-model") in str(exc.value)


def test_the_revision_and_cache_dir_in_model_kwargs_pick_the_cached_snapshot(places, tmp_path):
    """``model_kwargs: {revision, cache_dir}`` choose the snapshot that validation checks and the build loads."""
    from conftest import write_tiny_bert

    repo = tmp_path / "own-cache" / "models--org--two"
    write_tiny_bert(repo / "snapshots" / ("a" * 40), hidden=32)
    write_tiny_bert(repo / "snapshots" / ("b" * 40), hidden=16)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "refs" / "v2").write_text("b" * 40)
    node = {"type": "Transformer", "model_name_or_path": "org/two",
            "model_kwargs": {"revision": "v2", "cache_dir": str(tmp_path / "own-cache")}}
    stpipe.validate({"modules": [node, {"type": "Pooling"}]})
    pipe = stpipe.build({"modules": [node, {"type": "Pooling"}]}, validate=False, device="cpu")
    assert pipe[0].model_name_or_path == str(repo / "snapshots" / ("b" * 40))
    assert pipe.get_embedding_dimension() == 16
    node["model_kwargs"]["revision"] = "v3"
    with pytest.raises(stpipe.ConfigError, match=r"cannot find model 'org/two'.*revision v3"):
        stpipe.validate({"modules": [node, {"type": "Pooling"}]})
