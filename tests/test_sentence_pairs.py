"""Layer 2: sentence splitting, MLM packing and BERT's NSP pair construction."""

from __future__ import annotations

import re

import numpy as np
import pytest
from datasets import Dataset

from hf_pretrain.errors import HfPretrainError
from hf_pretrain.data.pairs import IS_NEXT, NOT_NEXT, build_nsp_pairs, truncated_lengths
from hf_pretrain.data.sentences import split_sentences
from hf_pretrain.data.sequences import pack_sequences, tokenize_documents

from .conftest import synthetic_documents

pytestmark = pytest.mark.unit


def test_split_sentences_hard_cases():
    text = "Dr. Smith paid $3.50 in the U.S. on Jan. 5. He left.\nA new paragraph"
    assert split_sentences(text) == ["Dr. Smith paid $3.50 in the U.S. on Jan. 5.", "He left.", "A new paragraph"]


@pytest.fixture(scope="module")
def tokenized(tokenizer):
    docs = synthetic_documents(n_documents=200, sentences=12, seed=1)
    return tokenize_documents(Dataset.from_dict({"text": [" ".join(d) for d in docs]}), tokenizer)


def _sentence_numbers(tokenizer, ids):
    """(doc, sentence) numbers named in a decoded segment, in order."""
    return [(int(d), int(s)) for d, s in re.findall(r"doc(\d+) sentence(\d+)", tokenizer.decode(ids))]


def test_nsp_pairs(tokenizer, tokenized):
    pairs = build_nsp_pairs(
        tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=64, seed=0
    )
    assert len(pairs) > 500
    # Label balance over five seeds' pairs (n > 2,500: one standard deviation of the mean is under 0.01).
    labels = np.concatenate([pairs["next_sentence_label"]] + [
        build_nsp_pairs(tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=64,
                        seed=seed)["next_sentence_label"] for seed in range(1, 5)
    ])
    assert len(labels) > 2500
    assert abs((labels == NOT_NEXT).mean() - 0.5) < 0.03
    checked = 0
    for row in pairs.select(range(300)):
        ids, types = row["input_ids"], row["token_type_ids"]
        assert len(ids) <= 64 and len(ids) == len(types)
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        first_sep = ids.index(tokenizer.sep_token_id)
        assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
        a = _sentence_numbers(tokenizer, ids[1:first_sep])
        b = _sentence_numbers(tokenizer, ids[first_sep + 1 : -1])
        checked += bool(a and b and len(ids) < 64)
        if a and b and len(ids) < 64:  # shorter than the maximum: nothing was trimmed
            if row["next_sentence_label"] == IS_NEXT:
                # B is the true continuation: same document, the sentence right after A's last one.
                assert b[0] == (a[-1][0], a[-1][1] + 1)
            else:
                assert b[0][0] != a[-1][0]
    assert checked > 50


def test_nsp_pairs_are_reproducible_from_seed(tokenizer, tokenized):
    kwargs = dict(cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=64)
    a = build_nsp_pairs(tokenized, seed=3, **kwargs)
    assert a["input_ids"] == build_nsp_pairs(tokenized, seed=3, **kwargs)["input_ids"]
    assert a["input_ids"] != build_nsp_pairs(tokenized, seed=4, **kwargs)["input_ids"]


def test_short_sequence_probability(tokenizer, tokenized):
    kwargs = dict(cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=64, seed=0)
    never = build_nsp_pairs(tokenized, short_seq_probability=0.0, **kwargs)
    always = build_nsp_pairs(tokenized, short_seq_probability=1.0, **kwargs)
    mean_len = lambda d: np.mean([len(x) for x in d["input_ids"]])  # noqa: E731
    assert mean_len(always) < 0.8 * mean_len(never)


def test_nsp_needs_two_documents(tokenizer):
    one = tokenize_documents(Dataset.from_dict({"text": ["One doc. Two sentences."]}), tokenizer)
    with pytest.raises(HfPretrainError, match="at least two documents"):
        build_nsp_pairs(one, cls_id=2, sep_id=3, max_seq_length=32)


