"""``Transformer(backend="onnx" | "openvino")``: an ONNX Runtime / OpenVINO graph of the Hugging Face model in place
of the torch model (what ``Transformer.model`` holds), with the seed's ``model_kwargs``:

* ``file_name`` — the graph file to load, inside the model directory (``model.onnx`` / ``onnx/model.onnx``;
  ``openvino_model.xml`` / ``openvino/openvino_model.xml`` by default, sentence-transformers 6.2's layout);
* ``export`` — ``true``: export the torch model (``torch.onnx.export``; OpenVINO converts that graph) into a
  temporary directory and run it; only then is a graph made, never because a file is missing;
* ``provider`` (onnx) — the ONNX Runtime execution provider (default: the first available); ``ov_config``
  (openvino) — OpenVINO compile properties; ``threads`` — intra-op threads (default: torch's thread count).

Only a file inside the model directory is loaded (a ``file_name`` that leaves it is refused). ``save`` writes the
graph into the ``onnx/`` or ``openvino/`` sub-folder plus ``config.json``, as sentence-transformers does. Only
``feature-extraction`` (→ ``last_hidden_state``) runs on a graph.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from stpipe.errors import LoadError
from stpipe.files import check_relative

logger = logging.getLogger("stpipe.modules.transformer")

#: backend → (sub-folder, default file name)
LAYOUT = {"onnx": ("onnx", "model.onnx"), "openvino": ("openvino", "openvino_model.xml")}
#: the model_kwargs a graph backend reads; hub arguments stpipe adds itself are ignored quietly
GRAPH_KWARGS = ("file_name", "export", "provider", "ov_config", "threads")
_HUB = ("token", "cache_dir", "revision", "local_files_only", "trust_remote_code", "subfolder", "use_safetensors")


class GraphModel(nn.Module):
    """A Hugging Face encoder run by a graph runtime: ``forward(input_ids, attention_mask, token_type_ids)`` →
    ``BaseModelOutput(last_hidden_state)``, ``config`` as the torch model's."""

    def __init__(self, config: Any, session: Any, backend: str, keep: Any = None) -> None:
        super().__init__()
        self.config, self.session, self.backend = config, session, backend
        self._keep = keep  # the temporary directory of an export=true graph lives as long as the model
        outputs = session.output_names
        self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, return_dict: bool = True) -> BaseModelOutput:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {}
        for name in self.session.input_names:
            value = given.get(name)
            if value is None:
                if name not in given:
                    raise LoadError(f"the graph takes an input stpipe does not make: {name!r}",
                                    path=str(self.session.path))
                value = torch.ones_like(input_ids) if name == "attention_mask" else torch.zeros_like(input_ids)
            feeds[name] = value.detach().cpu().numpy().astype(np.int64, copy=False)
        hidden = self.session.run(feeds)[self._output]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(np.ascontiguousarray(hidden)))

    def save_pretrained(self, output_path: str, **kwargs: Any) -> None:
        """``config.json`` and the graph (``onnx/model.onnx`` or ``openvino/openvino_model.xml`` + ``.bin``)."""
        self.config.save_pretrained(output_path)
        sub, name = LAYOUT[self.backend]
        folder = Path(output_path, sub)
        folder.mkdir(parents=True, exist_ok=True)
        src = Path(self.session.path)
        shutil.copyfile(src, folder / name)
        if self.backend == "openvino":
            shutil.copyfile(src.with_suffix(".bin"), (folder / name).with_suffix(".bin"))


def find_graph(root: Path, backend: str, file_name: str | None) -> Path | None:
    """The graph file of ``root`` (``file_name``, else the default name; at the top or in the sub-folder)."""
    sub, default = LAYOUT[backend]
    name = file_name or default
    check_relative(name)  # never a file outside the model directory
    for candidate in (root / name, root / sub / name):
        if candidate.is_file():
            return candidate
    return None


def _export(path: str, task: str, backend: str, model_kwargs: dict[str, Any], config_kwargs: dict[str, Any],
            tokenizer_path: str) -> tuple[Path, Any]:
    from transformers import AutoTokenizer

    from stpipe.modules.transformer_setup import load_model
    from stpipe.runtimes import graph_export as gx

    torch_kwargs = {k: v for k, v in model_kwargs.items() if k not in GRAPH_KWARGS}
    model = load_model(path, task, torch_kwargs, config_kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    keep = tempfile.TemporaryDirectory(prefix="stpipe-graph-")
    graph = gx.export_hf_model(model, tokenizer, Path(keep.name, "model.onnx"))
    if backend == "openvino":
        graph = gx.onnx_to_openvino(graph, Path(keep.name, "openvino_model.xml"))
    logger.info("exported %s to a temporary %s graph", path, backend)
    return graph, keep


def load_graph_model(model_name_or_path: str, task: str, backend: str, model_kwargs: dict[str, Any],
                     config_kwargs: dict[str, Any], tokenizer_name_or_path: str | None = None) -> GraphModel:
    """The :class:`GraphModel` of ``model_name_or_path`` for ``backend`` (see the module docstring)."""
    import transformers

    from stpipe.modules.transformer_setup import on_disk
    from stpipe.runtimes.sessions import open_session

    if task != "feature-extraction":
        raise ValueError(f"backend {backend!r} runs transformer_task 'feature-extraction' only, not {task!r}; use "
                         "backend: torch")
    if backend == "onnx" and "ov_config" in model_kwargs:
        raise ValueError("model_kwargs.ov_config is an OpenVINO setting; backend 'onnx' takes provider")
    ignored = sorted(k for k in model_kwargs if k not in (*GRAPH_KWARGS, *_HUB))
    if ignored:
        logger.warning("backend %s ignores model_kwargs %s (torch loading options)", backend, ", ".join(ignored))
    path = on_disk(model_name_or_path, model_kwargs)
    try:
        config = transformers.AutoConfig.from_pretrained(path, **config_kwargs)
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot load the Hugging Face config of '{path}': {exc}", path=str(Path(path, "config.json")),
                        hint="model_name_or_path must be a local model directory") from exc
    keep = None
    if model_kwargs.get("export"):
        graph, keep = _export(path, task, backend, model_kwargs, config_kwargs, tokenizer_name_or_path or path)
    else:
        graph = find_graph(Path(path), backend, model_kwargs.get("file_name"))
        if graph is None:
            sub, default = LAYOUT[backend]
            name = model_kwargs.get("file_name") or default
            raise LoadError(f"backend {backend!r}: no graph file {name} or {sub}/{name} in the model directory",
                            path=str(Path(path, sub, name)),
                            hint="set model_kwargs: {export: true} to export the torch model, or name the file "
                                 "with model_kwargs.file_name")
    session = open_session(backend, graph, provider=model_kwargs.get("provider"), threads=model_kwargs.get("threads"),
                           ov_config=model_kwargs.get("ov_config"))
    return GraphModel(config, session, backend, keep)
