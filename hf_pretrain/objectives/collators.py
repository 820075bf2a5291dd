"""Data collators for the stock ``transformers.Trainer``: pad a list of features and, for MLM, mask them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ..constants import IGNORE_INDEX
from ..rng import Stream, torch_generator
from .masking import (
    MaskingConfig,
    mask_tokens,
    replacement_token_ids,
    special_token_ids,
    word_start_table,
    word_starts_from_ids,
)


# What token-level fields pad with, beyond input_ids (the tokenizer's pad id); any other field pads with 0. An
# objective with fields of its own passes their values as ``pad_values``.
PAD_VALUES = {"labels": IGNORE_INDEX, "word_ids": -1}


def pad_batch(
    features: Sequence[dict[str, Any]], pad_token_id: int, pad_to_multiple_of: int | None = None,
    pad_values: Mapping[str, int] | None = None,
) -> dict[str, torch.Tensor]:
    """Right-pad token-level fields to the longest feature and stack scalar ones.

    ``input_ids`` pad with ``pad_token_id``, the others with their value in ``pad_values`` over
    :data:`PAD_VALUES` (``labels`` -100, ``word_ids`` -1), or 0; the ``attention_mask`` is built from the lengths.
    """
    fills = {**PAD_VALUES, **(pad_values or {}), "input_ids": pad_token_id}
    lengths = np.array([len(f["input_ids"]) for f in features])
    width = int(lengths.max())
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    batch: dict[str, torch.Tensor] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if np.ndim(values[0]) == 0:
            batch[key] = torch.tensor(values)
            continue
        fill = fills.get(key, 0)
        array = np.full((len(features), width), fill, dtype=np.int64)
        for i, value in enumerate(values):
            if key == "word_ids":  # a fast tokenizer's word_ids() gives None for special tokens
                value = np.where(np.equal(np.asarray(value, dtype=object), None), fill, value)
            array[i, : lengths[i]] = value
        batch[key] = torch.from_numpy(array)
    batch["attention_mask"] = torch.from_numpy((np.arange(width)[None, :] < lengths[:, None]).astype(np.int64))
    return batch


def document_positions(input_ids: torch.Tensor, cls_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(document_ids, position_ids)`` of rows that pack several documents, each starting with ``[CLS]`` (as
    :func:`hf_pretrain.sequences.pack_sequences` lays them out with ``isolate_documents``): the document index
    within the row, and positions that restart at 0 with each document."""
    starts = input_ids == cls_token_id
    document_ids = torch.cumsum(starts, dim=1)
    positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
    first = torch.cummax(torch.where(starts, positions, 0), dim=1).values
    return document_ids, positions - first


def _process_rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0