@pytest.mark.parametrize(
    "len_a, len_b, max_tokens, expected",
    [(10, 5, 20, (0, 0)), (30, 5, 20, (15, 0)), (5, 30, 20, (0, 15)), (12, 12, 20, (2, 2)), (13, 12, 20, (3, 2)),
     (12, 13, 20, (2, 3)), (12, 12, 21, (1, 2))],
)
def test_truncation_matches_berts_loop(len_a, len_b, max_tokens, expected):
    a, b = len_a, len_b
    while a + b > max_tokens:  # BERT's truncate_seq_pair, on lengths
        if a > b:
            a -= 1
        else:
            b -= 1
    assert (len_a - a, len_b - b) == expected == truncated_lengths(len_a, len_b, max_tokens)


def test_mlm_packing(tokenizer, tokenized):
    packed = pack_sequences(tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, 32)
    ids = np.array(packed["input_ids"])
    assert ids.shape[1] == 32
    assert (ids[:, 0] == tokenizer.cls_token_id).all() and (ids[:, -1] == tokenizer.sep_token_id).all()
    n_tokens = sum(len(s) for doc in tokenized["sentences"] for s in doc) + len(tokenized)
    assert len(ids) == n_tokens // 30  # every full chunk of the stream, nothing padded


def test_sop_pairs_are_one_documents_segments_in_order_or_swapped(tokenizer, tokenized):
    from hf_pretrain.data.pairs import IN_ORDER, SWAPPED, build_sop_pairs

    kwargs = dict(cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, max_seq_length=64)
    pairs = build_sop_pairs(tokenized, seed=0, **kwargs)
    labels = np.concatenate([pairs["next_sentence_label"]] + [
        build_sop_pairs(tokenized, seed=seed, **kwargs)["next_sentence_label"] for seed in range(1, 5)])
    assert len(pairs) > 500 and len(labels) > 2500
    assert abs((labels == SWAPPED).mean() - 0.5) < 0.03  # one standard deviation is under 0.01
    checked = {IN_ORDER: 0, SWAPPED: 0}
    for row in pairs.select(range(400)):
        ids = row["input_ids"]
        first_sep = ids.index(tokenizer.sep_token_id)
        a = _sentence_numbers(tokenizer, ids[1:first_sep])
        b = _sentence_numbers(tokenizer, ids[first_sep + 1 : -1])
        if not (a and b and len(ids) < 64):  # trimmed pairs may lose a segment's sentence tags
            continue
        assert {d for d, _ in a + b} == {a[0][0]}  # never two documents
        first, second = (a, b) if row["next_sentence_label"] == IN_ORDER else (b, a)
        # The in-order segment pair is consecutive: the second starts right after the first ends.
        assert second[0] == (first[-1][0], first[-1][1] + 1)
        checked[row["next_sentence_label"]] += 1
    assert min(checked.values()) > 50
    assert build_sop_pairs(tokenized, seed=0, **kwargs)["input_ids"] == pairs["input_ids"]


@pytest.mark.faults
def test_a_tokenizer_left_truncating_by_an_earlier_call_does_not_cut_documents(tokenizer):
    """tokenizer(text, truncation=True, max_length=4) leaves the fast tokenizer's backend truncating; documents
    tokenized after it were cut to 4 tokens without a word (found when the test order changed)."""
    text = " ".join(synthetic_documents(1, sentences=3)[0])
    before = tokenize_documents(Dataset.from_dict({"text": [text]}), tokenizer)[0]["sentences"]
    tokenizer("a b c d e f g h", truncation=True, max_length=4)
    assert tokenizer.backend_tokenizer.truncation is not None  # what transformers leaves behind
    after = tokenize_documents(Dataset.from_dict({"text": [text]}), tokenizer)[0]["sentences"]
    assert after == before and all(len(sentence) > 4 for sentence in after)


