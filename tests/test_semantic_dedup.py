"""Semantic deduplication: the SemDeDup search against brute force, the embeddings' pooling, and `hf-pretrain
prepare --semantic_dedup` by document and by paragraph, its report, its fingerprint and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_pretrain.prepare.semantic import NO_EARLIER, find_semantic_duplicates

from .conftest import ROOT, run_cli
from .test_preparation import english

pytestmark = pytest.mark.component

DEBUG_TOKENIZER = ROOT / "tests" / "golden" / "debug_tokenizer"


def _groups(n_groups=6, per_group=5, dimension=32, noise=0.03, seed=0):
    """Rows near ``n_groups`` random directions, shuffled; and each row's group."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_groups, dimension))
    group = rng.permutation(np.repeat(np.arange(n_groups), per_group))
    vectors = centres[group] / np.linalg.norm(centres[group], axis=1, keepdims=True)
    vectors = vectors + noise * rng.standard_normal(vectors.shape)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), group


def test_each_row_gets_its_highest_similarity_to_an_earlier_row_of_its_cluster_as_brute_force_does():
    vectors, group = _groups(per_group=8)
    found = find_semantic_duplicates(vectors, 0.9, seed=0, n_clusters=6)
    assert found.cluster_sizes.sum() == 48 and np.array_equal(np.bincount(found.cluster, minlength=6), found.cluster_sizes)
    cosine = vectors @ vectors.T
    for row in range(len(vectors)):
        earlier = [j for j in range(row) if found.cluster[j] == found.cluster[row] and cosine[row, j] >= 0.8]
        if not earlier:  # the first of its group in its cluster is kept, with no earlier match
            assert found.similarity[row] == NO_EARLIER and found.nearest[row] == -1
        else:
            best = max(earlier, key=lambda j: cosine[row, j])
            assert found.similarity[row] == pytest.approx(cosine[row, best], abs=1e-5)
            assert found.nearest[row] == best and group[best] == group[row]
    # A group k-means kept whole loses every member but its first; near copies score above 0.9, others below 0.8.
    whole = [g for g in range(6) if len(set(found.cluster[group == g])) == 1]
    assert whole, "k-means split every group"
    for g in whole:
        members = np.flatnonzero(group == g)
        assert set(members[1:]) <= set(found.removed.tolist()) and members[0] not in found.removed
    # Every threshold's count is read off the same pass.
    for threshold in (0.95, 0.99, 0.999):
        assert found.removed_at(threshold) == sum(1 for s in found.similarity if s >= threshold)
    again = find_semantic_duplicates(vectors, 0.9, seed=0, n_clusters=6)
    assert np.array_equal(again.similarity, found.similarity)


def test_rows_of_different_clusters_are_never_compared():
    vectors, _ = _groups(n_groups=1, per_group=8, noise=0.01)  # one tight group: every pair above 0.99
    found = find_semantic_duplicates(vectors, 0.9, seed=0, n_clusters=1)
    assert found.removed.tolist() == list(range(1, 8))
    # Forced into two clusters, each keeps its own first row: rows are compared within a cluster only.
    split = find_semantic_duplicates(vectors, 0.9, seed=0, n_clusters=2)
    firsts = {int(np.flatnonzero(split.cluster == c)[0]) for c in np.unique(split.cluster)}
    assert len(firsts) == len(np.unique(split.cluster)) == 2
    assert set(range(8)) - set(split.removed.tolist()) == firsts


def test_whitening_separates_groups_that_one_shared_direction_makes_look_alike():
    from hf_pretrain.prepare.semantic import whitening

    vectors, group = _groups(n_groups=4, per_group=30, noise=0.3)
    shared = np.ones(32, np.float32) / np.sqrt(32)
    anisotropic = 0.15 * vectors + shared  # what a briefly pretrained encoder's mean-pooled states look like
    unit = anisotropic / np.linalg.norm(anisotropic, axis=1, keepdims=True)
    assert (unit @ unit.T).min() > 0.9  # raw: every pair alike
    mean, matrix = whitening(unit, chunk=7)  # in chunks, as a corpus on disk is read
    white = (unit - mean) @ matrix
    assert np.allclose(np.cov(white.T, bias=True), np.eye(32), atol=1e-3)
    same = group[:, None] == group[None, :]
    for name, rows in (("raw", unit), ("whitened", white)):
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        cosine = rows @ rows.T
        gap = cosine[same & ~np.eye(len(rows), dtype=bool)].mean() - cosine[~same].mean()
        if name == "raw":
            raw_gap = gap
    assert gap > 3 * raw_gap  # the groups stand apart once the shared direction is gone
    found = find_semantic_duplicates(unit, 0.99, seed=0, n_clusters=4, whiten=True)
    assert found.removed_at(0.99) < find_semantic_duplicates(unit, 0.99, seed=0, n_clusters=4).removed_at(0.99)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    """A small randomly initialized ModernBERT with the debug tokenizer, saved as a user's checkpoint would be."""
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertModel

    folder = tmp_path_factory.mktemp("encoder")
    tokenizer = AutoTokenizer.from_pretrained(DEBUG_TOKENIZER)
    torch.manual_seed(0)
    model = ModernBertModel(ModernBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=48,
                                             pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_embeddings_are_mean_pooled_over_real_tokens_and_normalized(encoder, tmp_path):
    from datasets import Dataset
    from transformers import AutoModel, AutoTokenizer

    from hf_pretrain.prepare.semantic import embed_documents

    texts = ["A short one.", "A rather longer sentence, padded to nothing in a batch of its own."]
    embeddings, rate = embed_documents(Dataset.from_dict({"text": texts}), str(encoder), str(tmp_path / "e.npy"))
    assert embeddings.dtype == np.float16 and embeddings.shape == (2, 32) and rate > 0
    tokenizer, model = AutoTokenizer.from_pretrained(encoder), AutoModel.from_pretrained(encoder).eval()
    for row, text in enumerate(texts):  # each alone, unpadded: padding must not change a text's embedding
        with torch.no_grad():
            mean = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0)
        assert np.allclose(embeddings[row], (mean / mean.norm()).numpy(), atol=2e-3)
    assert np.allclose(np.linalg.norm(embeddings.astype(np.float32), axis=1), 1, atol=1e-3)


