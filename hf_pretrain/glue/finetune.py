"""Fine-tune a pretrained checkpoint on a GLUE task with the stock Trainer, over several seeds."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import statistics
from collections.abc import Sequence

from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)

from ..errors import BadInput, HfPretrainError
from ..hub.model_card import write_model_card
from ..hub.report import glue_bar_chart
from ..models.loading import check_vocabulary, checkpoint_error, longest_sequence
from ..runtime.hub_access import require_hub
from .adaptation import freeze_all_but, lora_model, save_adapted
from .arguments import GlueArguments
from .score import glue_score, task_score
from .tasks import GLUE_TASKS, GlueTask, glue_metrics, load_glue

logger = logging.getLogger(__name__)


def tokenize_glue(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> DatasetDict:
    """Tokenize single sentences or pairs, truncated to ``max_seq_length``; padding is left to the collator."""

    def tokenize(batch):
        texts = [batch["sentence1"]] + ([batch["sentence2"]] if "sentence2" in batch else [])
        return tokenizer(*texts, truncation=True, max_length=max_seq_length)

    text_columns = [c for c in data["train"].column_names if c.startswith("sentence")]
    return data.map(tokenize, batched=True, remove_columns=text_columns, desc="Tokenizing")


def usable_length(model_name_or_path: str, requested: int, trust_remote_code: bool = False) -> int:
    """``--max_seq_length``, capped (with a log line, as run_glue.py caps it at the tokenizer's maximum) at what the
    checkpoint's position table takes: past it, the embedding lookup fails inside the first forward pass."""
    require_hub(f"--model_name_or_path {model_name_or_path}", "pass a local checkpoint folder", name=model_name_or_path)
    try:
        config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise checkpoint_error(model_name_or_path, err, True) from None
    longest = longest_sequence(config)
    if longest is None or requested <= longest:
        return requested
    logger.warning("--max_seq_length %d is longer than %s's position embeddings take (%d tokens): using %d",
                   requested, model_name_or_path, longest, longest)
    return longest


def load_classifier(
    task: GlueTask, model_name_or_path: str, from_scratch: bool, trust_remote_code: bool = False,
    use_safetensors: bool = True,
) -> tuple[PreTrainedModel, list[str]]:
    """The checkpoint with a fresh classification head, or (``from_scratch``) its architecture, randomly
    initialized; and the names of the parameters the checkpoint did not provide (the task head)."""
    label_names = task.labels or ("score",)
    overrides = dict(
        num_labels=task.num_labels,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        problem_type="regression" if task.is_regression else "single_label_classification",
    )
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            model_name_or_path, use_safetensors=use_safetensors, trust_remote_code=trust_remote_code,
            output_loading_info=True, **overrides
        )
        if from_scratch:  # the same architecture, every weight drawn afresh; the head is the same parameters
            model = AutoModelForSequenceClassification.from_config(model.config, trust_remote_code=trust_remote_code)
        return model, sorted(info["missing_keys"])
    except (OSError, ValueError) as err:
        raise checkpoint_error(model_name_or_path, err, use_safetensors) from None