def test_match_pairs_label_each_token_by_its_presence_in_the_other_segment(tokenizer, tokenized):
    from hf_pretrain.data.pairs import build_match_pairs
    from hf_pretrain.objectives.masking import word_start_table

    kwargs = dict(cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
                  word_starts=word_start_table(tokenizer).numpy(), max_seq_length=64)
    pairs = build_match_pairs(tokenized, seed=0, **kwargs)
    assert len(pairs) > 1000
    for row in pairs:
        ids, labels = np.array(row["input_ids"]), np.array(row["match_labels"])
        seps = np.flatnonzero(ids == tokenizer.sep_token_id)
        assert ids[0] == tokenizer.cls_token_id and len(seps) == 2 and seps[1] == len(ids) - 1
        a, b = ids[1 : seps[0]], ids[seps[0] + 1 : -1]
        assert 0 < len(a) <= 30 and 0 < len(b) <= 30  # each cut to half of the 61 tokens a row holds
        assert (labels[[0, seps[0], -1]] == -100).all()
        assert labels[1 : seps[0]].tolist() == np.isin(a, b).astype(int).tolist()
        assert labels[seps[0] + 1 : -1].tolist() == np.isin(b, a).astype(int).tolist()
    assert build_match_pairs(tokenized, seed=0, **kwargs)["input_ids"] == pairs["input_ids"]
    assert build_match_pairs(tokenized, seed=1, **kwargs)["input_ids"] != pairs["input_ids"]


