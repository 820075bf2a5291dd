"""Semantic deduplication as SemDeDup does it (Abbas et al., 2023): embed every document with an encoder, cluster
the embeddings with k-means, and within each cluster remove a document whose cosine similarity to an earlier one of
its cluster reaches the threshold (the first document of a group is kept, as the exact and MinHash stages keep it).

The encoder is a local folder the user names (a checkpoint this project saves, a SimCSE one, a sentence-transformers
folder): mean-pooled last hidden states, L2-normalized. Embeddings go to a float16 memory-mapped file, written a
batch at a time, so memory is bounded by a batch and by one cluster, not by the corpus. faiss does the k-means and
the inner-product range search within each cluster.

Every document's highest similarity to an earlier document of its cluster is kept (not only the removed ones'), so
the report can say how many documents each threshold would remove, from one pass.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..data.sentences import split_sentences
from ..errors import HfPretrainError

logger = logging.getLogger(__name__)
REPORT_THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.98)  # the report's "removed at each threshold" table
CLUSTER_SIZE = 500  # documents per k-means cluster on average (SemDeDup: clusters small enough to compare all pairs)
TRAINING_POINTS_PER_CLUSTER = 256  # faiss's default cap: k-means trains on a sample of at most this many per centroid
MAX_TRAINING_POINTS = 100_000  # and on at most this many in all, whatever the corpus (memory: 100 MB at width 256)
QUERY_BLOCK = 1024  # rows of a cluster searched at once: the results held are at most this many x the cluster
NO_EARLIER = -1.0  # the similarity recorded for a document with no earlier one in its cluster above the search radius


@dataclass
class SemanticDuplicates:
    """For every row, its highest cosine similarity to an earlier row of its cluster (``NO_EARLIER`` if none
    reaches the search radius), that row (-1 if none) and its cluster; the k-means clusters' sizes. The rows removed are those
    whose similarity reaches ``threshold``."""

    threshold: float
    similarity: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    nearest: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cluster: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))  # each row's k-means cluster
    cluster_sizes: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    documents_per_second: float = 0.0

    @property
    def removed(self) -> np.ndarray:
        return np.flatnonzero(self.similarity >= self.threshold)

    def removed_at(self, threshold: float) -> int:
        return int(np.count_nonzero(self.similarity >= threshold))


def load_encoder(path: str) -> tuple:
    """The tokenizer and encoder of a local folder, for embedding; a one-line error if it is not one."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    if not os.path.isdir(path) or not os.path.isfile(os.path.join(path, "config.json")):
        raise HfPretrainError(f"--semantic_model {path}: not a model folder (no config.json); pass a checkpoint this "
                              "project saved, a SimCSE one, or a sentence-transformers folder")
    verbosity = transformers_logging.get_verbosity()
    # A masked-LM checkpoint's head is not the encoder's: its load report would list those weights as unexpected.
    transformers_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as err:
        raise HfPretrainError(f"--semantic_model {path}: cannot load it ({str(err).splitlines()[0]})") from None
    finally:
        transformers_logging.set_verbosity(verbosity)
    return tokenizer, model.eval()


def embed_documents(
    texts: Dataset, model_path: str, path: str, *, batch_size: int = 64, max_length: int = 128
) -> tuple[np.memmap, float]:
    """Each text's mean-pooled, L2-normalized embedding (its first ``max_length`` tokens), written to ``path`` as a
    float16 ``(n, hidden)`` memory map; and the documents embedded per second."""
    tokenizer, model = load_encoder(model_path)
    accepted = inspect.signature(model.forward).parameters  # ModernBERT takes no token_type_ids a tokenizer may give
    n = len(texts)
    embeddings = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, model.config.hidden_size))
    start, began = 0, time.perf_counter()
    with torch.inference_mode(), tqdm(total=n, desc="Embedding for semantic deduplication", unit=" texts") as progress:
        for batch in texts.iter(batch_size):
            encoded = tokenizer(batch["text"], truncation=True, max_length=max_length, padding=True,
                                return_tensors="pt")
            hidden = model(**{k: v for k, v in encoded.items() if k in accepted}).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1), dim=-1)
            embeddings[start : start + len(pooled)] = pooled.float().numpy()
            start += len(pooled)
            progress.update(len(pooled))
    embeddings.flush()
    return embeddings, n / max(time.perf_counter() - began, 1e-9)


