"""Layer 1: the masking arithmetic, statistically over >= 100k tokens and exactly under a seed."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset

from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.objectives.collators import DataCollatorForMaskedLM
from hf_pretrain.objectives.masking import (
    MaskingConfig,
    mask_dataset,
    mask_tokens,
    replacement_token_ids,
    special_token_ids,
)

pytestmark = pytest.mark.unit


def _batch(tokenizer, rows=1024, length=128, seed=0):
    """(rows, length) ids: [CLS] real tokens [SEP], with right padding on every other row."""
    generator = torch.Generator().manual_seed(seed)
    real = replacement_token_ids(tokenizer)
    ids = real[torch.randint(len(real), (rows, length), generator=generator)]
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids[::2, length // 2 :] = tokenizer.pad_token_id
    return ids


def _mask(tokenizer, ids, seed=0, **kwargs):
    return mask_tokens(
        ids,
        special_ids=special_token_ids(tokenizer),
        mask_token_id=tokenizer.mask_token_id,
        replacement_ids=replacement_token_ids(tokenizer),
        generator=torch.Generator().manual_seed(seed),
        config=MaskingConfig(**kwargs),
    )


def test_rates_over_100k_tokens(tokenizer):
    ids = _batch(tokenizer)
    inputs, labels = _mask(tokenizer, ids)
    eligible = ~torch.isin(ids, special_token_ids(tokenizer))
    assert eligible.sum() > 90_000
    selected = labels != IGNORE_INDEX
    rate = selected.sum() / eligible.sum()
    assert abs(rate - 0.15) < 0.005
    n = selected.sum()
    as_mask = (inputs[selected] == tokenizer.mask_token_id).sum() / n
    unchanged = (inputs[selected] == ids[selected]).sum() / n
    replaced = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.01
    # A random replacement can draw the original token (1/vocab), which counts as unchanged.
    assert abs(unchanged - 0.1) < 0.01
    assert abs(replaced - 0.1) < 0.01


@pytest.mark.parametrize("split", [(0.5, 0.5), (1.0, 0.0), (0.0, 0.0)])
def test_configurable_split(tokenizer, split):
    ids = _batch(tokenizer)
    inputs, labels = _mask(tokenizer, ids, mask_replace_prob=split[0], random_replace_prob=split[1], mlm_probability=0.3)
    selected = labels != IGNORE_INDEX
    assert abs(selected.sum() / (~torch.isin(ids, special_token_ids(tokenizer))).sum() - 0.3) < 0.01
    as_mask = (inputs[selected] == tokenizer.mask_token_id).float().mean()
    assert abs(as_mask - split[0]) < 0.01


def test_specials_and_padding_never_selected(tokenizer):
    ids = _batch(tokenizer)
    inputs, labels = _mask(tokenizer, ids, mlm_probability=0.9)
    special = torch.isin(ids, special_token_ids(tokenizer))
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(inputs[special], ids[special])


def test_labels_exactly_where_selected(tokenizer):
    ids = _batch(tokenizer)
    inputs, labels = _mask(tokenizer, ids)
    selected = labels != IGNORE_INDEX
    assert torch.equal(labels[selected], ids[selected])
    # Unselected tokens are untouched; every changed token is selected.
    assert torch.equal(inputs[~selected], ids[~selected])
    assert selected[inputs != ids].all()


def test_random_replacements_are_real_tokens(tokenizer):
    ids = _batch(tokenizer)
    inputs, labels = _mask(tokenizer, ids, mask_replace_prob=0.0, random_replace_prob=1.0, mlm_probability=0.5)
    selected = labels != IGNORE_INDEX
    assert not torch.isin(inputs[selected], special_token_ids(tokenizer)).any()
    # Drawn across the whole real vocabulary, not a corner of it.
    assert len(inputs[selected].unique()) > 0.9 * len(replacement_token_ids(tokenizer))


def test_same_seed_same_masks_other_seed_other_masks(tokenizer):
    ids = _batch(tokenizer, rows=64)
    a, b, c = (_mask(tokenizer, ids, seed=s) for s in (0, 0, 1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert torch.equal(ids, _batch(tokenizer, rows=64))  # the input is not modified


def _features(tokenizer, n=32):
    return [{"input_ids": row[row != tokenizer.pad_token_id].tolist()} for row in _batch(tokenizer, rows=n, length=40)]


def test_dynamic_collator_new_masks_each_epoch_reproducible_from_seed(tokenizer):
    features = _features(tokenizer)
    collator = DataCollatorForMaskedLM(tokenizer, seed=0)
    epoch1, epoch2 = collator(features), collator(features)
    assert not torch.equal(epoch1["labels"], epoch2["labels"])
    again = DataCollatorForMaskedLM(tokenizer, seed=0)
    assert torch.equal(again(features)["labels"], epoch1["labels"])
    # With an explicit generator the call is a pure function of its inputs.
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(collator(features, g1)["input_ids"], collator(features, g2)["input_ids"])


def test_dataloader_workers_mask_batches_as_the_main_process_does(tokenizer):
    """--dataloader_num_workers: rows with a sequence_id get masks keyed by their ids, not by a worker's stream, so
    batches are the same with any number of workers, and a resumed run's too."""
    features = [{**f, "sequence_id": i} for i, f in enumerate(_features(tokenizer, 48))]
    collator = DataCollatorForMaskedLM(tokenizer, seed=0)

    def batches(workers: int) -> list[dict]:
        loader = torch.utils.data.DataLoader(features, batch_size=8, collate_fn=collator, num_workers=workers,
                                             multiprocessing_context="fork" if workers else None)
        return list(loader)

    alone, workers = batches(0), batches(2)
    assert len(alone) == len(workers) == 6
    for a, b in zip(alone, workers):
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    assert all((batch["labels"] != IGNORE_INDEX).any() for batch in workers)


def test_collator_pads_and_builds_attention_mask(tokenizer):
    features = [{"input_ids": [2, 10, 11, 3]}, {"input_ids": [2, 12, 3]}]
    batch = DataCollatorForMaskedLM(tokenizer, pad_to_multiple_of=8)(features)
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]]
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()


def test_static_masks_fixed_across_epochs_and_reproducible(tokenizer):
    rows = Dataset.from_dict({"input_ids": [f["input_ids"] for f in _features(tokenizer, 50)]})
    masked = mask_dataset(rows, tokenizer, duplication_factor=3, seed=0)
    assert len(masked) == 150
    collator = DataCollatorForMaskedLM(tokenizer, seed=0)
    features = [masked[i] for i in range(8)]
    # Pre-masked rows are only padded: two epochs see the very same masks.
    assert torch.equal(collator(features)["input_ids"], collator(features)["input_ids"])
    # Each copy of a sequence has its own masks; the same seed rebuilds them exactly, whatever num_proc is.
    copies = [masked[i]["labels"] for i in (0, 1, 2)]  # a row's copies are stored together
    assert copies[0] != copies[1] and copies[1] != copies[2]
    assert mask_dataset(rows, tokenizer, duplication_factor=3, seed=0, num_proc=2)["labels"] == masked["labels"]
    assert mask_dataset(rows, tokenizer, duplication_factor=3, seed=1)["labels"] != masked["labels"]


@pytest.mark.faults
def test_masking_config_rejects_bad_probabilities(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability"):
        DataCollatorForMaskedLM(tokenizer, MaskingConfig(mlm_probability=0))
    with pytest.raises(ValueError, match="sum to at most 1"):
        DataCollatorForMaskedLM(tokenizer, MaskingConfig(mask_replace_prob=0.9, random_replace_prob=0.2))
