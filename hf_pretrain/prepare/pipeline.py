"""The preparation stage: raw corpus -> cleaned, filtered, deduplicated, sentence-split documents -> a tokenizer ->
tokenized documents, split by document into train / validation / test, saved once and reused.

``hf-pretrain prepare`` runs it; the pretraining recipes read its output with ``--prepared_dataset DIR``.
Layout of ``DIR``: ``documents/`` and ``tokenized/`` (DatasetDicts with the three splits; each objective builds its
own rows from ``tokenized/`` at the recipe's ``--max_seq_length``), ``tokenizer/``, ``report.json`` and ``report.md``,
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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from ..constants import PREPARATION_MARKER
from ..data.corpus import expand_paths, read_documents
from ..data.sentences import split_sentences
from ..data.sequences import tokenize_documents
from ..data.tokenizer import load_tokenizer, train_wordpiece_tokenizer
from ..errors import BadInput, HfPretrainError
from ..rng import Stream, legacy_seed, numpy_generator
from ..runtime import check_writable_dir
from .arguments import PrepareArguments
from .cleaning import QualityFilters, normalize
from .dedup import find_duplicates, remove_duplicates
from .semantic import report_section, semantic_dedup, semantic_markdown

logger = logging.getLogger(__name__)
FINGERPRINT = "fingerprint.json"
FORMAT_VERSION = 3  # part of the fingerprint: bump it when the output's layout or content changes
EXAMPLES = 3  # removed texts shown per reason in the report
EXCERPT = 200
WORK = ".cache"  # intermediate files of a run, removed when it finishes
# Documents processed and written at a time. Memory grows with it (a Wikipedia article is about 15 KB of text and
# its encodings several times that) and it bounds what is held at once, whatever the corpus size.
BATCH = 100


def fingerprint(args: PrepareArguments, filters: QualityFilters, files: list[str]) -> str:
    """A hash of the inputs' bytes, in order, of a ``--tokenizer_name`` and a ``--semantic_model`` folder's files
    (not only their paths: another model saved at the same path is another preparation), and of every setting that
    changes the output (not of where the files or the output are, nor of how many processes do the work)."""
    digest = hashlib.sha256(f"hf_pretrain preparation {FORMAT_VERSION}".encode())
    ignored = ("train_file", "output_dir", "num_proc", "overwrite_cache", "executor", "tasks", "workers",
               "cpus_per_task", "mem_per_cpu_gb", *(name for name in dataclasses.asdict(args) if name.startswith("slurm_")))
    settings = {k: v for k, v in dataclasses.asdict(args).items() if k not in ignored}
    digest.update(json.dumps([settings, dataclasses.asdict(filters)], sort_keys=True, default=str).encode())
    folders = [args.tokenizer_name, args.semantic_model if args.semantic_dedup else None]
    model_files = [os.path.join(folder, name) for folder in folders if folder and os.path.isdir(folder)
                   for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name))]
    for path in [*model_files, *files]:
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


def read_texts(files: list[str], args: PrepareArguments, bad: BadInput) -> Iterator[str]:
    """The documents of ``files``, in order; an empty file is refused."""
    for path in files:
        if os.path.getsize(path) == 0:
            raise HfPretrainError(f"{path}: the file is empty")
        yield from read_documents(path, args.text_column_name, bad)


def _read(files: list[str], args: PrepareArguments, bad: BadInput) -> Dataset:
    def documents():
        for text in read_texts(files, args, bad):
            yield {"text": text}

    if args.streaming:  # written to disk as it is read: memory stays bounded
        return Dataset.from_generator(documents, cache_dir=os.path.join(args.output_dir, WORK), writer_batch_size=BATCH)
    texts = [d["text"] for d in tqdm(documents(), desc="Reading", unit=" documents")]
    return Dataset.from_dict({"text": texts})


def clean_texts(texts: list[str], args: PrepareArguments, filters: QualityFilters) -> dict[str, list]:
    """Normalize, split into sentences and judge each document; ``dropped`` says by which rule ('' = kept)."""
    out: dict[str, list] = {"text": [], "sentences": [], "dropped": []}
    for raw in texts:
        text = normalize(raw) if args.normalize else raw
        sentences = split_sentences(text) if text else []
        out["text"].append(text)
        out["sentences"].append(sentences)
        out["dropped"].append(filters.reason_to_drop(text, len(sentences)) or "")
    return out


def _clean(documents: Dataset, args: PrepareArguments, filters: QualityFilters) -> Dataset:
    return documents.map(clean_texts, input_columns="text", batched=True, batch_size=BATCH, writer_batch_size=BATCH,
                         num_proc=args.num_proc, fn_kwargs={"args": args, "filters": filters},
                         desc="Cleaning and filtering")


def split_by_document(
    documents: Dataset,
    directory: str,
    *,
    validation_split_percentage: float,
    test_split_percentage: float,
    seed: int,
    chunk: int = 1 << 20,
) -> DatasetDict:
    """Train / validation / test by whole documents: a seeded, uniformly random partition with exact sizes.

    It is drawn ``chunk`` documents at a time (how many of each split fall in the chunk, hypergeometric, then their
    order) into a file in ``directory``, so memory does not grow with the corpus."""
    n = len(documents)
    n_val = round(n * validation_split_percentage / 100)
    n_test = round(n * test_split_percentage / 100)
    for flag, percentage, count in (("--validation_split_percentage", validation_split_percentage, n_val),
                                    ("--test_split_percentage", test_split_percentage, n_test)):
        if percentage > 0 and count == 0:  # an empty split a recipe would then fail to evaluate on
            raise HfPretrainError(
                f"{flag} {percentage:g} of the {n} document(s) left after cleaning is no document: pass "
                f"{flag} {_percentage_of_one(n):g} or more for one, or {flag} 0 for no such split"
            )
    if n - n_val - n_test < 1:
        raise HfPretrainError(
            f"{n} document(s) left after cleaning: too few for the validation and test splits; add text or lower "
            "--validation_split_percentage / --test_split_percentage"
        )
    path = os.path.join(directory, "splits.bin")
    assignment = np.memmap(path, np.int8, mode="w+", shape=n)
    rng = numpy_generator(Stream.PREPARED_SPLIT, seed)
    remaining = np.array([n - n_val - n_test, n_val, n_test])
    for start in range(0, n, chunk):
        counts = rng.multivariate_hypergeometric(remaining, min(chunk, n - start))
        remaining -= counts
        labels = np.repeat(np.arange(3, dtype=np.int8), counts)
        assignment[start : start + len(labels)] = rng.permutation(labels)
    assignment.flush()
    return DatasetDict({
        name: documents.filter(_in_split, with_indices=True, input_columns=[], batched=True,
                               fn_kwargs={"assignment_file": path, "split": split}, desc=f"Selecting {name}")
        for split, name in enumerate(("train", "validation", "test"))
    })


def _percentage_of_one(n: int) -> float:
    """The smallest percentage (to 0.1, rounded up) that holds one of ``n`` documents out."""
    return float(np.ceil(1000 / n / 2 + 1e-9)) / 10 if n else 100.0


def _in_split(indices: list[int], assignment_file: str, split: int) -> np.ndarray:
    return np.memmap(assignment_file, np.int8, mode="r")[indices] == split


def _count_tokens(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> dict[str, list[int]]:
    encodings = tokenizer.backend_tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    return {"tokens": [len(encoding.ids) for encoding in encodings]}


def _token_counts(documents: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None, stage: str) -> Dataset:
    """Each document's number of tokens (without special tokens), in a ``tokens`` column."""
    return documents.map(
        _count_tokens, input_columns="text", batched=True, batch_size=BATCH, remove_columns=documents.column_names,
        fn_kwargs={"tokenizer": tokenizer}, num_proc=num_proc, desc=f"Counting tokens after {stage}",
    )