def whitening(embeddings: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """The corpus mean and the matrix that whitens ``embeddings`` (BERT-whitening, Su et al., 2021: centred, then
    rotated onto the covariance's eigenvectors and scaled to unit variance), from one pass over them a chunk at a
    time. Mean-pooled states of a briefly pretrained encoder share one dominant direction (every pair of documents
    scores above 0.8 cosine); whitened, the similarity reflects what the documents do not share with all others."""
    n, dimension = embeddings.shape
    total, outer = np.zeros(dimension), np.zeros((dimension, dimension))
    for start in range(0, n, chunk):
        rows = np.asarray(embeddings[start : start + chunk], dtype=np.float64)
        total += rows.sum(0)
        outer += rows.T @ rows
    mean = total / n
    values, vectors = np.linalg.eigh(outer / n - np.outer(mean, mean))
    scale = 1 / np.sqrt(np.maximum(values, 1e-6 * max(values.max(), 1e-12)))  # a null direction stays finite
    return mean.astype(np.float32), (vectors * scale).astype(np.float32)


def find_semantic_duplicates(
    embeddings: np.ndarray, threshold: float, *, seed: int, n_clusters: int | None = None, whiten: bool = False,
    chunk: int = 65536,
) -> SemanticDuplicates:
    """SemDeDup over ``embeddings`` (rows in corpus order; with ``whiten``, whitened first): k-means into
    ``n_clusters`` (about one per ``CLUSTER_SIZE`` documents if None), then, within each cluster, each row's highest
    cosine similarity to an earlier row; a row at or above ``threshold`` is removed."""
    import faiss

    n, dimension = embeddings.shape
    transform = whitening(embeddings, chunk) if whiten and n > 1 else None

    def unit_rows(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        if transform is not None:
            rows = (rows - transform[0]) @ transform[1]
        return _unit_rows(rows)

    found = SemanticDuplicates(threshold=threshold, similarity=np.full(n, NO_EARLIER, np.float32),
                               nearest=np.full(n, -1, np.int64))
    if n < 2:
        return found
    k = n_clusters or max(1, round(n / CLUSTER_SIZE))
    k = min(k, n)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, k * TRAINING_POINTS_PER_CLUSTER, MAX_TRAINING_POINTS), replace=False))
    # A small corpus has fewer than faiss's 39 points per centroid: it clusters them anyway, without the warning.
    kmeans = faiss.Kmeans(dimension, k, niter=20, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1)
    kmeans.train(unit_rows(embeddings[sample]))
    assignment = np.empty(n, np.int32)
    for start in range(0, n, chunk):
        part = unit_rows(embeddings[start : start + chunk])
        assignment[start : start + len(part)] = kmeans.index.search(part, 1)[1][:, 0]
    found.cluster = assignment
    order = np.argsort(assignment, kind="stable")  # by cluster, corpus order within each
    bounds = np.searchsorted(assignment[order], np.arange(k + 1))
    found.cluster_sizes = np.diff(bounds)
    # The search radius: the lowest of the report's thresholds and the one in use, so one pass fills the table.
    radius = min(threshold, *REPORT_THRESHOLDS)
    for c in range(k):
        members = order[bounds[c] : bounds[c + 1]]
        if len(members) < 2:
            continue
        vectors = unit_rows(embeddings[members])
        index = faiss.IndexFlatIP(dimension)
        index.add(vectors)
        for block in range(0, len(members), QUERY_BLOCK):
            limits, scores, neighbours = index.range_search(vectors[block : block + QUERY_BLOCK], radius)
            queries = block + np.repeat(np.arange(len(limits) - 1), np.diff(limits.astype(np.int64)))
            earlier = neighbours < queries  # a row is compared with the rows before it in the corpus
            queries, scores, neighbours = queries[earlier], scores[earlier], neighbours[earlier]
            if len(queries) == 0:
                continue
            best = np.lexsort((-scores, queries))  # per query, its highest score first
            first = best[np.r_[True, queries[best][1:] != queries[best][:-1]]]
            rows = members[queries[first]]
            found.similarity[rows] = np.minimum(scores[first], 1.0)
            found.nearest[rows] = members[neighbours[first]]
    return found


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    """Rows as float32 of norm 1 again (float16 storage leaves them off by up to 1e-3: two copies of a document would
    score below a threshold of 0.9999)."""
    rows = np.asarray(rows, dtype=np.float32)
    return np.ascontiguousarray(rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12))


def remove_semantic_duplicates(documents: Dataset, duplicates: SemanticDuplicates) -> Dataset:
    """``documents`` without the rows ``duplicates`` removes."""
    keep = duplicates.similarity < duplicates.threshold
    return documents if keep.all() else documents.select(np.flatnonzero(keep))


