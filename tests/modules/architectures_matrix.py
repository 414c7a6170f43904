"""The architecture matrix: every model type transformers maps for each ``transformer_task``, built tiny and random,
loaded by stpipe's ``Transformer`` and by sentence-transformers 6.2's (the oracle) from the same folder.

For one (model type, task) pair :func:`check_pair` compares the class loaded, the output feature names and shapes,
the values (≤ 1e-5, fp32) and save → load both ways (stpipe-saved → sentence-transformers, and back). A pair that
cannot be built or compared gets a reason (:class:`Outcome`). The same run writes ``docs/architectures.md``::

    python -m tests.modules.architectures_matrix --write docs/architectures.md        # the whole matrix
    python -m tests.modules.architectures_matrix --task fill-mask --limit 5          # a quick look
    python -m tests.modules.architectures_matrix --task fill-mask --jsonl a.jsonl     # runs in parts (in parallel),
    python -m tests.modules.architectures_matrix --from a.jsonl b.jsonl --write docs/architectures.md  # one table

``tests/modules/test_architectures.py`` runs the pairs the table marks ✓ (a fixed CI share of them) and checks
that the table still lists every pair transformers maps.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tests.modules.architectures_build import TASK_MAPPINGS, build_tiny, model_types

__all__ = ["TASK_MAPPINGS", "Outcome", "check_pair", "model_types", "run_matrix", "write_table"]

TEXTS = ["the cat runs in paris", "a dog", "what is the weather in new york now ?"]


def _images() -> list:
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    return [Image.fromarray((rng.rand(40, 48, 3) * 255).astype("uint8")) for _ in range(2)]
TOL = 1e-5


@dataclass
class Outcome:
    model_type: str
    task: str
    ok: bool
    reason: str = ""  # why not at parity (or what stpipe does better), "" at parity
    seconds: float = 0.0

    @property
    def cell(self) -> str:
        return "✓" if self.ok else self.reason


class Mismatch(AssertionError):
    """stpipe and sentence-transformers disagree on a pair both load."""


def _short(exc: BaseException, n: int = 110) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def _outputs(module, texts: list[str]) -> dict:
    """The module's output features on ``texts`` (on two images for a model without a tokenizer)."""
    import torch

    from stpipe.modules.transformer_modalities import is_tokenizer

    tok = getattr(module.processor, "tokenizer", module.processor)
    features = module.preprocess(list(texts) if is_tokenizer(tok) else _images())
    with torch.no_grad():
        out = module(dict(features))
    return {k: v for k, v in out.items() if k not in ("all_layer_embeddings",)}


def _same(ours: dict, ref: dict, what: str) -> None:
    import torch

    if set(ours) != set(ref):
        raise Mismatch(f"{what}: output names differ: {sorted(set(ours) ^ set(ref))}")
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            if not isinstance(ours[k], torch.Tensor) or ours[k].shape != v.shape:
                raise Mismatch(f"{what}: {k} shape {getattr(ours[k], 'shape', None)} ≠ {tuple(v.shape)}")
            if v.is_floating_point():
                diff = (ours[k].float() - v.float()).abs().max().item() if v.numel() else 0.0
                if not diff <= TOL:
                    raise Mismatch(f"{what}: {k} differs by {diff:.2g}")
            elif not torch.equal(ours[k], v):
                raise Mismatch(f"{what}: {k} differs")
        elif ours[k] != v:
            raise Mismatch(f"{what}: {k} {ours[k]!r} ≠ {v!r}")


def compare(folder: Path, task: str, work: Path) -> str:
    """Raise :class:`Mismatch` where stpipe and sentence-transformers differ on ``folder`` loaded for ``task``
    (:class:`OracleError` when the oracle itself fails). Returns "" at parity, or what stpipe does better: where
    the oracle leaves a seq2seq encoder at its random initialisation, stpipe's output must equal the whole model's
    own encoder, and each library must reload the other's save to the saver's output."""
    from sentence_transformers.base.modules import Transformer as STTransformer

    from stpipe.modules.transformer import Transformer

    try:
        ref = STTransformer(str(folder), transformer_task=task).eval()
        expected = _outputs(ref, TEXTS)
    except Exception as exc:
        raise OracleError(_short(exc)) from exc
    ours = Transformer(str(folder), transformer_task=task).eval()
    if type(ours.model).__name__ != type(ref.model).__name__:
        raise Mismatch(f"class {type(ours.model).__name__} ≠ {type(ref.model).__name__}")
    if ours.module_output_name != ref.module_output_name:
        raise Mismatch(f"module_output_name {ours.module_output_name} ≠ {ref.module_output_name}")
    got, better = _outputs(ours, TEXTS), ""
    try:
        _same(got, expected, "load")
    except Mismatch:
        try:
            _same(_outputs(ref, TEXTS), expected, "the oracle twice")
        except Mismatch:
            raise OracleError("not comparable: the model's forward is random (e.g. random patch masking), two "
                              "calls of the same library differ") from None
        better = _trained_encoder(folder, ours, got, expected)
        if not better:
            raise
    a, b = work / "stpipe-saved", work / "st-saved"
    ours.save(str(a))
    b.mkdir()
    ref.save(str(b))
    st_loaded = STTransformer.load(str(a)).eval()
    ours_loaded = Transformer.load(str(b)).eval()
    for name, loaded, want in (("stpipe-saved → sentence-transformers", st_loaded, got),
                               ("sentence-transformers-saved → stpipe", ours_loaded, expected)):
        if type(loaded.model).__name__ != type(ref.model).__name__:
            raise Mismatch(f"{name}: class {type(loaded.model).__name__} ≠ {type(ref.model).__name__}")
        _same(_outputs(loaded, TEXTS), want, name)
    return better