def _stats(stage: str, documents: Dataset, token_counts: Dataset) -> dict:
    return {
        "stage": stage,
        "documents": len(documents),
        "characters": _column_sum(documents.select_columns("text"), pc.utf8_length),
        "tokens": _column_sum(token_counts.select_columns("tokens"), lambda column: column),
    }


def _column_sum(dataset: Dataset, measure) -> int:
    """The sum of ``measure`` over the dataset's one column, a batch at a time."""
    return sum(
        pc.sum(measure(batch.column(0))).as_py() or 0 for batch in dataset.with_format("arrow").iter(batch_size=10_000)
    )


def _passed_filters(dropped: list[str]) -> list[bool]:
    return [reason == "" for reason in dropped]


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


def _removed_by_filters(cleaned: Dataset) -> tuple[Counter, dict[str, list[str]]]:
    """How many documents each filter removed, and the first few of them."""
    reasons: Counter = Counter()
    examples: dict[str, list[str]] = {}
    start = 0
    for batch in cleaned.select_columns("dropped").iter(batch_size=10_000):
        for row, reason in enumerate(batch["dropped"], start):
            if reason:
                reasons[reason] += 1
                if len(examples.setdefault(reason, [])) < EXAMPLES:
                    examples[reason].append(_excerpt(cleaned[row]["text"]))
        start += len(batch["dropped"])
    return reasons, examples


