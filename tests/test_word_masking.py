"""Layer 1: whole-word and span masking, statistically over >= 100k tokens and exactly under a seed, for the
sub-word conventions of WordPiece (``##``), byte-level BPE (``Ġ``) and SentencePiece-style Unigram (``▁``)."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from hf_pretrain.constants import IGNORE_INDEX
from hf_pretrain.objectives.collators import DataCollatorForMaskedLM
from hf_pretrain.objectives.masking import (
    MaskingConfig,
    mask_dataset,
    mask_tokens,
    replacement_token_ids,
    select_spans,
    span_length_distribution,
    special_token_ids,
    word_start_table,
)

from .conftest import synthetic_documents

pytestmark = pytest.mark.unit

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _texts() -> list[str]:
    # Long made-up words force the sub-word split that whole-word masking is about.
    return [
        " ".join(sentence.replace("sentence", "sentencesegmentation") for sentence in doc)
        for doc in synthetic_documents(200, seed=3)
    ]


def _fast_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    if kind == "bpe":
        backend = Tokenizer(models.BPE(unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:  # unigram with SentencePiece's metaspace
        backend = Tokenizer(models.Unigram())
        backend.normalizer = normalizers.Lowercase()
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIALS, unk_token="[UNK]")
    backend.train_from_iterator(_texts(), trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[(t, backend.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module", params=["wordpiece", "bpe", "unigram"])
def any_tokenizer(request, tokenizer):
    return tokenizer if request.param == "wordpiece" else _fast_tokenizer(request.param)


def _encoded(tok, length=128):
    """>= 100k tokens of real sub-word splits: (ids, word_ids) padded to ``length``."""
    texts = _texts() * 5
    enc = tok(texts, truncation=True, max_length=length, padding="max_length", return_tensors="pt")
    word_ids = torch.tensor([[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(texts))])
    return enc["input_ids"], word_ids


def _mask(tok, ids, unit, seed=0, **kwargs):
    return mask_tokens(
        ids, special_ids=special_token_ids(tok), mask_token_id=tok.mask_token_id,
        replacement_ids=replacement_token_ids(tok), config=MaskingConfig(unit=unit, **kwargs),
        word_starts=word_start_table(tok)[ids], generator=torch.Generator().manual_seed(seed),
    )


def _word_number(ids, word_ids):
    """A per-row word number for every token (from the tokenizer's own word_ids) to check masks against."""
    return torch.where(word_ids >= 0, word_ids, -1 - torch.arange(ids.shape[1]))  # specials: their own word


@pytest.mark.parametrize("unit", ["whole_word", "span"])
def test_rate_and_80_10_10_over_100k_tokens(any_tokenizer, unit):
    tok = any_tokenizer
    ids, _ = _encoded(tok)
    inputs, labels = _mask(tok, ids, unit)
    eligible = ~torch.isin(ids, special_token_ids(tok))
    assert eligible.sum() > 100_000
    selected = labels != IGNORE_INDEX
    assert abs(selected.sum() / eligible.sum() - 0.15) < 0.006
    assert not selected[~eligible].any()
    as_mask = (inputs[selected] == tok.mask_token_id).float().mean()
    unchanged = (inputs[selected] == ids[selected]).float().mean()
    # Spans draw one decision per span: fewer, larger draws, so a wider tolerance.
    tolerance = 0.015 if unit == "whole_word" else 0.03
    assert abs(as_mask - 0.8) < tolerance and abs(unchanged - 0.1) < tolerance


@pytest.mark.parametrize("unit", ["whole_word", "span"])
def test_words_are_masked_whole(any_tokenizer, unit):
    """Every word the tokenizer reports (its word_ids) is either wholly selected or not at all."""
    tok = any_tokenizer
    ids, word_ids = _encoded(tok)
    _, labels = _mask(tok, ids, unit)
    selected = labels != IGNORE_INDEX
    words = _word_number(ids, word_ids)
    same_word = words[:, 1:] == words[:, :-1]
    assert (selected[:, 1:] == selected[:, :-1])[same_word].all()
    # The split is real: many words span several tokens.
    assert same_word[ids[:, 1:] != tok.pad_token_id].float().mean() > 0.03


def test_whole_words_from_word_ids_match_the_vocabulary_convention(tokenizer):
    """The word_ids path and the '##' table agree for WordPiece, so either can drive the collator."""
    enc = tokenizer(_texts()[:64], truncation=True, max_length=64)
    features = [{"input_ids": enc["input_ids"][i], "word_ids": enc.word_ids(i)} for i in range(64)]
    plain = [{"input_ids": f["input_ids"]} for f in features]
    collator = DataCollatorForMaskedLM(tokenizer, MaskingConfig(unit="whole_word"))
    with_ids = collator(features, torch.Generator().manual_seed(5))
    from_table = collator(plain, torch.Generator().manual_seed(5))
    assert "word_ids" not in with_ids
    assert torch.equal(with_ids["labels"], from_table["labels"])


def test_whole_word_masking_differs_from_token_masking(tokenizer):
    ids, word_ids = _encoded(tokenizer)
    words = _word_number(ids, word_ids)
    same_word = words[:, 1:] == words[:, :-1]
    _, labels = _mask(tokenizer, ids, "token")
    selected = labels != IGNORE_INDEX
    # Token masking splits words: the test above would fail for it.
    assert not (selected[:, 1:] == selected[:, :-1])[same_word].all()


def test_span_length_distribution_is_spanberts():
    probabilities = span_length_distribution(0.2, 10)
    assert len(probabilities) == 10 and probabilities.sum() == pytest.approx(1.0)
    mean = (probabilities * torch.arange(1, 11)).sum()
    assert float(mean) == pytest.approx(3.8, abs=0.01)  # the paper: "mean span length of 3.8"
    assert float(probabilities[1] / probabilities[0]) == pytest.approx(0.8)


def test_spans_whole_words_geometric_lengths_and_one_decision_each(tokenizer):
    ids, word_ids = _encoded(tokenizer, length=256)
    special = torch.isin(ids, special_token_ids(tokenizer))
    starts = word_start_table(tokenizer)[ids] | torch.nn.functional.pad(special[:, :-1], (1, 0), value=True)
    spans = select_spans(starts, ~special, 0.15, torch.Generator().manual_seed(2))
    inputs, labels = _mask(tokenizer, ids, "span", seed=2)
    assert torch.equal(spans >= 0, labels != IGNORE_INDEX)  # the same draws select the same spans

    lengths_in_words = []
    for row in range(ids.shape[0]):
        for span in spans[row].unique():
            if span < 0:
                continue
            at = spans[row] == span
            positions = at.nonzero().flatten()
            # Contiguous, but for the special tokens ([UNK]) that are never masked.
            assert special[row, positions[0] : positions[-1] + 1][~at[positions[0] : positions[-1] + 1]].all()
            lengths_in_words.append(len(set(word_ids[row][at].tolist())))
            # One mask / random / keep decision per span: all [MASK] or none.
            masked = inputs[row][at] == tokenizer.mask_token_id
            assert masked.all() or not masked.any()
    lengths = torch.tensor(lengths_in_words, dtype=torch.float)
    assert lengths.max() <= 10
    # Spans cut at a row's end or by an [UNK] are shorter, so a little under the distribution's 3.8.
    assert 3.3 < lengths.mean() < 3.9
    assert abs((lengths == 1).float().mean() - float(span_length_distribution()[0])) < 0.05


def test_span_masking_is_reproducible_and_meets_the_budget_on_average(tokenizer):
    ids, _ = _encoded(tokenizer)
    a, b, c = (_mask(tokenizer, ids, "span", seed=s)[1] for s in (0, 0, 1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    eligible = (~torch.isin(ids, special_token_ids(tokenizer))).sum(1)
    per_row = (a != IGNORE_INDEX).sum(1) / eligible
    # Rows land near the budget (within about one span), never far from it.
    assert (per_row - 0.15).abs().max() < 0.12


def test_static_whole_word_masking(tokenizer):
    ids, word_ids = _encoded(tokenizer, length=64)
    rows = Dataset.from_dict({"input_ids": [r[r != tokenizer.pad_token_id].tolist() for r in ids[:100]]})
    masked = mask_dataset(rows, tokenizer, MaskingConfig(unit="whole_word"), duplication_factor=2, seed=0)
    assert len(masked) == 200
    for i in range(0, 200, 2):
        labels = torch.tensor(masked[i]["labels"])
        words = _word_number(ids[i // 2, : len(labels)][None], word_ids[i // 2, : len(labels)][None])[0]
        selected = labels != IGNORE_INDEX
        assert (selected[1:] == selected[:-1])[words[1:] == words[:-1]].all()


def test_vocabulary_without_a_convention_needs_word_ids():
    backend = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "a": 5},
                                         unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                  cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    with pytest.raises(ValueError, match="word_ids"):
        word_start_table(tok)
    collator = DataCollatorForMaskedLM(tok, MaskingConfig(unit="whole_word"))
    with pytest.raises(ValueError, match="word_ids"):
        collator([{"input_ids": [2, 5, 5, 3]}])
    batch = collator([{"input_ids": [2, 5, 5, 3], "word_ids": [None, 0, 1, None]}])
    assert batch["labels"].shape == (1, 4)