def _trained_encoder(folder: Path, ours, got: dict, expected: dict) -> str:
    """The better answer for a seq2seq encoder: stpipe equals the whole model's encoder (shapes equal to the
    oracle's); "" when that is not the case."""
    import torch
    from transformers import AutoModel

    from stpipe.modules.transformer_classes import ENCODER_CLASSES, READS_WHOLE_CHECKPOINT

    name = type(ours.model).__name__
    if ours.model.config.model_type not in ENCODER_CLASSES or name in READS_WHOLE_CHECKPOINT:
        return ""
    features = ours.preprocess(list(TEXTS))
    with torch.no_grad():
        encoder = AutoModel.from_pretrained(folder).eval().get_encoder()
        want = encoder(input_ids=features["input_ids"], attention_mask=features["attention_mask"])[0]
    value, ref = got["token_embeddings"], expected["token_embeddings"]
    if value.shape != ref.shape or (value - want).abs().max().item() > TOL:
        return ""
    return (f"✓ stpipe better: sentence-transformers leaves {name} at random init (the checkpoint keeps its "
            "weights under encoder.); stpipe loads them (= the whole model's encoder), both reload each other's save")


class OracleError(RuntimeError):
    """sentence-transformers itself fails on the pair."""


class BuildSkip(RuntimeError):
    """The tiny model cannot be built offline (the message says why)."""


def check_pair(model_type: str, task: str, root: Path | None = None) -> Outcome:
    """Build the tiny model of ``model_type`` for ``task`` under ``root`` (a temporary folder when None) and
    compare stpipe with sentence-transformers on it."""
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if root is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder = root / f"{model_type}-{task}"
        work = root / f"{model_type}-{task}-work"
        work.mkdir(parents=True, exist_ok=True)
        stack.enter_context(_quiet())
        try:
            skip = build_tiny(model_type, task, folder)
        except Exception as exc:  # noqa: BLE001 - the reason goes into the table
            skip = f"cannot build a tiny model offline ({_short(exc, 80)})"
        if skip:
            return Outcome(model_type, task, False, skip, time.perf_counter() - start)
        try:
            better = compare(folder, task, work)
        except OracleError as exc:
            reason = str(exc) if str(exc).startswith("not comparable") else _stpipe_alone(folder, task, str(exc))
            return Outcome(model_type, task, False, reason, time.perf_counter() - start)
        except Mismatch as exc:
            return Outcome(model_type, task, False, f"MISMATCH {exc}", time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001
            return Outcome(model_type, task, False, f"stpipe fails: {_short(exc)}", time.perf_counter() - start)
    return Outcome(model_type, task, not better, better, time.perf_counter() - start)


def _stpipe_alone(folder: Path, task: str, oracle: str) -> str:
    """The reason for a pair the oracle fails on: whether stpipe loads and runs it anyway."""
    from stpipe.modules.transformer import Transformer

    try:
        out = _outputs(Transformer(str(folder), transformer_task=task).eval(), TEXTS)
    except Exception as exc:  # noqa: BLE001
        return f"both fail; sentence-transformers: {oracle}; stpipe: {_short(exc, 60)}"
    import torch

    finite = all(torch.isfinite(v).all() for v in out.values() if isinstance(v, torch.Tensor) and
                 v.is_floating_point())
    return f"sentence-transformers fails ({oracle}); stpipe runs it{'' if finite else ' (non-finite output)'}"


@contextlib.contextmanager
def _quiet():
    """transformers' load reports (missing / unexpected keys of tiny random models) are noise here."""
    levels = {n: logging.getLogger(n).level for n in ("transformers", "sentence_transformers", "stpipe")}
    for n in levels:
        logging.getLogger(n).setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def run_matrix(tasks: list[str] | None = None, limit: int | None = None, only: list[str] | None = None,
               progress: bool = False, jsonl: Path | None = None) -> list[Outcome]:
    """Every (model type, task) pair of ``tasks`` (all five by default)."""
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks or list(TASK_MAPPINGS):
            types = [t for t in model_types(task) if not only or t in only][:limit]
            for model_type in types:
                outcome = check_pair(model_type, task, Path(tmp))
                outcomes.append(outcome)
                if jsonl is not None:
                    with jsonl.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(dataclasses.asdict(outcome)) + "\n")
                if progress:
                    print(f"{task:24} {model_type:28} {outcome.seconds:5.2f}s {outcome.cell}", flush=True)
    return outcomes


def write_table(outcomes: list[Outcome], path: Path) -> None:
    from tests.modules.architectures_table import render

    path.write_text(render(outcomes), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="write the table here (docs/architectures.md)")
    parser.add_argument("--task", action="append", choices=list(TASK_MAPPINGS), help="only this task (repeatable)")
    parser.add_argument("--type", action="append", dest="types", help="only this model type (repeatable)")
    parser.add_argument("--limit", type=int, help="at most this many model types per task")
    parser.add_argument("--jsonl", type=Path, help="also append each outcome to this JSON-lines file")
    parser.add_argument("--from", dest="sources", type=Path, nargs="+",
                        help="render the table from outcomes --jsonl saved (runs nothing)")
    args = parser.parse_args(argv)
    if args.sources:
        outcomes = [Outcome(**json.loads(line)) for f in args.sources for line in f.read_text().splitlines() if line]
    else:
        outcomes = run_matrix(args.task, args.limit, args.types, progress=True, jsonl=args.jsonl)
    ok = sum(o.ok for o in outcomes)
    print(f"{ok} pairs at parity, {len(outcomes) - ok} with a reason, "
          f"{sum(o.seconds for o in outcomes):.0f} s")
    if args.write:
        write_table(outcomes, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