@dataclass
class DataCollatorForMaskedLM:
    """Pads features and masks them dynamically for masked-LM pretraining: new masks every time a batch is drawn.

    ``masking.unit`` selects single tokens, whole words or SpanBERT spans; words come from the tokenizer's sub-word
    convention (``##``, ``Ġ``, ``▁``) or, where features carry them, from ``word_ids`` (as a fast tokenizer's
    ``word_ids()`` gives them, ``None`` for special tokens). With ``isolate_documents`` the batch also gets the
    ``document_ids`` and restarting ``position_ids`` of packed documents, so the model attends within each.

    Features that already carry ``labels`` (statically masked at data preparation, or a validation set masked once
    so that evaluations compare) are only padded. Other fields such as ``token_type_ids`` and
    ``next_sentence_label`` (NSP pairs) pass through, so the same collator feeds ``BertForPreTraining``.

    Randomness: ``__call__(features, generator)`` is a pure function of its inputs. Without a generator, features
    that carry a ``sequence_id`` (as the recipes' training sets do) are masked from a generator keyed by ``seed`` and
    the batch's sequence ids (stream ``DYNAMIC_MASKS``), so a batch gets the same masks whenever it is drawn, after
    a resume too; a new epoch draws new batches, hence new masks. Other features use the collator's own stream
    (``COLLATOR``), keyed by the process rank and the DataLoader worker id, running on across epochs.
    ``sequence_id`` stays in the batch.
    """

    tokenizer: PreTrainedTokenizerBase
    masking: MaskingConfig = MaskingConfig()
    pad_to_multiple_of: int | None = None
    isolate_documents: bool = False
    seed: int = 0
    pad_values: Mapping[str, int] = field(default_factory=dict)  # an objective's own fields (see pad_batch)
    _generator: torch.Generator | None = field(default=None, init=False, repr=False)
    _stream: tuple[int, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tokenizer.mask_token_id is None or self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a mask token and a pad token for masked-LM training")
        self._word_starts = None
        if self.masking.unit != "token":
            try:
                self._word_starts = word_start_table(self.tokenizer)
            except ValueError:  # then every batch must bring word_ids
                pass
        self._special_ids = special_token_ids(self.tokenizer)
        self._replacement_ids = replacement_token_ids(self.tokenizer)

    def default_generator(self) -> torch.Generator:
        """This process's and this DataLoader worker's masking stream."""
        worker = torch.utils.data.get_worker_info()
        stream = (_process_rank(), worker.id + 1 if worker is not None else 0)
        if self._generator is None or self._stream != stream:
            self._generator = torch_generator(Stream.COLLATOR, self.seed, *stream)
            self._stream = stream
        return self._generator

    def batch_generator(self, batch: dict[str, torch.Tensor]) -> torch.Generator:
        """The generator for a batch given no explicit one: keyed by its sequence ids, or the running stream."""
        if "sequence_id" in batch:
            return torch_generator(Stream.DYNAMIC_MASKS, self.seed, *batch["sequence_id"].tolist())
        return self.default_generator()

    def __call__(self, features: Sequence[dict[str, Any]], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        batch = pad_batch(features, self.tokenizer.pad_token_id, self.pad_to_multiple_of, self.pad_values)
        word_ids = batch.pop("word_ids", None)
        if self.isolate_documents:
            batch["document_ids"], batch["position_ids"] = document_positions(
                batch["input_ids"], self.tokenizer.cls_token_id
            )
        if "labels" in batch:
            return batch
        word_starts = None
        if self.masking.unit != "token":
            if word_ids is not None:
                word_starts = word_starts_from_ids(word_ids)
            elif self._word_starts is not None:
                word_starts = self._word_starts[batch["input_ids"]]
            else:
                raise ValueError(
                    f"{self.masking.unit} masking: this tokenizer's vocabulary shows no word boundaries; "
                    "add 'word_ids' to the features"
                )
        batch["input_ids"], batch["labels"] = mask_tokens(
            batch["input_ids"],
            special_ids=self._special_ids,
            mask_token_id=self.tokenizer.mask_token_id,
            replacement_ids=self._replacement_ids,
            config=self.masking,
            word_starts=word_starts,
            generator=generator if generator is not None else self.batch_generator(batch),
        )
        return batch


@dataclass
class DataCollatorForCausalLM:
    """Pads rows and labels them for next-token prediction (the model shifts the labels itself, as every
    ``*ForCausalLM`` does); padding is never a target.

    With ``isolate_documents`` (rows packed as ``[CLS] document [SEP] [CLS] ...``), position ids restart at each
    document's ``[CLS]`` and no padding mask is passed, so the stock model attends causally within each document
    only; a document's first token is not a target (nothing before it is its own). With ``prefix_lm`` (rows of
    full sentences, not isolated) each row gets a prefix length, uniform in ``[1, n - 1]`` for a row of ``n``
    tokens (``prefix_lengths``): the prefix is attended in both directions and only the tokens after it are
    targets.

    ``__call__(features, generator)`` is a pure function of its inputs; without a generator, prefix lengths come
    from one keyed by ``seed`` and the batch's ``sequence_id`` (stream ``PREFIX_LENGTHS``), so a resumed run draws the
    same ones, or from a running stream per process and worker (``PREFIX_LENGTHS_RUNNING``).
    """

    tokenizer: PreTrainedTokenizerBase
    isolate_documents: bool = False
    prefix_lm: bool = False
    seed: int = 0
    _generator: torch.Generator | None = field(default=None, init=False, repr=False)

    def batch_generator(self, batch: dict[str, torch.Tensor]) -> torch.Generator:
        if "sequence_id" in batch:
            return torch_generator(Stream.PREFIX_LENGTHS, self.seed, *batch["sequence_id"].tolist())
        if self._generator is None:
            worker = torch.utils.data.get_worker_info()
            self._generator = torch_generator(Stream.PREFIX_LENGTHS_RUNNING, self.seed, _process_rank(),
                                              worker.id + 1 if worker is not None else 0)
        return self._generator

    def __call__(self, features: Sequence[dict[str, Any]], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        batch = pad_batch(features, self.tokenizer.pad_token_id)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        if self.prefix_lm:
            lengths = batch["attention_mask"].sum(1).clamp(min=2)
            draws = torch.rand(len(lengths), generator=generator or self.batch_generator(batch))
            prefix = 1 + (draws * (lengths - 1)).long()  # in [1, n - 1]: at least one token on each side
            labels = labels.masked_fill(torch.arange(labels.shape[1])[None, :] < prefix[:, None], IGNORE_INDEX)
            batch["prefix_lengths"] = prefix
        elif self.isolate_documents:
            _, positions = document_positions(batch["input_ids"], self.tokenizer.cls_token_id)
            labels = labels.masked_fill(positions == 0, IGNORE_INDEX)
            batch["position_ids"] = positions
            # Padding sits at the end, where causal attention never reaches from a real token.
            del batch["attention_mask"]
        batch["labels"] = labels
        return batch


@dataclass
class DataCollatorForContrastive:
    """Pads each sentence field of the rows: ``input_ids`` (the anchors; alone, unsupervised SimCSE encodes them
    twice), and where rows carry them ``pair_input_ids`` (positives) and ``negative_input_ids`` (hard negatives),
    each with its own attention mask. Deterministic: the randomness is the model's dropout."""

    tokenizer: PreTrainedTokenizerBase

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for prefix in ("", "pair_", "negative_"):
            if f"{prefix}input_ids" in features[0]:
                padded = pad_batch([{"input_ids": f[f"{prefix}input_ids"]} for f in features], self.tokenizer.pad_token_id)
                batch[f"{prefix}input_ids"] = padded["input_ids"]
                batch[f"{prefix}attention_mask"] = padded["attention_mask"]
        if "sequence_id" in features[0]:
            batch["sequence_id"] = torch.tensor([f["sequence_id"] for f in features])
        return batch
