"""The preparation stage: normalization, each filter kept and dropped, exact and near duplicates, segmentation,
packing boundaries, document-disjoint splits, the fingerprint cache, the `hf-pretrain prepare` command, and the
recipes reading its output."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from hf_pretrain.prepare.cleaning import FILTERS, QualityFilters, normalize
from hf_pretrain.objectives.collators import document_positions
from hf_pretrain.prepare.dedup import EXACT, NEAR, Cluster, find_duplicates, jaccard, remove_duplicates
from hf_pretrain.prepare.disk_groups import DiskGroups
from hf_pretrain.prepare.pipeline import split_by_document
from hf_pretrain.data.sentences import split_sentences
from hf_pretrain.data.sequences import pack_sequences
from hf_pretrain.data.tokenizer import train_wordpiece_tokenizer

from .conftest import ROOT, run_cli, run_recipe

pytestmark = pytest.mark.component

SUBJECTS = ["The committee", "Our neighbour", "The old library", "A young engineer", "The river", "Every student"]
VERBS = ["reviewed", "described", "welcomed", "measured", "repaired", "remembered", "followed", "explained"]
OBJECTS = ["the annual budget", "a quiet garden", "the broken bridge", "several important letters",
           "the morning train", "a difficult question", "the northern mountains", "their favourite songs"]
ENDINGS = ["with great care", "before the winter", "in the evening", "without any help", "for the whole town",
           "and then went home", "that had been forgotten", "with the other members"]


def english(n_sentences: int = 8, seed: int = 0) -> str:
    """Plain English prose that passes every default filter."""
    rng = random.Random(seed)
    sentences = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}."
                 for _ in range(n_sentences)]
    return " ".join(sentences[:4]) + "\n" + " ".join(sentences[4:])


def test_normalization_repairs_unicode_and_strips_markup():
    raw = ("<p>The [[Eiffel Tower|tower]] {{cite web|url=x}} stands in '''Paris'''.</p>\n\n"
           "  BULLET::::- It doesnÃ¢â‚¬â„¢t   move &amp; never\tdid.\n== History ==\n")
    assert normalize(raw) == "The tower stands in Paris.\nIt doesn't move & never did.\nHistory"


def test_a_good_document_passes_every_filter():
    text = english()
    assert QualityFilters().reason_to_drop(text, len(split_sentences(text))) is None


DROPPED = {
    "too short": "The committee reviewed the budget. It was fine. Everyone agreed.",
    "too long": None,  # built below: over max_words
    "language": "Le comité a examiné le budget annuel avec beaucoup de soin avant l'hiver. " * 8,
    "mean word length": "a b c d e f g h i j k l m n o p q r s t u v w x y z the of and to. " * 4,
    "symbol ratio": english() + " " + " ".join(["#tag"] * 40),
    "lines ending in ellipsis": "\n".join(f"{s}..." for s in english(12).replace(".", "").split("\n")) * 3,
    "words without letters": english() + " " + " ".join(str(i) for i in range(60)),
    "too few stop words": " ".join(["Committees reviewed budgets carefully."] * 20),
    "digit ratio": english() + " " + "1234567890" * 60,
    "repeated lines": "\n".join([english(4, 1)] * 3 + [english(4, 2)]),
    "boilerplate lines": "\n".join([english(4, 3), "This site uses cookies. Read our cookie policy.",
                                    "Enable JavaScript to continue.", "Terms of use apply."]),
    "too few sentences": " ".join(english(8).replace(".", ",").split("\n")) + ".",
}


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_drops_its_case_keeps_good_text_and_can_be_switched_off(name):
    text = DROPPED[name] if DROPPED[name] is not None else english(3000)
    only = QualityFilters(max_words=20_000, skip_filters=[f for f in FILTERS if f != name])
    assert only.reason_to_drop(text, len(split_sentences(text))) == name
    good = english()
    assert only.reason_to_drop(good, len(split_sentences(good))) is None
    assert QualityFilters(skip_filters=list(FILTERS)).reason_to_drop(text, 0) is None


@pytest.mark.faults
def test_unknown_filter_name_is_refused():
    from hf_pretrain.errors import HfPretrainError

    with pytest.raises(HfPretrainError, match="unknown filter"):
        QualityFilters(skip_filters=["spam"])


def _variant(base: list[str], fraction: float, rng: random.Random) -> str:
    words = list(base)
    for i in rng.sample(range(len(words)), int(fraction * len(words))):
        words[i] = f"other{rng.randrange(10**6)}"
    return " ".join(words)


def test_exact_and_near_duplicates(tmp_path):
    rng = random.Random(0)
    base = [f"word{rng.randrange(3000)}" for _ in range(600)]
    original = " ".join(base)
    near = _variant(base, 0.01, rng)  # one word in a hundred changed
    far = _variant(base, 0.08, rng)
    assert jaccard(original, near) > 0.9 and jaccard(original, far) < 0.7  # around the 0.8 threshold
    texts = [original, original.upper() + " !", near, far, english()]
    found = find_duplicates(Dataset.from_dict({"text": texts}), str(tmp_path / "a"), threshold=0.8)
    assert found.removed.tolist() == [1, 2] and found.kinds.tolist() == [EXACT, NEAR]  # 1: equal up to case
    assert found.matches.tolist() == [0, 0]  # and punctuation; 2: above the threshold; 3: below it, kept
    assert (found.exact, found.near, found.clusters) == (1, 1, 1)
    assert found.largest == [Cluster(kept=0, size=2, example=1)]
    assert remove_duplicates(Dataset.from_dict({"text": texts}), found)["text"] == [original, far, english()]
    assert len(find_duplicates(Dataset.from_dict({"text": texts}), str(tmp_path / "b"), exact=False, near=False).removed) == 0


def test_duplicate_search_through_many_small_buckets_agrees_with_one_in_memory(tmp_path):
    """Bounded memory changes nothing: 2-record buckets (hundreds of files) give the result of a single bucket.
    The corpus has chains (a copy of a near-duplicate), exact copies and clusters of several sizes."""
    rng = random.Random(1)
    bases = [[f"w{rng.randrange(5000)}" for _ in range(200)] for _ in range(40)]
    texts, fractions = [" ".join(b) for b in bases], [None] * 40
    for _ in range(160):
        fractions.append(rng.choice([0.0, 0.01, 0.3]))  # a copy, J about 0.9, J about 0.2
        texts.append(_variant(rng.choice(bases), fractions[-1], rng))
    texts.append(texts[-2])  # a copy of a removed document: removed, counted in the cluster of the kept one
    fractions.append(0.0)
    documents = Dataset.from_dict({"text": texts})
    small = find_duplicates(documents, str(tmp_path / "small"), max_in_memory=2)
    large = find_duplicates(documents, str(tmp_path / "large"))
    for name in ("removed", "kinds", "matches"):
        assert getattr(small, name).tolist() == getattr(large, name).tolist()
    assert (small.clusters, small.largest) == (large.clusters, large.largest)
    assert len(os.listdir(tmp_path / "small" / "bands")) > 100
    removed = dict(zip(small.removed.tolist(), small.kinds.tolist()))
    assert all(removed.get(row) == EXACT for row, f in enumerate(fractions) if f == 0.0)
    similar = [row for row, f in enumerate(fractions) if f == 0.01]
    # 9 bands of 13 rows (threshold 0.8) make a pair at J = 0.9 a candidate with probability 0.93
    assert sum(removed.get(row) == NEAR for row in similar) >= 0.8 * len(similar)
    assert not any(row in removed for row, f in enumerate(fractions) if f in (None, 0.3))
    for row, match in zip(small.removed.tolist(), small.matches.tolist()):
        assert match < row and jaccard(texts[row], texts[match]) > 0.8
    kept = set(range(len(texts))) - set(removed)
    assert sum(c.size for c in small.largest) <= len(removed) and small.clusters <= 40
    assert all(c.kept in kept for c in small.largest)


def test_disk_groups_summarize_and_pair_like_a_groupby_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 500, 5000, dtype=np.uint64) * np.uint64(2**55)  # 500 keys, spread over the top bits
    keys[rng.random(5000) < 0.3] = 7 * 2**55  # and one that repeats far more than a bucket holds
    values = rng.permutation(5000)
    for max_in_memory in (10**6, 64):
        groups = DiskGroups(str(tmp_path / str(max_in_memory)), key_bits=64, expected=500, max_in_memory=max_in_memory)
        for start in range(0, 5000, 700):
            groups.add(keys[start : start + 700], values[start : start + 700])
        buckets = list(groups.buckets())
        summary = [np.concatenate(parts) for parts in zip(*(b.summary() for b in buckets))]
        expected_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        firsts = np.full(len(expected_keys), 10**9)
        np.minimum.at(firsts, inverse, values)
        assert [s.tolist() for s in summary] == [expected_keys.tolist(), firsts.tolist(), counts.tolist()]
        pairs = sorted(zip(*(np.concatenate(p).tolist() for p in zip(*(pair for b in buckets for pair in b.pairs())))))
        assert pairs == sorted((firsts[i], v) for i, v in zip(inverse.tolist(), values.tolist()) if v != firsts[i])
    assert len(buckets) > 4  # really spread over files, read back 64 records at a time


def test_split_sizes_are_exact_and_every_document_equally_likely_in_each(tmp_path):
    documents = Dataset.from_dict({"text": [str(i) for i in range(100)]})
    in_validation = np.zeros(100)
    for seed in range(300):
        splits = split_by_document(documents, str(tmp_path), validation_split_percentage=10,
                                   test_split_percentage=5, seed=seed, chunk=16)  # chunks of 16: 7 of them
        assert {name: len(split) for name, split in splits.items()} == {"train": 85, "validation": 10, "test": 5}
        rows = {name: set(map(int, split["text"])) for name, split in splits.items()}
        assert set.union(*rows.values()) == set(range(100)) and sum(map(len, rows.values())) == 100
        in_validation[list(rows["validation"])] += 1
    frequency = in_validation / 300  # 0.1 for every document, also across chunk boundaries (sd 0.017)
    assert abs(frequency.mean() - 0.1) < 1e-9 and np.abs(frequency - 0.1).max() < 0.075
    assert abs(frequency[:16].mean() - frequency[-4:].mean()) < 0.05
    again = split_by_document(documents, str(tmp_path), validation_split_percentage=10, test_split_percentage=5,
                              seed=299, chunk=16)
    assert set(again["validation"]["text"]) == set(splits["validation"]["text"])


@pytest.mark.parametrize("text, expected", [
    ("Dr. Smith went to Washington. He arrived at 3 p.m. on Monday.",
     ["Dr. Smith went to Washington.", "He arrived at 3 p.m. on Monday."]),
    ("The value rose to 3.14 in 2020. It fell to 2.5 later.", ["The value rose to 3.14 in 2020.", "It fell to 2.5 later."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("Is it? Yes! It is.", ["Is it?", "Yes!", "It is."]),
])
def test_segmentation_hard_cases(text, expected):
    assert split_sentences(text) == expected


def test_packing_never_exceeds_the_length_and_positions_restart_at_each_document():
    rng = np.random.default_rng(0)
    docs = [[rng.integers(5, 100, size=rng.integers(1, 30)).tolist() for _ in range(rng.integers(1, 6))]
            for _ in range(200)]
    tokenized = Dataset.from_dict({"sentences": docs})
    for chunk in (7, 10_000):  # packing in small chunks carries over exactly
        packed = pack_sequences(tokenized, cls_id=2, sep_id=3, max_seq_length=48, isolate_documents=True,
                                chunk=chunk)
        rows = np.array(packed["input_ids"])
        assert rows.shape[1] == 48
        stream = np.concatenate([[2, *sum(doc, []), 3] for doc in docs])
        assert rows.ravel().tolist() == stream[: rows.size].tolist()  # nothing lost, reordered or padded
        for row in rows:  # a document, or a document's continuation, starts at 0 and at every [CLS]
            starts = sorted({0, *np.flatnonzero(row == 2).tolist()})
            document_ids, positions = document_positions(torch.as_tensor(row)[None], 2)
            assert (positions[0, starts] == 0).all()
            assert sorted(np.flatnonzero(positions[0].numpy() == 0).tolist()) == starts


def _corpus(tmp_path: Path, n: int = 60) -> Path:
    documents = [english(10, seed) for seed in range(n)]
    documents += [documents[0], documents[1].upper()]  # exact duplicates
    documents += ["Too short to keep."]
    path = tmp_path / "raw.txt"
    path.write_text("\n\n".join(documents) + "\n")
    return path


def _prepare(*flags: str):
    return run_cli("prepare", *flags)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tokenizer):
    tmp = tmp_path_factory.mktemp("prepare")
    corpus = _corpus(tmp)
    out = tmp / "prepared"
    result = _prepare("--train_file", str(corpus), "--output_dir", str(out), "--vocab_size", "300",
                      "--max_seq_length", "64", "--validation_split_percentage", "10", "--test_split_percentage", "10",
                      "--num_shards", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    return corpus, out, result


def test_prepare_writes_the_dataset_and_its_report(prepared):
    _, out, result = prepared
    assert "prepared " in result.stdout
    for name in ("documents", "tokenized", "tokenizer", "report.json", "report.md", "fingerprint.json"):
        assert (out / name).exists(), name
    assert not (out / "sequences").exists()  # no recipe reads packed rows: each objective builds its own
    report = json.loads((out / "report.json").read_text())
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["read"]["documents"] == 63
    assert stages["filter"]["removed"] == {"too short": 1} and stages["filter"]["documents"] == 62
    assert stages["deduplicate"]["exact_duplicates"] == 2 and stages["deduplicate"]["documents"] == 60
    assert report["removed_examples"]["too short"] == ["Too short to keep."]
    assert len(report["duplicate_clusters"]) == 2
    assert report["splits"] == {"train": 48, "validation": 6, "test": 6} and report["tokenizer_documents"] == 48
    for name in ("read", "normalize", "filter", "deduplicate"):  # documents, characters and tokens everywhere
        assert stages[name]["documents"] > 0 and stages[name]["characters"] > stages[name]["tokens"] > 0
    assert stages["filter"]["tokens"] < stages["normalize"]["tokens"]  # the short document
    assert stages["deduplicate"]["tokens"] < stages["filter"]["tokens"]
    # The sentences of the kept documents, tokenized, are exactly their text's tokens.
    assert sum(stages["tokenize"]["tokens"].values()) == stages["deduplicate"]["tokens"]
    assert "Largest duplicate clusters" in (out / "report.md").read_text()


def test_splits_are_disjoint_by_document(prepared):
    from datasets import load_from_disk

    _, out, _ = prepared
    documents = load_from_disk(str(out / "documents"))
    texts = {name: set(split["text"]) for name, split in documents.items()}
    assert not (texts["train"] & texts["validation"] or texts["train"] & texts["test"] or texts["validation"] & texts["test"])
    assert sum(map(len, texts.values())) == 60
    assert all(len(s) > 0 for s in documents["train"]["sentences"])


@pytest.mark.faults
def test_the_cache_is_reused_and_invalidated(prepared, tmp_path):
    import shutil

    original, out, _ = prepared
    corpus = tmp_path / "raw.txt"
    shutil.copy(original, corpus)
    flags = ["--train_file", str(corpus), "--output_dir", str(out), "--vocab_size", "300", "--max_seq_length", "64",
             "--validation_split_percentage", "10", "--test_split_percentage", "10", "--num_shards", "2"]
    stamp = (out / "fingerprint.json").stat().st_mtime_ns
    again = _prepare(*flags)
    assert again.returncode == 0, again.stdout[-2000:]
    assert "reusing it" in again.stdout  # the same bytes under another path are the same input
    assert (out / "fingerprint.json").stat().st_mtime_ns == stamp
    # A changed setting prepares again...
    changed = tmp_path / "changed"
    shutil.copytree(out, changed)
    flags[3] = str(changed)
    redo = _prepare(*flags, "--minhash_threshold", "0.9")
    assert redo.returncode == 0 and "reusing it" not in redo.stdout
    # ...and so does a changed input file.
    corpus.write_text(corpus.read_text() + "\n\n" + english(10, 999) + "\n")
    redo = _prepare(*flags, "--minhash_threshold", "0.9")
    assert redo.returncode == 0 and "reusing it" not in redo.stdout
    assert json.loads((changed / "report.json").read_text())["stages"][0]["documents"] == 64


def test_streaming_gives_the_same_tokenized_documents(prepared, tmp_path):
    corpus, out, _ = prepared
    streamed = tmp_path / "streamed"
    result = _prepare("--train_file", str(corpus), "--output_dir", str(streamed), "--vocab_size", "300",
                      "--max_seq_length", "64", "--validation_split_percentage", "10", "--test_split_percentage", "10",
                      "--streaming", "--tokenizer_name", str(out / "tokenizer"))
    assert result.returncode == 0, result.stdout[-3000:]
    from datasets import load_from_disk

    a = load_from_disk(str(out / "tokenized"))["train"]["sentences"]
    b = load_from_disk(str(streamed / "tokenized"))["train"]["sentences"]
    assert a == b and len(a) > 40


def test_the_tokenizer_trains_on_a_bounded_sample(prepared, tmp_path):
    corpus, out, _ = prepared
    result = _prepare("--train_file", str(corpus), "--output_dir", str(tmp_path / "few"), "--vocab_size", "300",
                      "--max_seq_length", "64", "--validation_split_percentage", "10", "--test_split_percentage", "10",
                      "--max_tokenizer_documents", "2")
    assert result.returncode == 0, result.stdout[-3000:]
    assert json.loads((tmp_path / "few" / "report.json").read_text())["tokenizer_documents"] == 2
    from hf_pretrain import load_tokenizer

    few, every = (len(load_tokenizer(str(path / "tokenizer"))) for path in (tmp_path / "few", out))
    assert few < every  # two documents hold fewer words


@pytest.mark.faults
def test_prepare_reports_bad_input_in_one_line_or_skips_it(tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(("\n\n".join(english(10, s) for s in range(20)) + "\n\n").encode() + b"caf\xe9\n")
    common = ["--train_file", str(corpus), "--vocab_size", "300", "--validation_split_percentage", "10",
              "--test_split_percentage", "10"]
    refused = _prepare(*common, "--output_dir", str(tmp_path / "a"))
    assert refused.returncode == 2 and "Traceback" not in refused.stdout
    assert f"error: {corpus}:61: not UTF-8 text (byte 3 of the line)" in refused.stdout
    skipped = _prepare(*common, "--output_dir", str(tmp_path / "b"), "--on_bad_input", "skip")
    assert skipped.returncode == 0, skipped.stdout[-2000:]
    assert json.loads((tmp_path / "b" / "report.json").read_text())["bad_input_skipped"] == {"not UTF-8 text": 1}
    unknown = _prepare(*common, "--output_dir", str(tmp_path / "c"), "--minimum_words", "3")
    assert unknown.returncode == 2 and "unknown argument --minimum_words" in unknown.stdout
    # Every document filtered out: the filters are named with their counts, not the split percentages.
    filtered = _prepare(*common, "--output_dir", str(tmp_path / "d"), "--on_bad_input", "skip", "--min_words", "10000")
    assert filtered.returncode == 2 and "Traceback" not in filtered.stdout
    assert (f"error: {corpus}: the quality filters removed all 20 documents (20 too short); relax their thresholds "
            "(hf-pretrain prepare --help lists them) or pass --skip_filters 'too short'") in filtered.stdout


def test_recipes_train_on_the_prepared_dataset(prepared, tmp_path):
    _, out, _ = prepared
    result = run_recipe("recipes/pretrain_bert.py", "--config", str(ROOT / "recipes" / "configs" / "debug.yaml"),
                        "--prepared_dataset", str(out), "--objective", "mlm", "--isolate_documents",
                        "--max_seq_length", "64", "--max_steps", "2", "--eval_steps", "2", "--save_strategy", "no",
                        "--output_dir", str(tmp_path / "bert"))
    assert result.returncode == 0, result.stdout[-3000:]
    card = (tmp_path / "bert" / "README.md").read_text()
    assert f"the prepared dataset {out}" in card and "WordPiece from the prepared dataset" in card
    # ELECTRA streams the prepared shards (--num_shards 2): packed as it reads them, not tokenized again.
    electra = run_recipe("recipes/pretrain_electra.py", "--config",
                         str(ROOT / "recipes" / "configs" / "electra_debug.yaml"), "--prepared_dataset", str(out),
                         "--streaming", "--max_seq_length", "64", "--max_steps", "2", "--eval_strategy", "no",
                         "--save_strategy", "no", "--output_dir", str(tmp_path / "electra"))
    assert electra.returncode == 0, electra.stdout[-3000:]
    assert "(streamed, 2 shards)" in (tmp_path / "electra" / "README.md").read_text()


def test_bench_quality_reads_a_preparation_as_it_is_for_both_sides(prepared, tmp_path, monkeypatch):
    """``bench_quality.py --prepared_dataset``: both sides' documents are the preparation's train and validation
    splits and the tokenizer is its own (not one trained again), so the checkpoint compares with others trained on
    that folder; plain HF's `group_texts` blocks drop the prepared sentences column."""
    from argparse import Namespace

    from datasets import load_from_disk

    from hf_pretrain.data.tokenizer import load_tokenizer

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_quality

    _, out, _ = prepared
    work = tmp_path / "work"
    bench_quality.prepare(work, Namespace(prepared_dataset=str(out), train_file="unused", max_documents=None,
                                          vocab_size=999))
    documents, source = load_from_disk(str(work / "documents")), load_from_disk(str(out / "documents"))
    assert sorted(documents) == ["train", "validation"]
    assert all(documents[s]["text"] == source[s]["text"] for s in ("train", "validation"))
    assert load_tokenizer(str(work / "tokenizer")).get_vocab() == load_tokenizer(str(out / "tokenizer")).get_vocab()
    assert len(load_from_disk(str(work / "validation"))) > 0
    blocks = bench_quality.plain_hf_blocks(work, load_tokenizer(str(work / "tokenizer")))
    assert "sentences" not in blocks.column_names and {len(b) for b in blocks["input_ids"]} == {bench_quality.SEQ}
    # bench_clm.py builds its side "ours" with the same function, from its own flags (--ours_args on top).
    import bench_clm

    from hf_pretrain.training.optimizer import MuonWithAdamW

    flags = bench_clm.argument_parser().parse_args(["--output_dir", str(work), "--evals", "1", "--bf16", "false",
                                                    "--ours_args", "--use_muon true"])
    trainer, model, _, _ = bench_quality.build_ours(work, work / "ours", flags)
    assert model.config.model_type == "llama" and isinstance(trainer.create_optimizer(), MuonWithAdamW)


