"""Fine-tune a pretrained checkpoint on a GLUE task with the stock Trainer, over several seeds."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections.abc import Sequence

from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)

from ..models.loading import check_vocabulary, checkpoint_error
from .tasks import GlueTask, glue_metrics


def tokenize_glue(data: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_seq_length: int) -> DatasetDict:
    """Tokenize single sentences or pairs, truncated to ``max_seq_length``; padding is left to the collator."""

    def tokenize(batch):
        texts = [batch["sentence1"]] + ([batch["sentence2"]] if "sentence2" in batch else [])
        return tokenizer(*texts, truncation=True, max_length=max_seq_length)

    text_columns = [c for c in data["train"].column_names if c.startswith("sentence")]
    return data.map(tokenize, batched=True, remove_columns=text_columns, desc="Tokenizing")


def load_classifier(
    task: GlueTask, model_name_or_path: str, from_scratch: bool, trust_remote_code: bool = False,
    use_safetensors: bool = True,
):
    """The checkpoint with a fresh classification head, or (``from_scratch``) its architecture, randomly initialized."""
    label_names = task.labels or ("score",)
    overrides = dict(
        num_labels=task.num_labels,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        problem_type="regression" if task.is_regression else "single_label_classification",
    )
    try:
        if from_scratch:
            config = AutoConfig.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code, **overrides)
            return AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
        return AutoModelForSequenceClassification.from_pretrained(
            model_name_or_path, use_safetensors=use_safetensors, trust_remote_code=trust_remote_code, **overrides
        )
    except (OSError, ValueError) as err:
        raise checkpoint_error(model_name_or_path, err, use_safetensors) from None


def finetune_one_seed(
    task: GlueTask,
    data: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    model_name_or_path: str,
    training_args: TrainingArguments,
    seed: int,
    from_scratch: bool = False,
    trust_remote_code: bool = False,
    use_safetensors: bool = True,
) -> tuple[Trainer, dict[str, float]]:
    """Train on ``data['train']``, evaluate every other split, save the classifier; returns the eval metrics
    named ``<split>_<metric>`` (``validation_accuracy``, ``validation_matched_accuracy``, ...)."""
    set_seed(seed)  # the classification head's initialization and the data order both come from the seed
    model = load_classifier(task, model_name_or_path, from_scratch, trust_remote_code, use_safetensors)
    check_vocabulary(model, tokenizer, f"--model_name_or_path {model_name_or_path}")
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
    trainer.save_model()
    metrics: dict[str, float] = {}
    for split in data:
        if split != "train":
            result = trainer.evaluate(data[split], metric_key_prefix=split)
            metrics.update({
                k: v for k, v in result.items()
                if k.startswith(f"{split}_") and not k.endswith(("runtime", "per_second", "loss", "epoch"))
            })
    return trainer, metrics


def summarize_seeds(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of each metric over the seeds (std 0 for a single seed)."""
    return {
        name: {
            "mean": statistics.fmean(run[name] for run in runs),
            "std": statistics.stdev([run[name] for run in runs]) if len(runs) > 1 else 0.0,
        }
        for name in runs[0]
    }


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
