"""Masked-LM token selection (BERT, Devlin et al. 2019, section 3.1) as free functions of tensors and a generator.

One implementation serves dynamic masking (called by the collator on every batch) and static masking (called once
per copy at data preparation, as the original BERT data pipeline did with its duplication factor).
"""

from __future__ import annotations

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # the label value torch's cross-entropy (and every HF model) skips


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from several integers (seed, rank, worker, copy...), via numpy's SeedSequence."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """Ids that are never selected for masking nor drawn as random replacements ([PAD], [CLS], [SEP], [MASK], [UNK])."""
    return torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)


def replacement_token_ids(tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
    """The real vocabulary: every id a random replacement may take."""
    ids = torch.arange(len(tokenizer), dtype=torch.long)
    return ids[~torch.isin(ids, special_token_ids(tokenizer))]


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    special_ids: torch.Tensor,
    mask_token_id: int,
    replacement_ids: torch.Tensor,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select ``mlm_probability`` of the non-special tokens and corrupt them for masked-LM training.

    Of the selected tokens, ``mask_replace_prob`` become ``[MASK]``, ``random_replace_prob`` a random real token,
    and the rest stay as they are (BERT's 80/10/10: the model cannot tell which inputs to trust, so it must
    build a representation of every token). Returns ``(inputs, labels)``; labels are ``-100`` wherever a token was
    not selected. ``input_ids`` is not modified.
    """
    # (batch, seq)
    selectable = ~torch.isin(input_ids, special_ids)
    probability = torch.where(selectable, mlm_probability, 0.0)
    selected = torch.bernoulli(probability, generator=generator).bool()
    labels = torch.where(selected, input_ids, IGNORE_INDEX)

    # One uniform draw per token splits the selected ones into mask / random / keep.
    split = torch.rand(input_ids.shape, generator=generator)
    to_mask = selected & (split < mask_replace_prob)
    to_random = selected & (split >= mask_replace_prob) & (split < mask_replace_prob + random_replace_prob)

    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    draws = torch.randint(len(replacement_ids), (int(to_random.sum()),), generator=generator)
    inputs[to_random] = replacement_ids[draws]
    return inputs, labels


def mask_dataset(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    duplication_factor: int = 1,
    seed: int = 0,
    num_proc: int | None = None,
) -> Dataset:
    """Static masking: each sequence stored ``duplication_factor`` times, each copy with its own masks.

    The masks of a row depend only on ``seed``, the copy and the row's index, so they are the same whatever
    ``num_proc`` is, and on every run with the same seed. Adds a ``labels`` column.
    """
    special_ids = special_token_ids(tokenizer)
    replacement_ids = replacement_token_ids(tokenizer)

    def mask_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        out: dict[str, list] = {key: [] for key in (*batch, "labels")}
        for row, index in enumerate(indices):
            ids = torch.as_tensor(batch["input_ids"][row], dtype=torch.long)[None]  # (1, seq)
            for copy in range(duplication_factor):
                # One generator per (row, copy): the masks do not depend on batching or num_proc.
                generator = torch.Generator().manual_seed(derive_seed(seed, index, copy))
                inputs, labels = mask_tokens(
                    ids,
                    special_ids=special_ids,
                    mask_token_id=tokenizer.mask_token_id,
                    replacement_ids=replacement_ids,
                    mlm_probability=mlm_probability,
                    mask_replace_prob=mask_replace_prob,
                    random_replace_prob=random_replace_prob,
                    generator=generator,
                )
                for key, values in batch.items():
                    out[key].append(inputs[0].tolist() if key == "input_ids" else values[row])
                out["labels"].append(labels[0].tolist())
        return out

    return dataset.map(
        mask_batch,
        batched=True,
        batch_size=1000,
        with_indices=True,
        num_proc=num_proc,
        desc=f"Static masking (x{duplication_factor})",
    )