def test_a_sharded_preparation_streams_its_shards_as_packed_in_memory(prepared):
    from itertools import islice

    from datasets import load_from_disk

    from hf_pretrain.data.streaming import stream_dataset, stream_sequence_id
    from hf_pretrain.data.tokenizer import load_tokenizer

    _, out, _ = prepared
    shards = sorted((out / "tokenized" / "train").glob("*.arrow"))
    assert len(shards) == 2
    tokenizer = load_tokenizer(str(out / "tokenizer"))
    train = load_from_disk(str(out / "tokenized"))["train"]
    expected = []
    for index in range(2):  # save_to_disk's shards are contiguous
        packed = pack_sequences(train.shard(num_shards=2, index=index, contiguous=True), tokenizer.cls_token_id,
                                tokenizer.sep_token_id, 64, isolate_documents=True)
        expected += [(stream_sequence_id(0, index, row), ids) for row, ids in enumerate(packed["input_ids"])]
    stream = stream_dataset([str(p) for p in shards], tokenizer, 64, True)
    assert [(row["sequence_id"], row["input_ids"]) for row in islice(iter(stream), len(expected))] == expected


@pytest.mark.faults
def test_the_fingerprint_hashes_the_tokenizer_not_its_path(tmp_path, tokenizer):
    """Another tokenizer saved at the same --tokenizer_name path is another preparation, not a stale reuse."""
    from hf_pretrain.prepare.arguments import PrepareArguments
    from hf_pretrain.prepare.pipeline import fingerprint

    corpus = tmp_path / "raw.txt"
    corpus.write_text(english(5, 1))
    folder = tmp_path / "tokenizer"
    tokenizer.save_pretrained(folder)
    args = PrepareArguments(train_file=[str(corpus)], output_dir=str(tmp_path / "out"), tokenizer_name=str(folder))
    first = fingerprint(args, QualityFilters(), [str(corpus)])
    assert fingerprint(args, QualityFilters(), [str(corpus)]) == first
    smaller = train_wordpiece_tokenizer([english(20, 2)], vocab_size=150)
    smaller.save_pretrained(folder)
    assert fingerprint(args, QualityFilters(), [str(corpus)]) != first