def finetune_one_seed(
    task: GlueTask,
    data: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    glue_args: GlueArguments,
    training_args: TrainingArguments,
    seed: int,
) -> tuple[Trainer, dict[str, float]]:
    """Train on ``data['train']`` (every weight, a linear probe or LoRA, as ``glue_args.adaptation`` says),
    evaluate every other split, save the classifier; returns the eval metrics named ``<split>_<metric>``
    (``validation_accuracy``, ``validation_matched_accuracy``, ...)."""
    set_seed(seed)  # the classification head's initialization and the data order both come from the seed
    model, head = load_classifier(task, glue_args.model_name_or_path, glue_args.from_scratch,
                                  glue_args.trust_remote_code, glue_args.use_safetensors)
    check_vocabulary(model, tokenizer, f"--model_name_or_path {glue_args.model_name_or_path}")
    if glue_args.adaptation == "linear_probe":
        freeze_all_but(model, head)
    elif glue_args.adaptation == "lora":
        model = lora_model(model, head, glue_args.lora_r, glue_args.lora_alpha, glue_args.lora_dropout,
                           glue_args.lora_target_modules)
    args = dataclasses.replace(training_args, seed=seed, output_dir=os.path.join(training_args.output_dir, f"seed_{seed}"))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=lambda p: glue_metrics(task, p.predictions, p.label_ids),
    )
    trainer.train()
    metrics: dict[str, float] = {}
    for split in data:
        if split != "train":
            result = trainer.evaluate(data[split], metric_key_prefix=split)
            metrics.update({
                k: v for k, v in result.items()
                if k.startswith(f"{split}_") and not k.endswith(("runtime", "per_second", "loss", "epoch"))
            })
    if trainer.is_world_process_zero():
        save_adapted(trainer.model, args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
    return trainer, metrics


def summarize_seeds(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over the seeds (std 0 for a single seed); a seed whose
    metric is undefined (nan) makes both nan, where ``statistics.stdev`` would raise from inside its arithmetic."""
    summary = {}
    for name in runs[0]:
        values = [run[name] for run in runs]
        if any(math.isnan(value) for value in values):
            summary[name] = {"mean": math.nan, "std": math.nan}
        else:
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[name] = {"mean": statistics.fmean(values), "std": spread}
    return summary


def write_glue_results(
    output_dir: str, task: GlueTask, model_name_or_path: str, seeds: Sequence[int], runs: Sequence[dict[str, float]],
    from_scratch: bool = False,
) -> dict:
    """``glue_results.json`` (every seed and the summary) and ``glue_results.md`` (a table: mean ± std)."""
    summary = summarize_seeds(runs)
    results = {
        "task": task.name,
        "model_name_or_path": model_name_or_path,
        "initialization": "random" if from_scratch else "pretrained",
        "seeds": list(seeds),
        "runs": [{"seed": seed, **run} for seed, run in zip(seeds, runs)],
        "summary": summary,
        "score": task_score(task.name, summary),
    }
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "glue_results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    init = "random init" if from_scratch else "pretrained"
    lines = [
        f"| task | model | seeds | {' | '.join(summary)} |",
        "|---|---|---|" + "---|" * len(summary),
        f"| {task.folder} | {model_name_or_path} ({init}) | {len(seeds)} | "
        + " | ".join(f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}" for s in summary.values())
        + " |",
    ]
    with open(os.path.join(output_dir, "glue_results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return results


def tasks_to_run(glue_args: GlueArguments) -> tuple[list[GlueTask], list[str]]:
    """The tasks to fine-tune and those ``--task_name all`` found no folder for in ``--glue_dir`` (listed as missing,
    never skipped silently). A task named explicitly must be there (its reader says so if not)."""
    tasks = [GLUE_TASKS[name] for name in glue_args.task_names]
    if glue_args.task_name != "all" or not glue_args.glue_dir:
        return tasks, []
    present = [t for t in tasks if os.path.isdir(os.path.join(glue_args.glue_dir, t.folder))]
    return present, [t.name for t in tasks if t not in present]


def task_training_args(args: TrainingArguments, overrides: dict | None, output_dir: str) -> TrainingArguments:
    """The shared training arguments with the task's own (``--task_overrides``) and its output folder."""
    try:
        return dataclasses.replace(args, output_dir=output_dir, **(overrides or {}))
    except TypeError as err:
        raise HfPretrainError(f"--task_overrides: {err}") from None


def finetune_task(
    task: GlueTask, glue_args: GlueArguments, tokenizer: PreTrainedTokenizerBase, args: TrainingArguments,
) -> tuple[Trainer, dict]:
    """Read, tokenize and fine-tune one task over the seeds; each classifier is saved with its model card in
    ``<output_dir>/seed_<seed>`` and the task's ``glue_results.json``/``.md`` in ``output_dir``."""
    bad = BadInput(glue_args.on_bad_input)
    data = load_glue(task, glue_args.glue_dir, bad)
    if bad.counts:
        logger.warning("%s: %s", task.folder, bad.summary())
    if glue_args.max_train_samples:
        data["train"] = data["train"].select(range(min(glue_args.max_train_samples, len(data["train"]))))
    if glue_args.max_eval_samples:
        for split in data:
            if split != "train":
                data[split] = data[split].select(range(min(glue_args.max_eval_samples, len(data[split]))))
    max_seq_length = usable_length(glue_args.model_name_or_path, glue_args.max_seq_length, glue_args.trust_remote_code)
    data = tokenize_glue(data, tokenizer, max_seq_length)
    seeds = glue_args.seeds or [args.seed]
    runs = []
    for seed in seeds:
        trainer, metrics = finetune_one_seed(task, data, tokenizer, glue_args, args, seed)
        logger.info("%s seed %d: %s", task.folder, seed, metrics)
        runs.append(metrics)
        if trainer.is_world_process_zero():
            write_model_card(
                trainer.args.output_dir,
                title=f"{task.folder} classifier fine-tuned from {glue_args.model_name_or_path}",
                summary=f"Fine-tuned with hf_pretrain on GLUE {task.folder} "
                f"({'random initialization baseline' if glue_args.from_scratch else 'from the pretrained weights'}).",
                sections={"Fine-tuning": {
                    "task": task.folder, "adaptation": glue_args.adaptation, "training examples": len(data["train"]),
                    "seed": seed,
                    "epochs": args.num_train_epochs, "learning rate": args.learning_rate,
                    "batch size": args.per_device_train_batch_size, "max sequence length": max_seq_length,
                }},
                metrics=metrics,
                tags=["text-classification", "glue", task.name],
                pipeline_tag="text-classification",
            )
    results = {}
    if trainer.is_world_process_zero():
        results = write_glue_results(
            args.output_dir, task, glue_args.model_name_or_path, seeds, runs, glue_args.from_scratch
        )
    return trainer, results


def write_glue_table(output_dir: str, model_name_or_path: str, results: dict[str, dict], missing: list[str]) -> dict:
    """The GLUE table of a several-task run: ``glue_results.json`` (every task's results, the task scores, the
    GLUE score and the missing tasks) and ``glue_results.md``, one row per task."""
    score = glue_score({name: r["summary"] for name, r in results.items()})
    table = {"model_name_or_path": model_name_or_path, "tasks": results, "missing": missing, **score}
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "glue_results.json"), "w", encoding="utf-8") as f:
        json.dump(table, f, indent=2)
    glue_bar_chart({GLUE_TASKS[n].folder: v for n, v in score["task_scores"].items()}, score["average"],
                   os.path.join(output_dir, "glue_results.png"))
    with open(os.path.join(output_dir, "glue_results.md"), "w", encoding="utf-8") as f:
        f.write(glue_table_markdown(table))
    return table


