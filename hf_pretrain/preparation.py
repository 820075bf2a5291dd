"""The preparation stage: raw corpus -> cleaned, filtered, deduplicated, sentence-split documents -> a tokenizer ->
tokenized documents and packed sequences, split by document into train / validation / test, saved once and reused.

``hf-pretrain prepare`` runs it; the pretraining recipes read its output with ``--prepared_dataset DIR``.
Layout of ``DIR``: ``documents/`` and ``tokenized/`` (DatasetDicts with the three splits), ``sequences/`` (packed
training rows, documents isolated, with ``document_starts``), ``tokenizer/``, ``report.json`` and ``report.md``,
and ``fingerprint.json``, written last: a folder without it is incomplete and is prepared again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk
from tqdm.auto import tqdm

from .arguments import PrepareArguments
from .cleaning import QualityFilters, normalize
from .corpus import expand_paths, read_documents
from .dedup import find_duplicates, largest_clusters
from .errors import BadInput, HfPretrainError
from .sentences import split_sentences
from .sequences import pack_sequences, tokenize_documents
from .tokenizer import load_tokenizer, train_wordpiece_tokenizer

logger = logging.getLogger(__name__)
FINGERPRINT = "fingerprint.json"
FORMAT_VERSION = 1  # part of the fingerprint: bump it when the output's layout or content changes
EXAMPLES = 3  # removed texts shown per reason in the report
EXCERPT = 200


def fingerprint(args: PrepareArguments, filters: QualityFilters, files: list[str]) -> str:
    """A hash of the inputs' bytes, in order, and of every setting that changes the output (not of where the
    files or the output are, nor of how many processes do the work)."""
    digest = hashlib.sha256(f"hf_pretrain preparation {FORMAT_VERSION}".encode())
    ignored = ("train_file", "output_dir", "num_proc", "overwrite_cache")
    settings = {k: v for k, v in dataclasses.asdict(args).items() if k not in ignored}
    digest.update(json.dumps([settings, dataclasses.asdict(filters)], sort_keys=True, default=str).encode())
    for path in files:
        digest.update(os.path.getsize(path).to_bytes(8, "little"))
        with open(path, "rb") as f:
            while block := f.read(2**22):
                digest.update(block)
    return digest.hexdigest()


def is_prepared(output_dir: str, key: str) -> bool:
    path = os.path.join(output_dir, FINGERPRINT)
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("fingerprint") == key


def _read(files: list[str], args: PrepareArguments, bad: BadInput) -> Dataset:
    def documents():
        for path in files:
            if os.path.getsize(path) == 0:
                raise HfPretrainError(f"{path}: the file is empty")
            for text in read_documents(path, args.text_column_name, bad):
                yield {"text": text}

    if args.streaming:  # written to disk as it is read: memory stays bounded
        return Dataset.from_generator(documents, cache_dir=os.path.join(args.output_dir, ".cache"))
    texts = [d["text"] for d in tqdm(documents(), desc="Reading", unit=" documents")]
    return Dataset.from_dict({"text": texts})


def _clean(documents: Dataset, args: PrepareArguments, filters: QualityFilters) -> Dataset:
    """Normalize, split into sentences and judge every document; ``dropped`` says by which rule ('' = kept)."""

    def clean(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"text": [], "sentences": [], "dropped": []}
        for raw in batch["text"]:
            text = normalize(raw) if args.normalize else raw
            sentences = split_sentences(text) if text else []
            out["text"].append(text)
            out["sentences"].append(sentences)
            out["dropped"].append(filters.reason_to_drop(text, len(sentences)) or "")
        return out

    return documents.map(clean, batched=True, batch_size=256, num_proc=args.num_proc, desc="Cleaning and filtering")


def _split(documents: Dataset, args: PrepareArguments) -> DatasetDict:
    """Train / validation / test by whole documents, from a seeded permutation."""
    n = len(documents)
    order = np.random.default_rng(args.seed).permutation(n)
    n_val = round(n * args.validation_split_percentage / 100)
    n_test = round(n * args.test_split_percentage / 100)
    if n - n_val - n_test < 1:
        raise HfPretrainError(
            f"{n} document(s) left after cleaning: too few for the validation and test splits; add text or lower "
            "--validation_split_percentage / --test_split_percentage"
        )
    splits = {"train": order[n_val + n_test :], "validation": order[:n_val], "test": order[n_val : n_val + n_test]}
    return DatasetDict({name: documents.select(np.sort(rows)) for name, rows in splits.items()})


def _stats(documents: Dataset) -> dict[str, int]:
    import pyarrow.compute as pc

    chars = sum(
        pc.sum(pc.utf8_length(batch["text"])).as_py() or 0
        for batch in documents.with_format("arrow").iter(batch_size=10_000)
    )
    return {"documents": len(documents), "characters": chars}


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def prepare_corpus(args: PrepareArguments, filters: QualityFilters) -> dict:
    """Run the whole stage into ``args.output_dir`` and return the report; reuse a finished run of the same inputs
    and settings unless ``args.overwrite_cache``."""
    files = expand_paths(args.train_file)
    key = fingerprint(args, filters, files)
    if not args.overwrite_cache and is_prepared(args.output_dir, key):
        logger.info("%s holds this preparation already (fingerprint %s): reusing it", args.output_dir, key[:12])
        with open(os.path.join(args.output_dir, "report.json"), encoding="utf-8") as f:
            return json.load(f)
    # The fingerprint goes first, so that a run killed from here on leaves a folder known to be incomplete.
    for name in (FINGERPRINT, "documents", "tokenized", "sequences", "tokenizer"):
        path = os.path.join(args.output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    os.makedirs(args.output_dir, exist_ok=True)

    bad = BadInput(args.on_bad_input)
    raw = _read(files, args, bad)
    if len(raw) == 0:
        raise HfPretrainError(f"{', '.join(args.train_file)}: no document with any text in it")
    cleaned = _clean(raw, args, filters)
    stages = [{"stage": "read", **_stats(raw)}, {"stage": "normalize", **_stats(cleaned)}]

    dropped = cleaned["dropped"]
    reasons = Counter(dropped)
    example_rows: dict[str, list[int]] = {}
    for row, reason in enumerate(dropped):  # one pass: the first few documents each filter removed
        if reason and len(example_rows.setdefault(reason, [])) < EXAMPLES:
            example_rows[reason].append(row)
    removed_examples = {
        reason: [_excerpt(text) for text in cleaned.select(rows)["text"]] for reason, rows in example_rows.items()
    }
    kept = cleaned.filter(lambda r: [d == "" for d in r], input_columns="dropped", batched=True, num_proc=args.num_proc)
    stages.append({"stage": "filter", **_stats(kept), "removed": {r: n for r, n in reasons.items() if r}})

    texts = (text for batch in kept.iter(batch_size=1000) for text in batch["text"])
    duplicates = find_duplicates(
        tqdm(texts, total=len(kept), desc="Deduplicating", unit=" documents"), exact=args.dedup_exact,
        near=args.dedup_near, threshold=args.minhash_threshold, num_perm=args.minhash_num_perm, seed=args.seed,
    )
    drop = duplicates.exact | duplicates.near
    unique = kept.select([i for i in range(len(kept)) if i not in drop]).remove_columns("dropped")
    stages.append({"stage": "deduplicate", **_stats(unique), "exact_duplicates": len(duplicates.exact),
                   "near_duplicates": len(duplicates.near), "clusters": len(duplicates.clusters)})

    documents = _split(unique, args)
    if args.tokenizer_name:
        tokenizer = load_tokenizer(args.tokenizer_name)
    else:
        tokenizer = train_wordpiece_tokenizer(
            (text for batch in documents["train"].iter(batch_size=1000) for text in batch["text"]), args.vocab_size, args.do_lower_case,
            model_max_length=args.max_seq_length,
        )
    tokenizer.save_pretrained(os.path.join(args.output_dir, "tokenizer"))
    tokenized = DatasetDict(
        {name: tokenize_documents(split.select_columns(["sentences"]), tokenizer, args.num_proc)
         for name, split in documents.items()}
    )
    token_counts = {name: _token_count(split) for name, split in tokenized.items()}
    stages.append({"stage": "tokenize", "documents": {n: len(s) for n, s in tokenized.items()},
                   "tokens": token_counts})
    sequences = pack_sequences(
        tokenized["train"], tokenizer.cls_token_id, tokenizer.sep_token_id, args.max_seq_length,
        isolate_documents=True, record_starts=True, streaming=args.streaming,
    )
    stages.append({"stage": "pack", "sequences": len(sequences), "tokens": len(sequences) * args.max_seq_length})

    documents.save_to_disk(os.path.join(args.output_dir, "documents"))
    tokenized.save_to_disk(os.path.join(args.output_dir, "tokenized"))
    sequences.save_to_disk(os.path.join(args.output_dir, "sequences"))
    report = {
        "inputs": files,
        "stages": stages,
        "removed_examples": removed_examples,
        "duplicate_clusters": [
            {"kept": _excerpt(kept[k]["text"]), "removed": len(v), "example": _excerpt(kept[v[0]]["text"])}
            for k, v in largest_clusters(duplicates)
        ],
        "bad_input_skipped": dict(bad.counts),
        "splits": {name: len(split) for name, split in documents.items()},
        "max_seq_length": args.max_seq_length,
        "vocab_size": len(tokenizer),
    }
    with open(os.path.join(args.output_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(report_markdown(report))
    with open(os.path.join(args.output_dir, FINGERPRINT), "w", encoding="utf-8") as f:
        json.dump({"fingerprint": key, "settings": dataclasses.asdict(args), "filters": dataclasses.asdict(filters)},
                  f, indent=2, default=str)
    shutil.rmtree(os.path.join(args.output_dir, ".cache"), ignore_errors=True)
    return report


def _token_count(tokenized: Dataset) -> int:
    import pyarrow.compute as pc

    column = tokenized.with_format("arrow")[:]["sentences"]
    return int(pc.sum(pc.list_value_length(pc.list_flatten(column))).as_py() or 0) if len(tokenized) else 0


def report_markdown(report: dict) -> str:
    lines = ["# Preparation report", "", "| stage | documents | characters | notes |", "|---|---|---|---|"]
    for stage in report["stages"]:
        notes = {k: v for k, v in stage.items() if k not in ("stage", "documents", "characters")}
        lines.append(f"| {stage['stage']} | {stage.get('documents', '')} | {stage.get('characters', '')} | "
                     f"{json.dumps(notes) if notes else ''} |")
    lines += ["", "## Removed by the filters (examples)", ""]
    for reason, examples in report["removed_examples"].items():
        lines.append(f"- **{reason}**")
        lines += [f"  - {e}" for e in examples]
    lines += ["", "## Largest duplicate clusters", ""]
    lines += [f"- kept: {c['kept']}\n  - {c['removed']} removed, e.g.: {c['example']}" for c in report["duplicate_clusters"]]
    if report["bad_input_skipped"]:
        lines += ["", f"Bad input lines skipped: {report['bad_input_skipped']}"]
    return "\n".join(lines) + "\n"


@dataclass
class PreparedDataset:
    """A finished preparation, as the recipes read it."""

    documents: DatasetDict
    tokenized: DatasetDict
    sequences: Dataset  # the train split packed at max_seq_length, documents isolated
    tokenizer_path: str
    max_seq_length: int


def load_prepared(directory: str) -> PreparedDataset:
    if not os.path.isfile(os.path.join(directory, FINGERPRINT)):
        raise HfPretrainError(
            f"--prepared_dataset {directory}: not a finished preparation (no {FINGERPRINT}); run hf-pretrain prepare"
        )
    with open(os.path.join(directory, "report.json"), encoding="utf-8") as f:
        max_seq_length = json.load(f)["max_seq_length"]
    return PreparedDataset(
        documents=load_from_disk(os.path.join(directory, "documents")),
        tokenized=load_from_disk(os.path.join(directory, "tokenized")),
        sequences=load_from_disk(os.path.join(directory, "sequences")),
        tokenizer_path=os.path.join(directory, "tokenizer"),
        max_seq_length=max_seq_length,
    )
