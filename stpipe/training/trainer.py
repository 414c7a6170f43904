"""The training engine: transformers' ``Trainer`` (on accelerate, so ``accelerate launch`` and torchrun work)
with stpipe's pipeline as the model, a loss from the registry, and

* a collator that tokenises each text column with the pipeline's first module (``preprocess``), through the
  Router route ``router_mapping`` gives the column;
* a seeded sampler (seed + epoch), so a resumed run sees the same order as an uninterrupted one;
* optimiser parameter groups from ``learning_rate_mapping`` (and frozen parameters from ``freeze``);
* evaluation with stpipe's evaluators, checkpoints (and the final model) saved in sentence-transformers' format
  with stpipe's atomic save, and resuming from such a checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from stpipe.errors import CommandError, ConfigError, Problem
from stpipe.training.guard import Row, check_gradients, check_loss


class Rows(torch.utils.data.Dataset):
    """The training rows as a map-style dataset of tuples."""

    def __init__(self, rows: list[tuple[Any, ...]], data: Any = None) -> None:
        self.rows, self.data = rows, data  # data: the TrainingData, named in a divergence's message

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        return Row.at(self.rows[i], i)


class EpochSampler(torch.utils.data.Sampler):
    """A random permutation seeded by ``seed + epoch``: the same order in every run (resumed runs included)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class Collator:
    """A batch of rows → ``{"features": [one feature dict per text column], "labels": tensor | None}``."""

    def __init__(self, pipeline: Any, columns: list[str], label: str | None, router_mapping: Mapping[str, str]):
        self.pipeline, self.columns, self.router_mapping = pipeline, columns, dict(router_mapping)
        self.label_index = columns.index(label) if label else None
        self.text_index = [i for i, c in enumerate(columns) if c != label]

    def __call__(self, batch: list[tuple[Any, ...]]) -> dict[str, Any]:
        features = []
        for i in self.text_index:
            task = self.router_mapping.get(self.columns[i])
            kw = {"task": task} if task is not None else {}
            features.append(self.pipeline.preprocess([row[i] for row in batch], **kw))
        labels = None if self.label_index is None else \
            torch.tensor([float(row[self.label_index]) for row in batch], dtype=torch.float32)
        return {"features": features, "labels": labels, "rows": [getattr(row, "index", None) for row in batch]}


def qualified_names(model: torch.nn.Module) -> dict[str, str]:
    """Parameter name → the name below its innermost stpipe module, prefixed by that module's class
    (``0.sub_modules.query.0.embedding.weight`` → ``StaticEmbedding.embedding.weight``)."""
    from stpipe.modules.module import Module

    owners = {name: type(m).__name__ for name, m in model.named_modules() if isinstance(m, Module) and name}
    out = {}
    for n, _ in model.named_parameters():
        parts = n.split(".")
        for k in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:k])
            if prefix in owners:
                out[n] = owners[prefix] + "." + ".".join(parts[k:])
                break
        else:
            out[n] = n
    return out


def _matches(pattern: str, name: str, qualified: str) -> bool:
    return re.search(pattern, name) is not None or re.search(pattern, qualified) is not None


def freeze(model: torch.nn.Module, patterns: list[str]) -> int:
    """Freeze the parameters matching any pattern; a ConfigError for a pattern that matches none."""
    q = qualified_names(model)
    unused = []
    count = 0
    for pattern in patterns:
        hits = [p for n, p in model.named_parameters() if _matches(pattern, n, q[n])]
        if not hits:
            unused.append(pattern)
        for p in hits:
            p.requires_grad_(False)
            count += 1
    if unused:
        names = sorted(set(q.values()))[:5]
        raise ConfigError([Problem(code="training.freeze", path=("training", "freeze"), message=f"{unused[0]!r} "
                                   "matches no parameter", hint="parameter names look like: " + ", ".join(names))],
                          title="invalid training settings")
    return count


def param_groups(model: torch.nn.Module, lr: float, mapping: Mapping[str, float], weight_decay: float,
                 decay_names: set[str]) -> list[dict[str, Any]]:
    """One optimiser group per (learning rate, weight decay): a parameter takes the rate of the first
    ``mapping`` pattern it matches, else ``lr``; no decay for biases and norms (as transformers)."""
    q = qualified_names(model)
    groups: dict[tuple[float, float], list[tuple[str, torch.nn.Parameter]]] = {}
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        rate = next((float(r) for pat, r in mapping.items() if _matches(pat, n, q[n])), float(lr))
        groups.setdefault((rate, weight_decay if n in decay_names else 0.0), []).append((n, p))
    return [{"params": [p for _, p in ps], "names": [n for n, _ in ps], "lr": rate, "weight_decay": wd}
            for (rate, wd), ps in groups.items()]


