"""Read raw corpora into a ``datasets.Dataset`` of documents, one row per document with a ``text`` column.

Formats, recognised by suffix once a compression suffix is stripped (and WikiExtractor by its first line):

- plain text: one paragraph per line, a blank line between documents;
- JSON Lines (``.jsonl``, ``.json``), Parquet (``.parquet``), CSV (``.csv``) and TSV (``.tsv``, with a header row)
  with a text column (``--text_column_name``);
- WikiExtractor output: ``<doc id=.. url=.. title=..>``, the title line, one paragraph per line, ``</doc>``;
- any of them compressed as ``.gz``, ``.bz2``, ``.xz`` or ``.zst``; paths may be globs or directories.

A document's text keeps its paragraphs separated by newlines, which the sentence splitter uses.
"""

from __future__ import annotations

import ast
import csv
import glob
import hashlib
import io
import json
import logging
import os
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, DatasetDict

from ..errors import BadInput, HfPretrainError, located
from ..rng import Stream, legacy_seed
from ..runtime.hub_access import require_hub
from .lines import COMPRESSIONS, MAX_LINE_BYTES, decoded_lines, open_binary

logger = logging.getLogger(__name__)

JSON_SUFFIXES = {".jsonl", ".json", ".ndjson"}
PARQUET_SUFFIXES = {".parquet"}
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}  # read by their columns, with a header row


def _format_of(path: str) -> str:
    base = path[: -len(os.path.splitext(path)[1])] if os.path.splitext(path)[1].lower() in COMPRESSIONS else path
    suffix = os.path.splitext(base)[1].lower()
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in DELIMITED_SUFFIXES:
        return suffix
    return "text"


def _broken_link(path: str) -> str:
    return f"{path}: a symbolic link that loops or points nowhere; fix or remove it"


def _walk_files(folder: str) -> Iterator[str]:
    """The files under ``folder``, hidden ones skipped, through symbolic links to folders too; each folder and file
    once, however many links lead to it (a link back to a folder already walked, a loop, is not followed)."""
    walked: set[str] = set()
    seen: set[str] = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        walked.add(os.path.realpath(root))
        dirs[:] = [d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) not in walked]
        for name in names:
            path = os.path.join(root, name)
            if name.startswith(".") or os.path.realpath(path) in seen:
                continue
            if not os.path.exists(path):
                raise HfPretrainError(_broken_link(path))
            seen.add(os.path.realpath(path))
            yield path


def expand_paths(patterns: Sequence[str], exclude: str | None = None) -> list[str]:
    """Expand globs and directories (recursively, hidden files skipped) into a sorted, de-duplicated file list,
    less any file inside the folder ``exclude`` (a run's output folder kept inside its input folder would otherwise
    read its own outputs as corpus when it runs again)."""
    files = _expand(patterns)
    if exclude is None:
        return files
    inside = os.path.realpath(exclude) + os.sep
    kept = [path for path in files if not os.path.realpath(path).startswith(inside)]
    if len(kept) < len(files):
        logger.info("leaving out %d file(s) inside the output folder %s", len(files) - len(kept), exclude)
    if not kept:
        raise HfPretrainError(f"{' '.join(patterns)}: no input file outside the output folder {exclude}")
    return kept


