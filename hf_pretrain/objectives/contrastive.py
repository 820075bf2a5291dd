"""Contrastive sentence embeddings (SimCSE, Gao et al., 2021): ``--objective contrastive``.

Unsupervised, the rows are the corpus's sentences: each is encoded twice and the two dropout masks make its
positive, the batch's other sentences its negatives, scored by InfoNCE over cosine similarities at temperature
τ (0.05). Supervised, ``--pairs_file`` gives (sentence, positive[, hard negative]) rows, NLI-style. It continues
from any encoder checkpoint (``--model_name_or_path``), and the result is the stock base model (``BertModel``,
...), loadable in plain transformers and, with the pooling it was trained with, in sentence-transformers.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..data.sequences import flatten_sentences
from ..errors import HfPretrainError, located
from ..models.arguments import ModelArguments
from ..models.contrastive import POOLINGS, build_contrastive_model
from .base import Objective, StepMetrics
from .collators import DataCollatorForContrastive
from .metrics import ContrastiveMetrics
from .registry import register_objective

# Column names a pairs file may use: ours, and SimCSE's NLI file's.
PAIR_COLUMNS = {"sentence1": ("sentence1", "sent0"), "sentence2": ("sentence2", "sent1"),
                "negative": ("negative", "hard_neg")}


@dataclass
class ContrastiveArguments:
    """SimCSE's settings."""

    temperature: float = field(default=0.05, metadata={"help": "τ of the InfoNCE loss (SimCSE: 0.05)."})
    pooling: str = field(default="cls", metadata={"help": "Sentence vector: 'cls' (first token) or 'mean'."})
    pairs_file: str | None = field(
        default=None,
        metadata={"help": "Supervised SimCSE: a .jsonl, .csv or .tsv file of pairs with columns sentence1, sentence2 "
                  "and optionally negative (or SimCSE's sent0, sent1, hard_neg). Unset: the corpus's sentences, "
                  "unsupervised."},
    )
    contrastive_dropout: float | None = field(
        default=0.1,
        metadata={"help": "Dropout set on every dropout layer while training (SimCSE's augmentation: 0.1). Encoders "
                  "such as ModernBERT ship with none, which makes unsupervised SimCSE trivial. The saved config keeps "
                  "the model's own values."},
    )
    min_sentence_tokens: int = field(
        default=4, metadata={"help": "Unsupervised: corpus sentences shorter than this many tokens are left out."}
    )

    def __post_init__(self) -> None:
        if self.contrastive_dropout is not None and not 0 <= self.contrastive_dropout < 1:
            raise HfPretrainError("--contrastive_dropout must be in [0, 1)")
        if not self.temperature > 0:
            raise HfPretrainError("--temperature must be positive")
        if self.pooling not in POOLINGS:
            raise HfPretrainError(f"--pooling must be one of {', '.join(POOLINGS)}, not '{self.pooling}'")
        if self.pairs_file is not None and not os.path.isfile(self.pairs_file):
            raise HfPretrainError(f"--pairs_file {self.pairs_file}: no such file")


def read_pairs(path: str) -> list[dict[str, str]]:
    """The rows of a pairs file, each with ``sentence1``, ``sentence2`` and maybe ``negative``; a row missing one
    of the first two is a one-line error naming its line."""
    if path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8") as f:
            raw = [(number, line) for number, line in enumerate(f, 1) if line.strip()]
        rows = []
        for number, line in raw:
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError:
                raise HfPretrainError(f"{located(path, number)}: not a JSON object") from None
    else:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(enumerate(csv.DictReader(f, delimiter="\t" if path.endswith(".tsv") else ","), 2))
    pairs = []
    for number, row in rows:
        pair = {}
        for name, aliases in PAIR_COLUMNS.items():
            value = next((row[a] for a in aliases if isinstance(row, dict) and row.get(a)), None)
            if value is None and name != "negative":
                raise HfPretrainError(f"{located(path, number)}: no '{name}' (or '{aliases[1]}') text in this row")
            if value is not None:
                pair[name] = value
        pairs.append(pair)
    if not pairs:
        raise HfPretrainError(f"{path}: no pairs in the file")
    if len({"negative" in p for p in pairs}) > 1:
        raise HfPretrainError(f"{path}: some rows have a negative and some do not; give every row one, or none")
    return pairs


@register_objective
class ContrastiveSentenceEmbeddings(Objective):
    """SimCSE, unsupervised (corpus sentences) or supervised (``--pairs_file``)."""

    name = "contrastive"
    title = "contrastive sentence embeddings (SimCSE)"
    head = "encoder"
    pipeline_tag = "sentence-similarity"
    card_tags = ("sentence-similarity", "feature-extraction", "simcse")
    arguments_class = ContrastiveArguments

    def __init__(self, args, seed, extra: ContrastiveArguments | None = None) -> None:
        if args.masking != "dynamic" or args.masking_unit != "token" or args.isolate_documents:
            raise HfPretrainError("--objective contrastive masks and packs nothing: drop --masking, --masking_unit "
                                  "and --isolate_documents")
        super().__init__(args, seed, extra or ContrastiveArguments())

    def build_rows(
        self, tokenized: Dataset, tokenizer: PreTrainedTokenizerBase, *, split: str, max_seq_length: int,
        source: str, num_proc: int | None = None, short_seq_probability: float = 0.1,
    ) -> Dataset:
        settings: ContrastiveArguments = self.extra
        if split == "train" and settings.pairs_file:
            pairs = read_pairs(settings.pairs_file)
            rows = {}
            for name, prefix in (("sentence1", ""), ("sentence2", "pair_"), ("negative", "negative_")):
                if name in pairs[0]:
                    rows[f"{prefix}input_ids"] = tokenizer([p[name] for p in pairs], truncation=True,
                                                           max_length=max_seq_length)["input_ids"]
            return Dataset.from_dict(rows)
        # Unsupervised (and the validation split of either form): one row per corpus sentence.
        tokens, sentence_offsets, _ = flatten_sentences(tokenized)
        body = max_seq_length - 2
        rows = [[tokenizer.cls_token_id, *tokens[start:min(end, start + body)].tolist(), tokenizer.sep_token_id]
                for start, end in zip(sentence_offsets[:-1], sentence_offsets[1:])
                if end - start >= settings.min_sentence_tokens]
        return Dataset.from_dict({"input_ids": rows})

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForContrastive:
        return DataCollatorForContrastive(tokenizer)

    def build_model(
        self, model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
    ) -> PreTrainedModel:
        settings: ContrastiveArguments = self.extra
        return build_contrastive_model(model_args, tokenizer, max_seq_length, temperature=settings.temperature,
                                       pooling=settings.pooling, dropout=settings.contrastive_dropout)

    def step_metrics(self) -> StepMetrics:
        return ContrastiveMetrics()

    def card_rows(self) -> dict[str, Any]:
        settings: ContrastiveArguments = self.extra
        data = (f"supervised pairs from {settings.pairs_file}" if settings.pairs_file else
                "unsupervised: each corpus sentence twice, two dropout masks")
        return {"positives": data, "temperature": settings.temperature, "pooling": settings.pooling,
                "dropout while training": settings.contrastive_dropout,
                "negatives": "the other sentences of the batch" + (" and the pairs' hard negatives"
                                                                    if settings.pairs_file else "")}