class PipelineTrainer(Trainer):
    """transformers' Trainer for a stpipe pipeline and a stpipe loss (see the module docstring)."""

    def __init__(self, *, loss: Any, lr_mapping: Mapping[str, float], evaluator: Any = None, seed: int = 42,
                 **kwargs: Any) -> None:
        self.loss_fn, self.lr_mapping, self.evaluator, self.sampler_seed = loss, dict(lr_mapping), evaluator, seed
        super().__init__(**kwargs)
        self.model_accepts_loss_kwargs = False  # the loss is a batch mean: divide by accumulation steps

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        embeddings = [model(f)["sentence_embedding"] for f in inputs["features"]]
        loss = self.loss_fn(embeddings, inputs.get("labels"))
        check_loss(loss, self.state.global_step + 1, inputs.get("rows"), self._data())
        return (loss, embeddings) if return_outputs else loss

    def _data(self) -> Any:
        return getattr(self.train_dataset, "data", None)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        """transformers' step, then the gradients checked before the optimiser may apply them (fp16: its grad
        scaler skips overflowing steps itself)."""
        rows = inputs.get("rows")
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not self.args.fp16:
            check_gradients(model, self.state.global_step + 1, rows, self._data())
        return loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        return EpochSampler(len(train_dataset if train_dataset is not None else self.train_dataset),
                            self.sampler_seed)

    def create_optimizer(self, model: Any = None) -> Any:
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = param_groups(opt_model, self.args.learning_rate, self.lr_mapping, self.args.weight_decay,
                                  set(self.get_decay_parameter_names(opt_model)))
            cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = cls(groups, **kwargs)
        return self.optimizer

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval") -> Any:
        if self.evaluator is None:
            return {}
        was_training = self.model.training
        result = self.evaluator(self.model)
        self.model.train(was_training)
        metrics = {f"{metric_key_prefix}_{k}": float(v) for k, v in result["metrics"].items() if v is not None}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        if self.args.should_save:
            self.model.save(output_dir or self.args.output_dir, overwrite="model")

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        _resume_guard(super()._load_optimizer_and_scheduler, checkpoint, "optimizer.pt / scheduler.pt")

    def _load_rng_state(self, checkpoint: str | None) -> None:
        _resume_guard(super()._load_rng_state, checkpoint, "rng_state.pth")

    def _load_scaler(self, checkpoint: str | None) -> None:
        _resume_guard(super()._load_scaler, checkpoint, "scaler.pt")

    def _load_callback_state(self) -> None:
        _resume_guard(lambda _: super(PipelineTrainer, self)._load_callback_state(), None, "trainer_state.json")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        from stpipe.formats.st import load

        saved = load(resume_from_checkpoint, device="cpu")
        (model or self.model).load_state_dict(saved.state_dict())


def training_arguments(s: Mapping[str, Any], output_dir: Path, device: str | None) -> TrainingArguments:
    """transformers' TrainingArguments from the checked settings."""
    return TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=s["batch_size"], num_train_epochs=s["epochs"],
        max_steps=s["max_steps"] or -1, learning_rate=s["learning_rate"], warmup_steps=s["warmup_ratio"],
        weight_decay=s["weight_decay"], lr_scheduler_type=s["lr_scheduler"], seed=s["seed"],
        gradient_accumulation_steps=s["gradient_accumulation_steps"],
        max_grad_norm=s["max_grad_norm"] if s["max_grad_norm"] is not None else 0.0,
        logging_steps=s["logging_steps"], eval_strategy="steps" if s["eval_steps"] else "no",
        eval_steps=s["eval_steps"], save_strategy="steps" if s["save_steps"] else "no",
        save_steps=s["save_steps"] or 500, save_total_limit=s["save_total_limit"],
        bf16=s["precision"] == "bf16", fp16=s["precision"] == "fp16", report_to="none",
        remove_unused_columns=False, dataloader_pin_memory=False, disable_tqdm=True,
        use_cpu=device == "cpu")


def _resume_guard(load: Any, checkpoint: str | None, files: str) -> None:
    """Run one of Trainer's resume loaders; a damaged or foreign file is a CommandError saying what to do — never
    torch's raw error (whose advice, to turn ``weights_only`` off, would run the file's code)."""
    import pickle

    try:
        load(checkpoint)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError, TypeError) as exc:
        text = str(exc)
        why = ("torch's safe loader (weights_only=True) refused it: it holds objects other than tensors and numbers"
               if "weights_only" in text or isinstance(exc, pickle.UnpicklingError)
               else f"{type(exc).__name__}: {(text.splitlines() or [''])[0][:200]}")
        where = checkpoint or "the checkpoint"
        raise CommandError(f"cannot resume from {where}: its {files} is damaged or was not written by this training "
                           f"({why}). Delete {where} to resume from the checkpoint before it, or train into a new "
                           "out=DIR; never load such a file with weights_only=False") from None


def _step_of(checkpoint: Path) -> int:
    """The ``global_step`` of a checkpoint's ``trainer_state.json``; a CommandError when it is damaged."""
    import json

    f = checkpoint / "trainer_state.json"
    try:
        step = json.loads(f.read_text(encoding="utf-8"))["global_step"]
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError(f"global_step is {step!r}, not a step number")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot resume from {checkpoint}: {f.name} is damaged ({type(exc).__name__}: "
                           f"{(str(exc).splitlines() or [''])[0][:200]}). Delete {checkpoint} to resume from the "
                           "checkpoint before it, or train into a new out=DIR") from None
    return step


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (Trainer writes ``trainer_state.json`` last), if any; its
    ``trainer_state.json`` must be readable (a CommandError saying what to do otherwise)."""
    done = [d for d in output_dir.glob("checkpoint-*") if d.name.split("-")[-1].isdigit()
            and (d / "trainer_state.json").is_file()]
    newest = max(done, key=lambda d: int(d.name.split("-")[-1]), default=None)
    if newest is not None:
        _step_of(newest)
    return newest


def drop_incomplete(output_dir: Path, after: int) -> None:
    """Remove the checkpoints a killed run left unfinished or beyond ``after`` (written by this trainer; a resumed
    run writes them again)."""
    import shutil

    for d in output_dir.glob("checkpoint-*"):
        n = d.name.split("-")[-1]
        if n.isdigit() and int(n) > after and d.is_dir():
            shutil.rmtree(d)