def _expand(patterns: Sequence[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            found = list(_walk_files(pattern))
            if not found:
                raise HfPretrainError(f"{pattern}: directory holds no files")
            files.extend(sorted(found))
        elif glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not found:
                raise HfPretrainError(f"{pattern}: no file matches this pattern")
            files.extend(found)
        elif os.path.isfile(pattern):
            files.append(pattern)
        elif os.path.islink(pattern):
            raise HfPretrainError(_broken_link(pattern))
        else:
            raise HfPretrainError(f"{pattern}: no such file or directory")
    return list(dict.fromkeys(files))


def _plain_documents(path: str, bad: BadInput) -> Iterator[str]:
    paragraphs: list[str] = []
    for _, line in decoded_lines(path, bad):
        line = line.strip()
        if line:
            paragraphs.append(line)
        elif paragraphs:
            yield "\n".join(paragraphs)
            paragraphs = []
    if paragraphs:
        yield "\n".join(paragraphs)


def _wikiextractor_documents(path: str, bad: BadInput) -> Iterator[str]:
    paragraphs: list[str] | None = None
    title_pending = False
    opened_at = 0
    for number, line in decoded_lines(path, bad):
        if line.startswith("<doc "):
            if paragraphs is not None:
                raise HfPretrainError(f"{located(path, number)}: <doc> opened before the one at line {opened_at} closed")
            paragraphs, title_pending, opened_at = [], True, number
        elif line.startswith("</doc>"):
            if paragraphs is None:
                raise HfPretrainError(f"{located(path, number)}: </doc> without an opening <doc>")
            if paragraphs:
                yield "\n".join(paragraphs)
            paragraphs = None
        elif paragraphs is not None:
            line = line.strip()
            if not line:
                continue
            if title_pending:  # WikiExtractor repeats the title as the first line; it is not article text.
                title_pending = False
                continue
            paragraphs.append(line)
        elif line.strip():
            raise HfPretrainError(f"{located(path, number)}: text outside a <doc> ... </doc> block")
    if paragraphs is not None:
        raise HfPretrainError(f"{path}: the <doc> opened at line {opened_at} is never closed")


def _jsonl_documents(path: str, text_column: str, bad: BadInput) -> Iterator[str]:
    for number, line in decoded_lines(path, bad):
        if not line.strip():
            continue
        where = located(path, number)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            bad(where, "not valid JSON", f"({err.msg})")
            continue
        except RecursionError:  # a record nested thousands deep is no document
            bad(where, "JSON nested too deep")
            continue
        if not isinstance(record, dict) or text_column not in record:
            bad(where, f"no '{text_column}' field", advice="set --text_column_name to the text field")
            continue
        text = record[text_column]
        if not isinstance(text, str):
            bad(where, f"'{text_column}' is not a string")
        elif text.strip():
            yield text


def _delimited_documents(path: str, text_column: str, bad: BadInput, delimiter: str) -> Iterator[str]:
    """CSV or TSV with a header row: the ``text_column`` of each row (a quoted field may span lines)."""
    at = [0]  # the line the reader is on, for the error messages
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))  # a field may be as long as a line

    def lines() -> Iterator[str]:
        for number, line in decoded_lines(path, bad):
            at[0] = number
            yield line + "\n"

    rows = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(rows, None)
        if header is None:
            return
        if text_column not in header:
            raise HfPretrainError(f"{located(path, at[0])}: no '{text_column}' column in the header (columns: "
                                  f"{', '.join(header[:8])}); set --text_column_name to the column of text")
        column = header.index(text_column)
        for row in rows:
            if not row:
                continue
            if len(row) != len(header):
                bad(located(path, at[0]), f"{len(row)} fields, the header has {len(header)}")
                continue
            if row[column].strip():
                yield row[column]
    except csv.Error as err:  # an unclosed quote at the end of the file, a field over the size limit
        raise HfPretrainError(f"{located(path, at[0])}: not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({err})") \
            from None


def _parquet_documents(path: str, text_column: str) -> Iterator[str]:
    try:
        with open_binary(path) as raw:
            handle = raw if path.endswith(".parquet") else io.BytesIO(raw.read())
            parquet = pq.ParquetFile(handle)
            names = parquet.schema_arrow.names
            if text_column not in names:
                raise HfPretrainError(
                    f"{path}: no '{text_column}' column (columns: {', '.join(names)}); set --text_column_name"
                )
            kind = parquet.schema_arrow.field(text_column).type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                raise HfPretrainError(
                    f"{path}: the '{text_column}' column holds {kind}, not text (columns: {', '.join(names)}); "
                    "set --text_column_name to the column of text"
                )
            for batch in parquet.iter_batches(columns=[text_column]):
                for text in batch.column(0).to_pylist():
                    if text and text.strip():
                        yield text
    except HfPretrainError:
        raise
    except Exception as err:  # pyarrow raises many types for a damaged file
        raise HfPretrainError(f"{path}: not a readable Parquet file ({err})") from None


def _is_wikiextractor(path: str, bad: BadInput) -> bool:
    # The format check counts nothing: the reading pass that follows meets (and counts) the same lines.
    for _, line in decoded_lines(path, BadInput("skip") if bad.policy == "skip" else bad):
        if line.strip():
            return line.startswith("<doc ")
    return False


def read_documents(path: str, text_column: str = "text", bad: BadInput | None = None) -> Iterator[str]:
    """Yield the documents of one corpus file, whatever its format and compression. Malformed lines stop the
    reading with an error that names them, or are skipped and counted, as ``bad`` says."""
    bad = bad or BadInput()
    fmt = _format_of(path)
    if fmt == "jsonl":
        yield from _jsonl_documents(path, text_column, bad)
    elif fmt == "parquet":
        yield from _parquet_documents(path, text_column)
    elif fmt in DELIMITED_SUFFIXES:
        yield from _delimited_documents(path, text_column, bad, DELIMITED_SUFFIXES[fmt])
    elif _is_wikiextractor(path, bad):
        yield from _wikiextractor_documents(path, bad)
    else:
        yield from _plain_documents(path, bad)