def report_section(duplicates: SemanticDuplicates, documents: Dataset, excerpt, pairs: int = 5) -> dict:
    """What the report shows: documents removed at each threshold, cluster sizes, and the removed pairs nearest the
    threshold (the hardest calls) with those just below it (kept), with their similarity."""
    sizes = duplicates.cluster_sizes
    similarity = duplicates.similarity
    above = np.flatnonzero(similarity >= duplicates.threshold)
    below = np.flatnonzero((similarity < duplicates.threshold) & (similarity > NO_EARLIER))

    def described(rows, order) -> list[dict]:
        chosen = rows[np.argsort(order(similarity[rows]), kind="stable")[:pairs]]
        return [{"similarity": round(float(similarity[row]), 4), "document": excerpt(documents[int(row)]["text"]),
                 "earlier": excerpt(documents[int(duplicates.nearest[row])]["text"])} for row in chosen]

    return {
        "threshold": duplicates.threshold,
        "removed": len(duplicates.removed),
        "removed_at": {f"{t:g}": duplicates.removed_at(t) for t in sorted({*REPORT_THRESHOLDS, duplicates.threshold})},
        "clusters": {"count": int(len(sizes)), "smallest": int(sizes.min()) if len(sizes) else 0,
                     "median": float(np.median(sizes)) if len(sizes) else 0, "largest": int(sizes.max()) if len(sizes) else 0},
        "documents_per_second": round(duplicates.documents_per_second, 1),
        "removed_nearest_the_threshold": described(above, lambda s: s),
        "kept_nearest_the_threshold": described(below, lambda s: -s),
    }


def paragraphs(documents: Dataset) -> Dataset:
    """Every non-empty line of every document (normalized text holds one paragraph per line), with its document."""

    def split(batch, indices):
        out: dict[str, list] = {"text": [], "document": []}
        for row, text in zip(indices, batch["text"]):
            lines = [line for line in text.split("\n") if line.strip()]
            out["text"] += lines
            out["document"] += [row] * len(lines)
        return out

    return documents.map(split, batched=True, with_indices=True, remove_columns=documents.column_names,
                         desc="Splitting paragraphs")


def semantic_dedup(
    documents: Dataset, work: str, *, model: str, threshold: float, unit: str, whiten: bool, seed: int,
) -> tuple[Dataset, SemanticDuplicates, Dataset]:
    """``documents`` without their semantic duplicates, the duplicates found, and the units they are rows of (the
    documents, or their paragraphs). With ``unit="paragraph"``, a document keeps its other paragraphs (its sentences
    split again) and is dropped when none is left."""
    os.makedirs(work, exist_ok=True)
    units = documents.select_columns(["text"]) if unit == "document" else paragraphs(documents)
    embeddings, rate = embed_documents(units, model, os.path.join(work, "embeddings.npy"))
    found = find_semantic_duplicates(embeddings, threshold, seed=seed, whiten=whiten)
    found.documents_per_second = rate
    logger.info("semantic dedup: %d of %d %ss at cosine >= %g (%d clusters, %.0f embedded/s)", len(found.removed),
                len(units), unit, threshold, len(found.cluster_sizes), rate)
    if unit == "document":
        return remove_semantic_duplicates(documents, found), found, units
    owner = np.asarray(units["document"], np.int64)  # units are in document order: each document's are contiguous
    keep = found.similarity < threshold
    changed = np.unique(owner[~keep])
    if len(changed) == 0:
        return documents, found, units

    def rewrite(batch, indices):
        for i, row in enumerate(indices):
            at = np.searchsorted(changed, row)
            if at < len(changed) and changed[at] == row:
                start, end = np.searchsorted(owner, [row, row + 1])
                lines = [line for line, kept in zip(units[int(start):int(end)]["text"], keep[start:end]) if kept]
                batch["text"][i] = "\n".join(lines)
                batch["sentences"][i] = split_sentences(batch["text"][i]) if lines else []
        return batch

    rewritten = documents.map(rewrite, batched=True, with_indices=True, desc="Removing duplicate paragraphs")
    return rewritten.filter(lambda text: len(text) > 0, input_columns="text", desc="Dropping emptied documents"), found, units


def semantic_markdown(section: dict) -> list[str]:
    """The report's semantic-deduplication section, from :func:`report_section`'s dict."""
    unit = section["unit"]
    clusters = section["clusters"]
    lines = ["", "## Semantic deduplication", "",
             f"Encoder `{section['model']}`{', embeddings whitened' if section.get('whitened') else ''}, "
             f"{section['documents_per_second']:g} {unit}s embedded per second; "
             f"{clusters['count']} k-means clusters of {clusters['smallest']} to {clusters['largest']} {unit}s "
             f"(median {clusters['median']:g}). A {unit} is removed when its cosine similarity to an earlier one of "
             f"its cluster reaches the threshold ({section['threshold']:g} here: {section['removed']} removed).", "",
             "| threshold | " + " | ".join(section["removed_at"]) + " |",
             "|---|" + "---|" * len(section["removed_at"]),
             f"| {unit}s removed | " + " | ".join(str(v) for v in section["removed_at"].values()) + " |"]
    for title, key in (("Removed, nearest the threshold", "removed_nearest_the_threshold"),
                       ("Kept, nearest the threshold", "kept_nearest_the_threshold")):
        lines += ["", f"### {title}", ""]
        lines += [f"- {p['similarity']:.3f}: {p['document']}\n  - earlier: {p['earlier']}" for p in section[key]]
    return lines
