"""A pretraining objective of your own, in one file outside the package: replaced-token detection on a stock token
classifier (a much simplified ELECTRA, with uniformly random replacements instead of a generator's).

    accelerate launch recipes/pretrain_bert.py --config recipes/configs/debug.yaml \\
        --plugins examples/toy_objective.py --objective toy_replaced --replace_fraction 0.2 --output_dir /tmp/toy
    hf-pretrain flags --plugins examples/toy_objective.py --objective toy_replaced

Everything the recipe needs it declares here: its name, flags (``ToyArguments``, refused with any other objective),
rows, the pad value of the field its rows add, a collator that draws from a named random stream, the model (the
stock ``AutoModelForTokenClassification``, which saves as itself), and its metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import AutoModelForTokenClassification

from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.data.sequences import pack_sequences
from hf_pretrain.models.loading import load_or_build
from hf_pretrain.objectives import Objective, StepMetrics, register_objective
from hf_pretrain.objectives.collators import pad_batch
from hf_pretrain.rng import torch_generator

STREAM = "toy_replacements"  # this objective's own random stream, apart from every other


@dataclass
class ToyArguments:
    replace_fraction: float = field(default=0.15, metadata={"help": "Fraction of tokens replaced by a random one."})


@dataclass
class RandomReplacementCollator:
    """Pads rows and replaces ``fraction`` of their ordinary tokens by random ones; ``labels`` say which changed.
    A pure function of the features and the generator (by default keyed by the batch's sequence ids)."""

    pad_token_id: int
    vocab_size: int
    fraction: float
    seed: int = 0

    def __call__(self, features: list[dict[str, Any]], generator: torch.Generator | None = None):
        batch = pad_batch(features, self.pad_token_id, pad_values={"replaceable": 0})
        if generator is None:
            key = batch["sequence_id"].tolist() if "sequence_id" in batch else []
            generator = torch_generator(STREAM, self.seed, *key)
        replaceable = batch.pop("replaceable").bool()
        chosen = replaceable & (torch.rand(replaceable.shape, generator=generator) < self.fraction)
        random_ids = torch.randint(self.vocab_size, replaceable.shape, generator=generator)
        original = batch["input_ids"]
        batch["input_ids"] = torch.where(chosen, random_ids, original)
        labels = (batch["input_ids"] != original).long()
        batch["labels"] = torch.where(replaceable, labels, IGNORE_INDEX)
        return batch


class DetectionMetrics(StepMetrics):
    names = ("correct", "scored", "true_positive", "predicted", "replaced")

    def count(self, outputs, inputs) -> torch.Tensor:
        labels = inputs["labels"]
        scored = labels != IGNORE_INDEX
        predicted, gold = outputs["logits"].argmax(-1)[scored].bool(), labels[scored].bool()
        values = [(predicted == gold).sum(), scored.sum(), (predicted & gold).sum(), predicted.sum(), gold.sum()]
        return torch.stack([v.to(torch.float64) for v in values])

    def summarize(self, totals: dict[str, float]) -> dict[str, float]:
        return {"detection_accuracy": totals["correct"] / max(totals["scored"], 1),
                "replaced_recall": totals["true_positive"] / max(totals["replaced"], 1)}


@register_objective
class ToyReplacedTokenDetection(Objective):
    name = "toy_replaced"
    title = "toy replaced-token detection"
    pipeline_tag = "token-classification"
    card_tags = ("token-classification", "pretraining")
    arguments_class = ToyArguments
    head = "encoder"
    losses = ("detection",)

    def build_rows(self, tokenized, tokenizer, *, split, max_seq_length, source, num_proc=None,
                   short_seq_probability=0.1):
        rows = pack_sequences(tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length)
        specials = set(tokenizer.all_special_ids)
        return rows.map(lambda row: {"replaceable": [int(t not in specials) for t in row["input_ids"]]})

    def collator(self, tokenizer):
        return RandomReplacementCollator(tokenizer.pad_token_id, len(tokenizer), self.extra.replace_fraction,
                                         self.seed)

    def build_model(self, model_args, tokenizer, max_seq_length):
        def two_labels(config):  # original or replaced; None: the stock Auto class builds it
            config.num_labels = 2
            return None

        return load_or_build(model_args, tokenizer, max_seq_length, two_labels, fallback=AutoModelForTokenClassification)

    def step_metrics(self) -> StepMetrics:
        return DetectionMetrics()

    def card_rows(self) -> dict[str, Any]:
        return {"replaced": f"{self.extra.replace_fraction:.0%} of the tokens, uniformly at random"}