def load_documents(
    patterns: Sequence[str], text_column: str = "text", max_documents: int | None = None, bad: BadInput | None = None,
    exclude: str | None = None,
) -> Dataset:
    """All documents of the files that ``patterns`` name (less those inside ``exclude``), in file order, as a
    Dataset with a ``text`` column."""
    files = expand_paths(patterns, exclude)
    texts: list[str] = []
    for path in files:
        if os.path.getsize(path) == 0:
            raise HfPretrainError(f"{path}: the file is empty")
        before = len(texts)
        for text in read_documents(path, text_column, bad):
            texts.append(text)
            if max_documents is not None and len(texts) >= max_documents:
                return Dataset.from_dict({"text": texts})
        if len(texts) == before:
            raise HfPretrainError(f"{path}: no document with any text in it")
    return Dataset.from_dict({"text": texts})


def _open_hub_dataset(name: str, config: str | None, text_column: str, split: str, streaming: bool):
    """``datasets.load_dataset`` of a Hub dataset's split, failing in one line when the Hub cannot be reached (or
    the name, split or text column is wrong)."""
    require_hub(f"--dataset_name {name}", "pass local files with --train_file")
    try:
        dataset = datasets.load_dataset(name, config, split=split, streaming=streaming)
    except Exception as err:  # the Hub client raises many types: connection, auth, missing repo
        raise HfPretrainError(
            f"--dataset_name {name}: could not load it from the Hub ({type(err).__name__}: {err}); "
            "check the name and your connection, or pass local files with --train_file"
        ) from None
    columns = dataset.column_names  # a stream whose files declare no features has none until it is read
    if columns is not None and text_column not in columns:
        raise HfPretrainError(
            f"--dataset_name {name}: no '{text_column}' column (columns: {', '.join(columns)}); "
            "set --text_column_name"
        )
    return dataset


def load_hub_documents(name: str, config: str | None, text_column: str = "text", split: str = "train") -> Dataset:
    """A Hub dataset's split as documents; fails with a clear message when the Hub cannot be reached."""
    dataset = _open_hub_dataset(name, config, text_column, split, streaming=False)
    dataset = dataset.select_columns([text_column]).filter(lambda row: bool(row[text_column].strip()))
    return dataset.rename_column(text_column, "text") if text_column != "text" else dataset


def hub_shards(name: str, config: str | None, text_column: str = "text", split: str = "train"
               ) -> list[datasets.IterableDataset]:
    """A Hub dataset's split as a stream per data file, in the repository's order: the shards a streamed run
    gives its processes. Nothing is downloaded until a shard is read."""
    stream = _open_hub_dataset(name, config, text_column, split, streaming=True)
    # With as many shards as the stream has files, shard i is file i alone (datasets' contiguous split of files).
    return [stream.shard(num_shards=stream.n_shards, index=i) for i in range(stream.n_shards)]


def hub_shard_documents(shard: datasets.IterableDataset, text_column: str = "text") -> Iterator[str]:
    """The documents of one Hub shard (:func:`hub_shards`), blank ones left out as in :func:`load_hub_documents`."""
    for row in shard:
        if text_column not in row:
            raise HfPretrainError(f"the Hub dataset has no '{text_column}' column (columns: {', '.join(row)}); "
                                  "set --text_column_name")
        text = row[text_column]
        if isinstance(text, str) and text.strip():
            yield text


# Bump when the extraction below changes what it returns: the cached corpora of older versions are then ignored.
_STDLIB_CORPUS_VERSION = 1
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# The only fields that hold statements (and so definitions), in the order ``ast.iter_child_nodes`` yields them on
# every node type that has them (``Try``: body, handlers, orelse, finalbody; ``Match``: cases).
_STATEMENT_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")


def _docstrings(tree: ast.Module) -> list[str]:
    """The docstrings of a module, its classes and functions, in ``ast.walk``'s breadth-first order.

    Definitions live only in statement lists, so the walk descends through those alone and skips the expressions
    that make up most of a tree (walking everything was half the corpus's cost). Every statement sits one level
    below the statement, handler or ``case`` holding it, so the levels, and with them the order, are the full
    walk's."""
    level: list[ast.AST] = [tree]
    docs: list[str] = []
    while level:
        docs += [doc for node in level if isinstance(node, _DOCSTRING_OWNERS) and (doc := ast.get_docstring(node))]
        level = [
            child
            for node in level
            for name in _STATEMENT_FIELDS
            for child in getattr(node, name, None) or ()
            if isinstance(child, ast.AST)
        ]
    return docs


# Paths holding any of these are not part of the corpus (installed packages, test suites, IDLE, 2to3).
_STDLIB_LEFT_OUT = ("site-packages", "test", "idlelib", "lib2to3")