def glue_table_markdown(table: dict) -> str:
    """One row per task (each metric's mean ± std over the seeds, the task's score), then the GLUE score."""
    lines = [f"GLUE dev, {table['model_name_or_path']}", "", "| task | metrics (mean ± std over seeds) | score |",
             "|---|---|---|"]
    for name, result in table["tasks"].items():
        metrics = ", ".join(
            f"{metric.removeprefix('validation_')} {100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
            for metric, s in result["summary"].items()
        )
        lines.append(f"| {GLUE_TASKS[name].folder} | {metrics} | {table['task_scores'][name]:.1f} |")
    if table["average"] is not None:
        over = ", ".join(GLUE_TASKS[n].folder for n in table["averaged_over"])
        lines.append(f"| **GLUE score** | mean over {len(table['averaged_over'])} tasks ({over}) | "
                     f"**{table['average']:.1f}** |")
    notes = []
    if table["left_out"]:
        notes.append("WNLI is reported but left out of the GLUE score, as BERT did.")
    if table["missing"]:
        notes.append(f"Missing (no folder in --glue_dir): {', '.join(GLUE_TASKS[n].folder for n in table['missing'])}.")
    return "\n".join(lines + ([""] + notes if notes else []) + ["", "![GLUE dev scores](glue_results.png)"]) + "\n"
