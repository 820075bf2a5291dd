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