def test_match_pairs_are_edited_copies_or_the_next_sentence_in_either_order():
    """Sentences of distinct token ids (one word each), so a segment's provenance shows in its ids."""
    from hf_pretrain.data.pairs import MATCH_MAX_EDIT_RATE, MATCH_NEIGHBOUR_PROBABILITY, build_match_pairs

    docs = [[list(range(1000 + 100 * (12 * d + s), 1000 + 100 * (12 * d + s) + 20)) for s in range(12)]
            for d in range(200)]
    pairs = build_match_pairs(Dataset.from_dict({"sentences": docs}), cls_id=1, sep_id=2,
                              word_starts=np.ones(300_000, bool), max_seq_length=64, seed=0)
    assert len(pairs) == 200 * 12
    neighbours, first_is_copy, kept = 0, 0, []
    for ids in pairs["input_ids"]:
        sep = ids.index(2)
        a, b = np.array(ids[1:sep]), np.array(ids[sep + 1 : -1])
        source = {(t - 1000) // 100 for t in np.concatenate([a, b])}
        assert len(source) <= 2 and max(source) - min(source) <= 1  # one sentence and its neighbour
        if not np.isin(a, b).any():
            neighbours += 1
            continue
        sentence_a, sentence_b = ((t - 1000) // 100 for t in (a, b))
        original, copy = (a, b) if (sentence_a == sentence_a[0]).all() and len(a) == 20 else (b, a)
        first_is_copy += copy is a
        kept.append(np.isin(original, copy).mean())
    n = len(pairs)
    assert abs(neighbours / n - MATCH_NEIGHBOUR_PROBABILITY) < 0.03  # one standard deviation is 0.008
    assert abs(first_is_copy / (n - neighbours) - 0.5) < 0.04
    # Each word is dropped or replaced with probability rate x 2/3, the rate uniform in [0, 0.6): 0.8 kept on average.
    assert abs(np.mean(kept) - (1 - MATCH_MAX_EDIT_RATE / 3)) < 0.02
    # All 20 words kept: the mean of (1 - 2 rate / 3) ** 20 over the rates, (1.5 / 21) (1 - 0.6 ** 21) / 0.6 = 0.119.
    assert abs(np.mean(np.array(kept) == 1) - 0.119) < 0.025


def test_match_pairs_refuse_a_corpus_without_two_sentence_documents(tokenizer):
    from hf_pretrain.data.pairs import build_match_pairs
    from hf_pretrain.objectives.masking import word_start_table

    single = tokenize_documents(Dataset.from_dict({"text": ["One sentence only."] * 3}), tokenizer)
    with pytest.raises(HfPretrainError, match="docs.txt: token-matching pairs need documents of at least two"):
        build_match_pairs(single, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
                          word_starts=word_start_table(tokenizer).numpy(), max_seq_length=64, source="docs.txt")


def test_pairs_pack_whole_into_rows_that_no_later_pair_fits(tokenizer, tokenized):
    from hf_pretrain.data.pairs import build_match_pairs, pack_pairs
    from hf_pretrain.objectives.masking import word_start_table

    pairs = build_match_pairs(tokenized, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
                              word_starts=word_start_table(tokenizer).numpy(), max_seq_length=128, seed=0)
    packed = pack_pairs(pairs, 128)
    assert packed.features == pairs.features
    # Cut each row at its [CLS]s: the pieces are exactly the pairs, each whole, once, with its labels alongside.
    originals = sorted((tuple(ids), tuple(labels)) for ids, labels in zip(pairs["input_ids"], pairs["match_labels"]))
    pieces, free = [], []
    for ids, labels in zip(packed["input_ids"], packed["match_labels"]):
        starts = [i for i, token in enumerate(ids) if token == tokenizer.cls_token_id] + [len(ids)]
        assert starts[0] == 0 and len(ids) <= 128
        pieces += [(tuple(ids[a:b]), tuple(labels[a:b])) for a, b in zip(starts, starts[1:])]
        free.append((128 - len(ids), [b - a for a, b in zip(starts, starts[1:])]))
    assert sorted(pieces) == originals
    # Largest fit: a row closes when no pair left fits it, so every pair of a later row is longer than its space.
    for i, (space, _) in enumerate(free):
        assert all(length > space for _, later in free[i + 1 :] for length in later), i
    fill = sum(len(ids) for ids in pairs["input_ids"]) / (128 * len(packed))
    assert fill > 0.93, fill  # in order (next fit) this fixture filled 0.874; largest fit 0.945

    with pytest.raises(ValueError, match="a pair of 70 tokens does not fit a row of 64"):
        pack_pairs(Dataset.from_dict({"input_ids": [[tokenizer.cls_token_id] * 70]}), 64)


def test_packed_pairs_are_scored_as_each_pair_alone():
    """The token-matching model on one row of three packed pairs (document ids, restarting positions) gives the
    MLM and matching losses of the three pairs as a padded batch: no pair sees another."""
    import torch
    from transformers import ModernBertConfig

    from hf_pretrain.constants import IGNORE_INDEX
    from hf_pretrain.models.architectures import architecture_for
    from hf_pretrain.models.heads import with_training_modules
    from hf_pretrain.models.token_match import TokenMatchTraining
    from hf_pretrain.objectives.collators import document_positions

    config = ModernBertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=48, pad_token_id=0, cls_token_id=2, sep_token_id=3,
                              bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    model = with_training_modules(TokenMatchTraining, architecture_for("modernbert").masked_lm)(config).eval()
    model.sparse_prediction = True  # logits at the masked tokens only, in the same order either way
    g = torch.Generator().manual_seed(0)
    pairs, match = [], []
    for a, b in ((5, 4), (3, 6), (7, 2)):
        ids = torch.cat([torch.tensor([2]), torch.randint(10, 300, (a,), generator=g), torch.tensor([3]),
                         torch.randint(10, 300, (b,), generator=g), torch.tensor([3])])
        pairs.append(ids)
        labels = torch.randint(0, 2, ids.shape, generator=g)
        labels[ids < 4] = IGNORE_INDEX
        match.append(labels)
    masked = [torch.where(torch.arange(len(ids)) == 2, ids, IGNORE_INDEX) for ids in pairs]  # one MLM target each

    row = torch.cat(pairs)[None]
    document_ids, positions = document_positions(row, 2)
    with torch.no_grad():
        packed = model(input_ids=row, document_ids=document_ids, position_ids=positions,
                       labels=torch.cat(masked)[None], match_labels=torch.cat(match)[None])
        width = max(len(ids) for ids in pairs)

        def padded(rows, value):
            return torch.stack([torch.nn.functional.pad(r, (0, width - len(r)), value=value) for r in rows])

        alone = model(input_ids=padded(pairs, 0), attention_mask=padded([torch.ones_like(r) for r in pairs], 0),
                      labels=padded(masked, IGNORE_INDEX), match_labels=padded(match, IGNORE_INDEX))
        crossing = model(input_ids=row, labels=torch.cat(masked)[None], match_labels=torch.cat(match)[None])
    assert packed.match_total == alone.match_total
    assert packed.match_loss.item() == pytest.approx(alone.match_loss.item(), abs=1e-5)
    assert packed.mlm_loss.item() == pytest.approx(alone.mlm_loss.item(), abs=1e-5)
    error = (packed.logits - alone.logits).abs().max().item()  # the MLM head's, at the three masked tokens
    assert error < 1e-4
    # Without isolation the pairs see each other: far more than the isolated error.
    assert (crossing.logits - packed.logits).abs().max().item() > max(100 * error, 1e-4)