@pytest.mark.faults
def test_a_split_the_corpus_is_too_small_for_is_refused_at_prepare_time(tmp_path):
    """35 documents at 1 % is no validation document: said now, with the percentage that holds one, rather than
    written as an empty split that --prepared_dataset then fails to load."""
    from hf_pretrain.config import parse_config
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.prepare.arguments import PrepareArguments

    documents = Dataset.from_dict({"text": [f"doc {i}" for i in range(35)]})
    with pytest.raises(HfPretrainError, match=r"--validation_split_percentage 1 of the 35 document\(s\) left after "
                       r"cleaning is no document: pass --validation_split_percentage 1.5 or more for one, or "
                       r"--validation_split_percentage 0 for no such split"):
        split_by_document(documents, str(tmp_path), validation_split_percentage=1, test_split_percentage=0, seed=0)
    splits = split_by_document(documents, str(tmp_path), validation_split_percentage=1.5, test_split_percentage=0,
                               seed=0)
    assert {name: len(split) for name, split in splits.items()} == {"train": 34, "validation": 1, "test": 0}
    with pytest.raises(HfPretrainError, match=r"--seed must be an integer in \[0, 2\*\*32\), not -1"):
        parse_config((PrepareArguments,), ["--train_file", "x", "--output_dir", "y", "--seed", "-1"])