def _tokenizer(train: Dataset, args: PrepareArguments) -> tuple[PreTrainedTokenizerBase, int | None]:
    """The given tokenizer, or one trained on a bounded sample of the train split, evenly spaced over it (the
    trainer's word counts grow with the text it sees); and how many documents it was trained on."""
    if args.tokenizer_name:
        return load_tokenizer(args.tokenizer_name), None
    sample = train.select(range(0, len(train), -(-len(train) // args.max_tokenizer_documents)))
    texts = (text for batch in sample.iter(batch_size=1000) for text in batch["text"])
    return train_wordpiece_tokenizer(
        texts, args.vocab_size, args.do_lower_case, model_max_length=args.max_seq_length, show_progress=True
    ), len(sample)


MARKER = PREPARATION_MARKER  # written first: this folder is a preparation's, which a rerun may replace


def check_output_dir(output_dir: str) -> None:
    """Write only into a new or empty folder, or one an earlier preparation marked as its own: never delete what a
    user keeps in ``--output_dir`` (``--output_dir ~`` must not wipe ``~/.cache``)."""
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not os.path.isfile(os.path.join(output_dir, MARKER)):
        found = sorted(os.listdir(output_dir))
        raise HfPretrainError(
            f"--output_dir {output_dir}: holds files that are not a preparation's ({', '.join(found[:4])}"
            f"{', ...' if len(found) > 4 else ''}); choose a new or empty folder"
        )
    check_writable_dir(output_dir)
    with open(os.path.join(output_dir, MARKER), "w", encoding="utf-8") as f:
        f.write("A folder written by `hf-pretrain prepare`: a rerun may replace what it holds.\n")


# The folders a preparation writes, and replaces when it runs again.
STAGE_FOLDERS = ("documents", "tokenized", "tokenizer")
# What older versions wrote and no recipe read (packed rows: each objective builds its own from ``tokenized``),
# removed when such a folder is prepared again.
OLD_STAGE_FOLDERS = ("sequences",)


def _written_files(output_dir: str) -> list[str]:
    """Every file of the stage folders, relative to ``output_dir``: what this preparation wrote."""
    found = []
    for name in (*STAGE_FOLDERS, *OLD_STAGE_FOLDERS):
        for root, _, files in os.walk(os.path.join(output_dir, name)):
            found += [os.path.relpath(os.path.join(root, f), output_dir) for f in files]
    return sorted(found)


def check_nothing_foreign(output_dir: str) -> None:
    """A rerun replaces the stage folders whole: refuse, naming them, if a user put files of their own inside
    (a file the finished preparation did not list in its fingerprint)."""
    path = os.path.join(output_dir, FINGERPRINT)
    try:
        with open(path, encoding="utf-8") as f:
            written = json.load(f).get("files")
    except (OSError, ValueError, AttributeError):
        return  # no finished preparation (or one older than the list): nothing known to compare with
    if written is None:
        return
    foreign = sorted(set(_written_files(output_dir)) - set(written))
    if foreign:
        raise HfPretrainError(
            f"--output_dir {output_dir}: {', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''} "
            f"{'was' if len(foreign) == 1 else 'were'} not written by the preparation, and preparing again replaces "
            f"{', '.join(f'{n}/' for n in STAGE_FOLDERS)} whole: move {'it' if len(foreign) == 1 else 'them'} out "
            "of the folder first"
        )


def input_files(args: PrepareArguments) -> list[str]:
    """The corpus files, less any inside ``--output_dir`` (a preparation kept inside its own input folder would
    otherwise read its outputs on a rerun)."""
    return expand_paths(args.train_file, exclude=args.output_dir)


def prepare_in_process(args: PrepareArguments, filters: QualityFilters, files: list[str], key: str) -> dict:
    """The whole preparation in this process (``--tasks 1`` with the local executor, the default)."""
    start_afresh(args.output_dir)
    bad = BadInput(args.on_bad_input)
    raw = _read(files, args, bad)
    check_some_text(raw, args)
    cleaned = _clean(raw, args, filters)
    return finish_preparation(args, filters, files, key, raw, cleaned, dict(bad.counts))


def reuse(args: PrepareArguments, key: str) -> dict | None:
    """The report of the finished preparation of the same inputs and settings in ``--output_dir``, if there is one
    (and ``--overwrite_cache`` is off)."""
    if args.overwrite_cache or not is_prepared(args.output_dir, key):
        return None
    logger.info("%s holds this preparation already (fingerprint %s): reusing it", args.output_dir, key[:12])
    with open(os.path.join(args.output_dir, "report.json"), encoding="utf-8") as f:
        return json.load(f)


def check_some_text(raw: Dataset, args: PrepareArguments) -> None:
    if len(raw) == 0:
        raise HfPretrainError(f"{', '.join(args.train_file)}: no document with any text in it")


def finish_preparation(args: PrepareArguments, filters: QualityFilters, files: list[str], key: str, raw: Dataset,
                       cleaned: Dataset, bad_input_skipped: dict[str, int]) -> dict:
    """Everything after reading and cleaning: filter, deduplicate, split, tokenize, save, report. ``raw`` has the
    read documents (``text``); ``cleaned`` the same rows normalized, split into sentences and judged, and, where
    its tasks computed them beforehand, :func:`~.dedup.hash_texts`'s columns."""
    work = os.path.join(args.output_dir, WORK)
    check_some_text(raw, args)
    kept, reasons, removed_examples = _filter(cleaned, args)
    hash_columns = [name for name in ("exact", "minhash", "bands") if name in kept.column_names]
    duplicates = find_duplicates(
        kept, os.path.join(work, "dedup"), exact=args.dedup_exact, near=args.dedup_near,
        threshold=args.minhash_threshold, num_perm=args.minhash_num_perm,
        seed=legacy_seed(Stream.MINHASH, args.seed), num_proc=args.num_proc,
        hashes=kept.select_columns(hash_columns) if hash_columns else None,
    )
    kept = kept.remove_columns(hash_columns)
    cleaned = cleaned.remove_columns(hash_columns)
    unique = deduplicated = remove_duplicates(kept, duplicates).remove_columns("dropped")
    semantic = None
    if args.semantic_dedup:
        unique, found, units = semantic_dedup(
            deduplicated, os.path.join(work, "semantic"), model=args.semantic_model, threshold=args.semantic_threshold,
            unit=args.semantic_unit, whiten=args.semantic_whiten, seed=legacy_seed(Stream.SEMANTIC_DEDUP, args.seed),
        )
        semantic = {"unit": args.semantic_unit, "model": args.semantic_model, "whitened": args.semantic_whiten,
                    **report_section(found, units, _excerpt)}
    documents = split_by_document(
        unique, work, validation_split_percentage=args.validation_split_percentage,
        test_split_percentage=args.test_split_percentage, seed=args.seed,
    )
    tokenizer, tokenizer_documents = _tokenizer(documents["train"], args)
    tokenizer.save_pretrained(os.path.join(args.output_dir, "tokenizer"))
    tokenized = DatasetDict(
        {name: tokenize_documents(split.select_columns(["sentences"]), tokenizer, args.num_proc, BATCH)
         for name, split in documents.items()}
    )
    _save(documents, os.path.join(args.output_dir, "documents"))
    _save(tokenized, os.path.join(args.output_dir, "tokenized"), {"train": args.num_shards} if args.num_shards else None)
    report = {
        "inputs": files,
        "stages": _stage_counts(raw, cleaned, kept, reasons, duplicates, deduplicated, semantic, unique, tokenized,
                                tokenizer, args.num_proc),
        "removed_examples": removed_examples,
        "duplicate_clusters": [
            {"kept": _excerpt(kept[c.kept]["text"]), "removed": c.size, "example": _excerpt(kept[c.example]["text"])}
            for c in duplicates.largest
        ],
        **({"semantic_dedup": semantic} if semantic else {}),
        "bad_input_skipped": bad_input_skipped,
        "splits": {name: len(split) for name, split in documents.items()},
        "tokenizer_documents": tokenizer_documents,
        "max_seq_length": args.max_seq_length,
        "vocab_size": len(tokenizer),
    }
    _finish(args, filters, key, report)
    return report


def start_afresh(output_dir: str) -> str:
    """Remove an earlier preparation's outputs (refusing if a user's file is among them) and return the work
    folder. The fingerprint goes first, so that a run killed from here on leaves a folder known to be incomplete."""
    check_nothing_foreign(output_dir)
    for name in (FINGERPRINT, *STAGE_FOLDERS, *OLD_STAGE_FOLDERS, WORK):
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    work = os.path.join(output_dir, WORK)
    os.makedirs(work)
    return work


def _filter(cleaned: Dataset, args: PrepareArguments) -> tuple[Dataset, Counter, dict[str, list[str]]]:
    """The documents the quality filters keep, how many each rule removed, and examples of removed ones; refused
    in one line when none is kept."""
    reasons, removed_examples = _removed_by_filters(cleaned)
    kept = cleaned.filter(_passed_filters, input_columns="dropped", batched=True)
    if len(kept) == 0:
        counts = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        raise HfPretrainError(
            f"{', '.join(args.train_file)}: the quality filters removed all {len(cleaned)} documents ({counts}); "
            f"relax their thresholds (hf-pretrain prepare --help lists them) or pass --skip_filters "
            f"{' '.join(repr(r) for r in reasons)}"
        )
    return kept, reasons, removed_examples


def _stage_counts(raw: Dataset, cleaned: Dataset, kept: Dataset, reasons: Counter, duplicates, deduplicated: Dataset,
                  semantic: dict | None, unique: Dataset, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase,
                  num_proc: int | None) -> list[dict]:
    """Documents, characters and tokens after each stage, for the report. Tokens are counted once on the raw and
    once on the cleaned text; the later stages' counts are the rows of the cleaned counts that they keep, selected
    as the documents were (semantic deduplication's are counted again: paragraphs may leave a document)."""
    counts = concatenate_datasets(
        [cleaned.select_columns("dropped"), _token_counts(cleaned, tokenizer, num_proc, "normalize")], axis=1
    )
    kept_counts = counts.filter(_passed_filters, input_columns="dropped", batched=True)
    stages = [
        _stats("read", raw, _token_counts(raw, tokenizer, num_proc, "read")),
        _stats("normalize", cleaned, counts),
        {**_stats("filter", kept, kept_counts), "removed": dict(reasons)},
        {**_stats("deduplicate", deduplicated, remove_duplicates(kept_counts, duplicates)),
         "exact_duplicates": duplicates.exact, "near_duplicates": duplicates.near, "clusters": duplicates.clusters},
    ]
    if semantic:
        stages.append({**_stats("semantic deduplicate", unique, _token_counts(unique, tokenizer, num_proc, "semantic")),
                       f"{semantic['unit']}s_removed": semantic["removed"]})
    return [
        *stages,
        {"stage": "tokenize", "documents": {n: len(s) for n, s in tokenized.items()},
         "tokens": {name: _column_sum(split, lambda c: pc.list_value_length(pc.list_flatten(c)))
                    for name, split in tokenized.items()}},
    ]


def _finish(args: PrepareArguments, filters: QualityFilters, key: str, report: dict) -> None:
    """Write the report, then the fingerprint (last: it marks the preparation finished), and drop the work folder."""
    with open(os.path.join(args.output_dir, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.output_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(report_markdown(report))
    with open(os.path.join(args.output_dir, FINGERPRINT), "w", encoding="utf-8") as f:
        json.dump({"fingerprint": key, "settings": dataclasses.asdict(args), "filters": dataclasses.asdict(filters),
                   "files": _written_files(args.output_dir)}, f, indent=2, default=str)
    shutil.rmtree(os.path.join(args.output_dir, WORK), ignore_errors=True)


def _save(splits: DatasetDict, path: str, num_shards: dict[str, int] | None = None) -> None:
    """``save_to_disk``, an empty split (``--test_split_percentage 0``) as one empty shard with the train split's
    columns: datasets would write none (a map over no rows knows no columns), and a folder without a shard cannot be
    loaded back."""
    shards = {name: 1 for name, split in splits.items() if len(split) == 0}
    splits = DatasetDict({name: splits["train"].select([]) if name in shards else split
                          for name, split in splits.items()})
    shards.update(num_shards or {})
    splits.save_to_disk(path, num_shards=shards or None)


def report_markdown(report: dict) -> str:
    lines = ["# Preparation report", "", "| stage | documents | characters | tokens | notes |", "|---|---|---|---|---|"]
    shown = ("stage", "documents", "characters", "tokens")
    for stage in report["stages"]:
        notes = {k: v for k, v in stage.items() if k not in shown}
        cells = [stage["stage"], *(json.dumps(stage[k]) if isinstance(stage.get(k), dict) else str(stage.get(k, ""))
                                   for k in shown[1:]), json.dumps(notes) if notes else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Removed by the filters (examples)", ""]
    for reason, examples in report["removed_examples"].items():
        lines.append(f"- **{reason}**")
        lines += [f"  - {e}" for e in examples]
    lines += ["", "## Largest duplicate clusters", ""]
    lines += [f"- kept: {c['kept']}\n  - {c['removed']} removed, e.g.: {c['example']}" for c in report["duplicate_clusters"]]
    if "semantic_dedup" in report:
        lines += semantic_markdown(report["semantic_dedup"])
    if report["bad_input_skipped"]:
        lines += ["", f"Bad input lines skipped: {report['bad_input_skipped']}"]
    return "\n".join(lines) + "\n"


@dataclass
class PreparedDataset:
    """A finished preparation, as the recipes read it."""

    documents: DatasetDict
    tokenized: DatasetDict
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
        tokenizer_path=os.path.join(directory, "tokenizer"),
        max_seq_length=max_seq_length,
    )
