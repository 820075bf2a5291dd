"""Model cards (``README.md`` with Hub metadata) for pretrained and fine-tuned checkpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml


def _table(rows: Mapping[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_model_card(
    output_dir: str,
    *,
    title: str,
    summary: str,
    sections: Mapping[str, Mapping[str, Any]],
    metrics: Mapping[str, float] | None = None,
    tags: list[str] | None = None,
    pipeline_tag: str | None = None,
) -> str:
    """Write ``<output_dir>/README.md``: Hub metadata, a summary, one table per section, the metrics, usage."""
    metadata = {"library_name": "transformers", "tags": ["hf-pretrain", *(tags or [])]}
    if pipeline_tag:
        metadata["pipeline_tag"] = pipeline_tag
    parts = ["---", yaml.safe_dump(metadata, sort_keys=False).strip(), "---", "", f"# {title}", "", summary, ""]
    for heading, rows in sections.items():
        parts += [f"## {heading}", "", _table({k: _fmt(v) for k, v in rows.items()}), ""]
    if metrics:
        parts += ["## Evaluation", "", _table({k: _fmt(v) for k, v in metrics.items()}), ""]
    parts += [
        "## Usage",
        "",
        "The folder is a standard `save_pretrained` checkpoint (safetensors weights); plain `transformers` loads it:",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")',
        'model = AutoModel.from_pretrained("<this folder or repo>")',
        "```",
        "",
        "Made with [hf_pretrain](https://github.com/hf-pretrain/hf_pretrain).",
        "",
    ]
    path = os.path.join(output_dir, "README.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path


def write_pretraining_card(
    output_dir: str,
    *,
    config,
    parameters: int,
    trainer,
    objective: str,
    objective_rows: Mapping[str, Any],
    data_args,
    corpus: str,
    tokenizer: str,
    n_documents: int,
    n_sequences: int,
    metrics: Mapping[str, float],
    tags: list[str],
    pipeline_tag: str,
) -> str:
    """The card of a pretrained checkpoint: data, objective, architecture, training and final evaluation."""
    args = trainer.args
    return write_model_card(
        output_dir,
        title=f"{config.model_type.upper()} pretrained from scratch ({objective})",
        summary=f"A {config.num_hidden_layers}-layer, {config.hidden_size}-wide {config.model_type.upper()} "
        f"pretrained from random initialization with hf_pretrain on {corpus}.",
        sections={
            "Training data": {
                "corpus": corpus,
                "training documents": n_documents,
                "training sequences": n_sequences,
                "max sequence length": data_args.max_seq_length,
                "tokenizer": tokenizer,
            },
            "Objective": {"objective": objective, **objective_rows},
            "Model": {
                **{k: getattr(config, k) for k in (
                    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"
                )},
                "parameters": parameters,
                # What a sequence classifier fine-tuned from the checkpoint reads, where the architecture has a choice.
                **({"classifier pooling": config.classifier_pooling} if hasattr(config, "classifier_pooling") else {}),
            },
            "Training": {
                "steps": trainer.state.global_step,
                "tokens seen (non-padding)": int(trainer.state.num_input_tokens_seen)
                if trainer.args.include_num_input_tokens_seen not in ("no", False) else "not counted",
                "batch size (global)": args.per_device_train_batch_size * args.gradient_accumulation_steps
                * args.world_size,
                "optimizer": "Muon (the blocks' matrices) and AdamW (the rest)" if getattr(trainer, "use_muon", False)
                else getattr(args.optim, "value", args.optim),
                "learning rate": args.learning_rate,
                "schedule": f"{args.lr_scheduler_type.value}, warmup {args.warmup_steps}",
                "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
                "attention": getattr(config, "_attn_implementation", None) or "the model's default",
                "compiled": compiled(trainer),
                "seed": args.seed,
                **({"run report": "[report.md](report.md): figures and settings"}
                   if os.path.isfile(os.path.join(output_dir, "report.md")) else {}),
            },
        },
        # Only what describes the model: timings and counters stay in the logs.
        metrics={
            k.removeprefix("eval_"): v for k, v in metrics.items()
            if not k.endswith(("runtime", "per_second", "epoch", "tokens_seen"))
        },
        tags=[config.model_type, *tags],
        pipeline_tag=pipeline_tag,
    )


def compiled(trainer) -> str:
    """How the run compiled its model: not, as one graph, or block by block (``--torch_compile_regions``)."""
    if not trainer.args.torch_compile:
        return "no"
    regions = trainer.accelerator.state.dynamo_plugin.use_regional_compilation
    return "torch.compile, by region (one block's graph for all blocks)" if regions else "torch.compile, whole model"