@pytest.mark.faults
def test_prepare_never_deletes_what_a_user_keeps_in_the_output_folder(tmp_path):
    """Only a new or empty folder, or an earlier preparation's own, is written into; a folder inside the inputs is
    left out of them."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "raw.txt").write_text("\n\n".join(english(10, seed) for seed in range(60)) + "\n")
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    (home / ".cache" / "precious").write_text("keep me")
    (home / "tokenizer").mkdir()
    refused = _prepare("--train_file", str(corpus), "--output_dir", str(home), "--vocab_size", "300")
    assert refused.returncode == 2 and (home / ".cache" / "precious").read_text() == "keep me"
    assert f"error: --output_dir {home}: holds files that are not a preparation's (.cache, tokenizer); choose a new " \
           "or empty folder" in refused.stdout
    (tmp_path / "afile").write_text("x")
    assert "is a file, not a folder" in _prepare("--train_file", str(corpus), "--output_dir", str(tmp_path / "afile")).stdout
    # Output inside the input folder: prepared twice, the second run reads the same input and reuses the first.
    inside = corpus / "prepared"
    flags = ["--train_file", str(corpus), "--output_dir", str(inside), "--vocab_size", "300", "--max_seq_length", "64",
             "--validation_split_percentage", "10", "--test_split_percentage", "10"]
    first = _prepare(*flags)
    assert first.returncode == 0, first.stdout[-2000:]
    again = _prepare(*flags)
    assert again.returncode == 0 and "reusing it" in again.stdout, again.stdout[-2000:]