def _stdlib_sources() -> list[str]:
    """The standard library's ``.py`` files, as ``glob("**/*.py")`` lists them (hidden names skipped), less the left
    out ones. Walked rather than globbed so that a left-out folder (site-packages above all) is never entered: every
    run of the default corpus lists these files to key its cache."""
    root = sysconfig.get_paths()["stdlib"]
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not any(part in d for part in _STDLIB_LEFT_OUT)]
        found += [os.path.join(folder, f) for f in files if f.endswith(".py") and not f.startswith(".")]
    return sorted(path for path in found if not any(part in path for part in _STDLIB_LEFT_OUT))


def _extract_stdlib_docstrings(sources: list[str]) -> list[str]:
    texts: list[str] = []
    for path in sources:
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        # Paragraphs of a docstring are separated by blank lines; within one, lines are re-flowed.
        paragraphs = [
            " ".join(block.split())
            for doc in _docstrings(tree)
            for block in doc.split("\n\n")
            if len(block.split()) >= 4
        ]
        if paragraphs:
            texts.append("\n".join(paragraphs))
    return texts


def stdlib_docstrings(cache_dir: str | os.PathLike | None = None) -> Dataset:
    """The embedded default corpus: docstrings of the Python standard library, one document per module.

    Every Python installation carries it, so the main job runs offline anywhere. Sources are parsed with ``ast``,
    never imported, so no module code runs. Parsing 700 files takes seconds, paid by every run of the default
    preset, so the texts are kept in ``cache_dir`` (default: a ``hf_pretrain`` folder in ``datasets``' cache,
    ``HF_DATASETS_CACHE``), keyed by the Python version and the sources' sizes and modification times: a changed
    standard library is parsed again. Nothing is cached where that folder cannot be written.

    The cache is an Arrow file, memory-mapped as ``datasets``' own caches are: the dataset then has a fingerprint
    that is the same in every run, so the tokenization that follows is cached too (``datasets.Dataset.map``), as
    for any file-backed corpus.
    """
    sources = _stdlib_sources()
    key = hashlib.sha256(json.dumps(
        [_STDLIB_CORPUS_VERSION, sys.version, *((p, s.st_size, s.st_mtime_ns) for p in sources for s in [os.stat(p)])]
    ).encode()).hexdigest()[:16]
    cache = Path(cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "hf_pretrain") / f"stdlib_docstrings-{key}.arrow"
    try:
        return Dataset.from_file(str(cache))
    except (OSError, pa.ArrowInvalid):  # absent, or torn: parse again
        pass
    texts = _extract_stdlib_docstrings(sources)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: processes launched together never read each other's half-written file.
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        table = pa.table({"text": pa.array(texts, pa.string())})
        with pa.OSFile(str(partial), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(partial, cache)
        return Dataset.from_file(str(cache))
    except OSError:
        return Dataset.from_dict({"text": texts})


def load_corpus(
    train_file: Sequence[str] | None,
    validation_file: Sequence[str] | None = None,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    text_column: str = "text",
    validation_split_percentage: float = 5.0,
    seed: int = 0,
    max_train_documents: int | None = None,
    bad: BadInput | None = None,
    exclude: str | None = None,
) -> DatasetDict:
    """Train (and validation, if any) documents from files, a Hub dataset, or the embedded default corpus.

    Files inside the folder ``exclude`` (the run's output folder) are never read.
    Without a validation source, ``validation_split_percentage`` of the documents (at least one) are held out:
    whole documents, chosen by a permutation drawn from ``seed``, so the split is the same on every run.
    """
    if dataset_name:
        train = load_hub_documents(dataset_name, dataset_config_name, text_column)
    elif train_file:
        train = load_documents(train_file, text_column, max_train_documents, bad, exclude)
    else:
        train = stdlib_docstrings()
    if max_train_documents is not None and len(train) > max_train_documents:
        train = train.select(range(max_train_documents))

    if validation_file:
        return DatasetDict(train=train, validation=load_documents(validation_file, text_column, bad=bad, exclude=exclude))
    if validation_split_percentage <= 0:
        return DatasetDict(train=train)
    n_validation = max(1, round(len(train) * validation_split_percentage / 100))
    if len(train) - n_validation < 1:
        raise HfPretrainError(
            f"the corpus has {len(train)} document(s), too few to hold out a validation split; "
            "add documents, pass --validation_file, or set --validation_split_percentage 0"
        )
    split = train.train_test_split(
        test_size=n_validation, seed=legacy_seed(Stream.VALIDATION_SPLIT, seed), shuffle=True
    )
    return DatasetDict(train=split["train"], validation=split["test"])
