"""Sentence embeddings trained contrastively (SimCSE, Gao et al., 2021) on any encoder transformers ships: the
stock base model (``BertModel``, ``ModernBertModel``, ...) plus a forward that pools each sentence and scores every
anchor against every candidate of the batch with InfoNCE. The checkpoint is the stock base model, with the files
that tell sentence-transformers how it pools.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import cross_entropy, normalize
from transformers import MODEL_MAPPING, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from ..errors import HfPretrainError
from .arguments import ModelArguments
from .export import ExportedPart, ExportsStock
from .loading import load_or_build

POOLINGS = ("cls", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sentence: the first token's hidden state, or the mean over its real tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def info_nce(anchors: torch.Tensor, candidates: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, logits)``: cosine similarities of each anchor to every candidate over ``temperature``; anchor ``i``'s
    positive is candidate ``i``, every other candidate of the batch a negative."""
    logits = normalize(anchors.float(), dim=-1) @ normalize(candidates.float(), dim=-1).T / temperature
    return cross_entropy(logits, torch.arange(len(anchors), device=logits.device)), logits


@dataclass
class ContrastiveOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (anchors, candidates): scaled cosine similarities


class ContrastiveTraining(ExportsStock):
    """Mixed into a stock base model class. Without ``pair_input_ids`` (unsupervised SimCSE) each sentence is
    encoded twice in one pass, and the two dropout masks make the positive pair; with them (supervised, NLI-style
    pairs), the pair's second sentence is the positive and ``negative_input_ids``, if given, hard negatives."""

    accepts_loss_kwargs = False
    temperature: float = 0.05
    pooling: str = "cls"

    def embed(self, input_ids, attention_mask, **kwargs) -> torch.Tensor:
        hidden = super().forward(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **kwargs)
        return pool(hidden.last_hidden_state, attention_mask, self.pooling)

    def forward(self, input_ids=None, attention_mask=None, pair_input_ids=None, pair_attention_mask=None,
                negative_input_ids=None, negative_attention_mask=None, return_loss: bool = True,
                **kwargs) -> ContrastiveOutput:
        # ``return_loss`` tells Trainer this model computes its loss without labels (CLIP's way), so that evaluation
        # reports it.
        if pair_input_ids is None:
            twice = self.embed(torch.cat([input_ids, input_ids]), torch.cat([attention_mask, attention_mask]))
            anchors, candidates = twice.chunk(2)
        else:
            anchors = self.embed(input_ids, attention_mask)
            candidates = self.embed(pair_input_ids, pair_attention_mask)
            if negative_input_ids is not None:
                candidates = torch.cat([candidates, self.embed(negative_input_ids, negative_attention_mask)])
        loss, logits = info_nce(anchors, candidates, self.temperature)
        return ContrastiveOutput(loss=loss, logits=logits.detach())

    def exported_parts(self) -> list[ExportedPart]:
        """The stock base model, with the files that tell sentence-transformers how it pools."""
        (part,) = super().exported_parts()
        return [dataclasses.replace(part, write_files=lambda folder: write_sentence_transformers_files(
            folder, self.config.hidden_size, self.pooling, getattr(self, "max_seq_length", 128)))]


def write_sentence_transformers_files(folder: str, width: int, pooling: str, max_seq_length: int) -> None:
    """``modules.json``, ``sentence_bert_config.json`` and ``1_Pooling/config.json``: sentence-transformers then
    loads the folder with the pooling it was trained with (plain transformers ignores them)."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    pooling_config = {"word_embedding_dimension": width, "pooling_mode_cls_token": pooling == "cls",
                      "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
                      "pooling_mode_mean_sqrt_len_tokens": False}
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    for path, value in (("modules.json", modules), ("sentence_bert_config.json", {"max_seq_length": max_seq_length}),
                        (os.path.join("1_Pooling", "config.json"), pooling_config)):
        with open(os.path.join(folder, path), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2)
            f.write("\n")


_TRAINING_CLASSES: dict[type, type] = {}


def contrastive_training_class(config) -> type[PreTrainedModel]:
    """The training-time subclass of the stock base model class of ``config``'s model type."""
    try:
        stock = MODEL_MAPPING[type(config)]
    except KeyError:
        raise HfPretrainError(f"--model_type {config.model_type}: transformers has no base model class for it") from None
    if stock not in _TRAINING_CLASSES:
        _TRAINING_CLASSES[stock] = type(f"Contrastive{stock.__name__}", (ContrastiveTraining, stock), {})
    return _TRAINING_CLASSES[stock]


def build_contrastive_model(
    args: ModelArguments, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, *, temperature: float,
    pooling: str, dropout: float | None = 0.1,
) -> PreTrainedModel:
    """The encoder to train, continued from ``--model_name_or_path`` (any encoder checkpoint: a masked-LM one
    gives its base model, the head left out) or fresh from :func:`build_config`.

    ``dropout`` is set on every dropout layer for training: it is SimCSE's augmentation, and encoders such as
    ModernBERT ship with none, which would make the two views of a sentence identical and the task trivial. The
    saved config keeps the model's own values. None leaves the layers as they are."""
    if pooling not in POOLINGS:
        raise HfPretrainError(f"--pooling must be one of {', '.join(POOLINGS)}, not '{pooling}'")
    model = load_or_build(args, tokenizer, max_seq_length, contrastive_training_class)
    model.temperature, model.pooling, model.max_seq_length = temperature, pooling, max_seq_length
    if dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout
    return model
