"""One training run: a checked :class:`~stpipe.training.config.TrainingPlan` and a built pipeline → checkpoints,
the final model, ``training.yaml``, ``metrics.jsonl``, ``training.png`` in the output directory; resumes from the
last complete checkpoint there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from stpipe.files import atomic_write
from stpipe.training.config import TrainingPlan, require_accelerate


def _evaluator(plan: TrainingPlan, batch_size: int) -> Any:
    if plan.eval_data is None:
        return None
    from stpipe.experiments.evaluators import evaluator_for

    ev = evaluator_for(plan.eval_data)
    return lambda model: ev(model, batch_size=batch_size, show_progress_bar=False)


def _write_config(out: Path, plan: TrainingPlan, extra: dict[str, Any]) -> None:
    import yaml

    data = {**plan.recorded(), **extra}  # environment values stay ${oc.env:…}
    with atomic_write(out / "training.yaml", "w", "utf-8") as fh:
        fh.write(yaml.safe_dump(data, sort_keys=False))


def finished_message(out: Path, done: dict[str, Any]) -> str:
    return (f"the training in {out} is already finished (step {done.get('global_step')}, same settings): nothing "
            f"to do; the model is {out / 'model'}. Raise training.max_steps or training.epochs to train on from "
            "the last checkpoint, or add overwrite=force to start over")


def fit(pipeline: Any, plan: TrainingPlan, output_dir: str | Path, *, device: str | None = None,
        extra_config: dict[str, Any] | None = None, start_clean: bool = False,
        claimed: bool = False) -> dict[str, Any]:
    """Train ``pipeline`` as ``plan`` says; returns ``{"main_metric", "metrics", "global_step", "model",
    "resumed_from"}`` (metrics: the final evaluation's, plus ``train_loss``). ``output_dir`` is taken for this
    run first (:func:`stpipe.training.out_dir.claim`, unless the caller did: ``claimed``): a run finished there
    with the same settings returns its recorded result (``"finished": True``) and changes nothing; other
    settings are refused unless ``start_clean``."""
    from stpipe.training.out_dir import claim, finish, target_of

    require_accelerate()
    out = Path(output_dir)
    if not claimed:
        done = claim(out, pipeline.definition, plan, start_clean=start_clean)
        if done is not None:
            print(finished_message(out, done), flush=True)
            return {**done, "finished": True, "resumed_from": None}
    from stpipe.training.callbacks import EarlyStopping, MetricsLog, mean_logged_loss, plot_metrics
    from stpipe.training.losses import build_loss
    from stpipe.training.trainer import (
        Collator,
        PipelineTrainer,
        Rows,
        drop_incomplete,
        freeze,
        last_checkpoint,
        training_arguments,
    )

    s = plan.settings
    _write_config(out, plan, extra_config or {})
    if s.get("freeze"):
        freeze(pipeline, list(s["freeze"]))
    loss = build_loss(plan.loss)
    resume = last_checkpoint(out)
    log = MetricsLog(out / "metrics.jsonl")
    step0 = 0
    if resume is not None:
        import json

        step0 = json.loads((resume / "trainer_state.json").read_text())["global_step"]
        print(f"resuming from {resume} (step {step0})", flush=True)
    drop_incomplete(out, step0)
    log.truncate(step0)
    main = None
    evaluator = _evaluator(plan, s["eval_batch_size"])
    callbacks: list[Any] = [log]
    if s.get("early_stopping_patience") and evaluator is not None:
        callbacks.append(EarlyStopping(_main_metric_name(plan), s["early_stopping_patience"],
                                       s["early_stopping_threshold"]))
    pipeline.train()
    trainer = PipelineTrainer(
        model=pipeline, args=training_arguments(s, out, device), train_dataset=Rows(plan.data.rows, plan.data),
        eval_dataset=Rows([()]) if evaluator is not None and s["eval_steps"] else None,
        data_collator=Collator(pipeline, plan.data.columns, plan.data.label_column, s.get("router_mapping") or {}),
        loss=loss, lr_mapping=s.get("learning_rate_mapping") or {}, evaluator=evaluator, seed=s["seed"],
        callbacks=callbacks)
    t0 = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - t0
    logged = mean_logged_loss(out / "metrics.jsonl")
    metrics: dict[str, float] = {"train_loss": float(output.training_loss if logged is None else logged),
                                 "global_step": float(output.global_step)}
    if evaluator is not None:
        result = evaluator(pipeline)
        main = result["main_metric"]
        metrics.update(result["metrics"])
        trainer.log({f"eval_{k}": v for k, v in result["metrics"].items()})
    pipeline.eval()
    if trainer.args.should_save:
        pipeline.save(out / "model", overwrite="model")
        print(plot_metrics(out / "metrics.jsonl", out / "training.png", main))
    result = {"main_metric": main if evaluator is not None else None, "metrics": metrics,
            "global_step": int(output.global_step), "model": str(out / "model"),
            "resumed_from": str(resume) if resume else None,
            "param_groups": [{"lr": g.get("initial_lr", g["lr"]), "weight_decay": g["weight_decay"],
                              "names": g.get("names", [])} for g in trainer.optimizer.param_groups],
            "train_seconds": round(seconds, 3), "trainer": trainer}
    if trainer.args.should_save:
        finish(out, result, target_of(plan))
    return result


def _main_metric_name(plan: TrainingPlan) -> str:
    return f"spearman_{plan.eval_data.get('main_similarity', 'cosine')}" if plan.eval_data.evaluator == "sts" \
        else "ndcg@10"