def _corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    documents = [english(10, seed) for seed in range(12)]
    documents += [documents[2], documents[5], documents[5]]  # verbatim copies, later
    path = tmp_path / "raw.txt"
    path.write_text("\n\n".join(documents) + "\n")
    return path, documents


def _prepare(corpus: Path, out: Path, *flags: str):
    return run_cli("prepare", "--train_file", str(corpus), "--output_dir", str(out), "--vocab_size", "300",
                   "--validation_split_percentage", "0", "--test_split_percentage", "0",
                   "--dedup_exact", "false", "--dedup_near", "false", *flags)


def test_prepare_removes_semantic_duplicates_and_reports_each_threshold(encoder, tmp_path):
    from datasets import load_from_disk

    from hf_pretrain.prepare.cleaning import normalize

    corpus, documents = _corpus(tmp_path)
    out = tmp_path / "prepared"
    result = _prepare(corpus, out, "--semantic_dedup", "--semantic_model", str(encoder),
                      "--semantic_threshold", "0.9999")
    assert result.returncode == 0, result.stdout[-3000:]
    kept = load_from_disk(str(out / "documents"))["train"]["text"]
    assert sorted(kept) == sorted(normalize(d) for d in documents[:12])  # the copies go, the first of each stays
    report = json.loads((out / "report.json").read_text())
    section = report["semantic_dedup"]
    assert section["removed"] == 3 and section["unit"] == "document" and section["removed_at"]["0.9999"] == 3
    assert list(section["removed_at"]) == ["0.6", "0.7", "0.8", "0.9", "0.95", "0.98", "0.9999"]
    assert section["whitened"] is True  # the default
    assert all(pair["similarity"] >= 0.9999 for pair in section["removed_nearest_the_threshold"])
    assert all(pair["similarity"] < 0.9999 for pair in section["kept_nearest_the_threshold"])
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["deduplicate"]["documents"] == 15 and stages["semantic deduplicate"]["documents"] == 12
    assert "## Semantic deduplication" in (out / "report.md").read_text()

    # The threshold is part of the fingerprint: another one prepares again; the same one reuses the folder.
    same = _prepare(corpus, out, "--semantic_dedup", "--semantic_model", str(encoder), "--semantic_threshold", "0.9999")
    assert "holds this preparation already" in same.stdout
    other = _prepare(corpus, out, "--semantic_dedup", "--semantic_model", str(encoder), "--semantic_threshold", "0.99999")
    assert other.returncode == 0 and "holds this preparation already" not in other.stdout


def test_by_paragraph_a_repeated_paragraph_leaves_its_document(encoder, tmp_path):
    from datasets import load_from_disk

    from hf_pretrain.prepare.cleaning import normalize

    first, second, third = (english(10, seed) for seed in (1, 2, 3))
    repeated = first.split("\n")[1]
    borrowing = english(10, 4).split("\n")[0] + "\n" + repeated  # its second paragraph is first's
    copied = first.split("\n")[0] + "\n" + repeated  # every paragraph a copy of an earlier one: dropped
    corpus = tmp_path / "raw.txt"
    corpus.write_text("\n\n".join([first, second, third, borrowing, copied]) + "\n")
    out = tmp_path / "prepared"
    result = _prepare(corpus, out, "--semantic_dedup", "--semantic_model", str(encoder), "--semantic_unit",
                      "paragraph", "--semantic_threshold", "0.9999")
    assert result.returncode == 0, result.stdout[-3000:]
    documents = load_from_disk(str(out / "documents"))["train"]
    texts = sorted(documents["text"])
    assert texts == sorted([normalize(first), normalize(second), normalize(third), english(10, 4).split("\n")[0]])
    shortened = documents[documents["text"].index(english(10, 4).split("\n")[0])]
    assert " ".join(shortened["sentences"]) == shortened["text"]  # its sentences split again, without the paragraph
    section = json.loads((out / "report.json").read_text())["semantic_dedup"]
    assert section["unit"] == "paragraph" and section["removed"] == 3


@pytest.mark.faults
@pytest.mark.parametrize("flags, message", [
    (["--semantic_dedup"], "--semantic_dedup needs --semantic_model DIR"),
    (["--semantic_dedup", "--semantic_model", "no/such/folder"], "--semantic_model no/such/folder: not a model folder"),
    (["--semantic_model", "x"], "--semantic_model is read by --semantic_dedup only"),
])
def test_a_missing_or_unused_semantic_model_is_one_line_before_any_work(tmp_path, flags, message):
    corpus, _ = _corpus(tmp_path)
    result = _prepare(corpus, tmp_path / "out", *flags)
    assert result.returncode != 0 and message in result.stdout, result.stdout[-2000:]
    assert "Traceback" not in result.stdout and not (tmp_path / "out").exists()
