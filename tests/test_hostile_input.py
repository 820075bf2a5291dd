"""Hostile input for the corpus readers and the GLUE reader: each case gets a clear error that names the file
and line, or, with ``--on_bad_input skip``, a counted skip; never a hang, a traceback or unbounded memory."""

from __future__ import annotations

import bz2
import gzip
import lzma
import random
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from datasets import DatasetDict

from hf_pretrain.data.corpus import load_documents
from hf_pretrain.data.lines import MAX_LINE_BYTES
from hf_pretrain.errors import BadInput, HfPretrainError
from hf_pretrain.glue.tasks import GLUE_TASKS, read_glue_tsv
from hf_pretrain.training.data import build_pretraining_dataset

from .conftest import ROOT, run_recipe

pytestmark = [pytest.mark.component, pytest.mark.faults]

GOOD = "A first paragraph of plain English text.\nAnd a second one, with more words in it.\n"


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(64 * 1024))


def _nul_bytes(path: Path) -> None:
    path.write_bytes(b"\x00" * 2**20)


def _mixed_encodings(path: Path) -> None:
    path.write_bytes(GOOD.encode() + "Un café à Paris.\n".encode("latin-1") + b"\n" + GOOD.encode())


def _bad_json(path: Path) -> None:
    path.write_text('{"text": "fine"}\n{"text": "unterminated\n{"body": "no text field"}\n{"text": "fine again"}\n')


def _truncated_gzip(path: Path) -> None:
    whole = gzip.compress(random.Random(0).randbytes(50_000).hex().encode())
    path.write_bytes(whole[: len(whole) // 2])


def _truncated(compress):
    def write(path: Path) -> None:
        whole = compress("".join(f"document {i} of plain text\n\n" for i in range(3000)).encode())
        path.write_bytes(whole[: len(whole) * 2 // 3])  # two thirds of the file: most documents would still read

    return write


CASES = {
    # name: (file name, writer, error expected in "error" mode, what "skip" mode gives: skipped count or an error)
    "random bytes": ("random.bin", _random_bytes, r"random\.bin:\d+: (not UTF-8 text|NUL bytes)", None),
    "a file of NUL bytes": ("nul.txt", _nul_bytes, r"nul\.txt:1: NUL bytes", "no document with any text"),
    "mixed encodings": ("mixed.txt", _mixed_encodings, r"mixed\.txt:3: not UTF-8 text \(byte 6 of the line\)", 1),
    "malformed JSON lines": ("bad.jsonl", _bad_json, r"bad\.jsonl:2: not valid JSON", 2),
    "a truncated gzip file": ("cut.txt.gz", _truncated_gzip, r"cut\.txt\.gz: cannot be read", "cannot be read"),
    **{f"a truncated {suffix} of plain text": (
        f"cut.txt{suffix}", _truncated(compress), rf"cut\.txt\{suffix}: cannot be read .*ended before the end",
        "cannot be read")
       for suffix, compress in ((".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress),
                                (".zst", lambda data: zstandard.ZstdCompressor().compress(data)))},
    "JSON nested 100,000 deep": ("deep.jsonl", lambda p: p.write_text('{"text": "fine"}\n' + "[" * 100_000 + "\n"),
                                  r"deep\.jsonl:2: JSON nested too deep", 1),
    "empty documents only": ("blank.txt", lambda p: p.write_text("\n \n\t\n\n"), "no document with any text",
                             "no document with any text"),
}


@pytest.mark.parametrize("case", CASES)
def test_corpus_reader_error_names_the_line(case, tmp_path):
    name, write, error, _ = CASES[case]
    write(tmp_path / name)
    with pytest.raises(HfPretrainError, match=error):
        load_documents([str(tmp_path / name)])


@pytest.mark.parametrize("case", CASES)
def test_corpus_reader_skips_and_counts_by_flag(case, tmp_path):
    name, write, _, expected = CASES[case]
    write(tmp_path / name)
    bad = BadInput("skip")
    if isinstance(expected, str):
        with pytest.raises(HfPretrainError, match=expected):
            load_documents([str(tmp_path / name)], bad=bad)
        return
    try:
        documents = load_documents([str(tmp_path / name)], bad=bad)
    except HfPretrainError as err:  # random bytes may leave nothing readable: a clear error, not a traceback
        assert expected is None and "no document with any text" in str(err)
        documents = None
    skipped = sum(bad.counts.values())
    if expected is None:
        assert skipped > 100
    else:
        assert skipped == expected and len(documents) >= 1
        assert f"skipped {expected} bad lines or rows" in bad.summary() and name in bad.summary()


def test_a_100_mb_line_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "one_line.txt"
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(b"x" * 2**20)
    probe = (
        "import resource, sys\n"
        "from hf_pretrain.data.corpus import load_documents\n"
        "from hf_pretrain.errors import BadInput, HfPretrainError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for policy in ('error', 'skip'):\n"
        "    try:\n"
        f"        load_documents([{str(path)!r}], bad=BadInput(policy))\n"
        "    except HfPretrainError as err:\n"
        "        print(policy, err)\n"
        "print('grew_mb', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "error " + str(path) + ":1: line too long (over 16 MiB)" in result.stdout
    assert "skip " + str(path) + ": no document with any text" in result.stdout
    grew = float(result.stdout.split("grew_mb")[1])
    assert grew < 4 * MAX_LINE_BYTES / 2**20  # a few line buffers, never the 100 MB line


def test_documents_of_one_token(tokenizer):
    from datasets import Dataset

    documents = DatasetDict(train=Dataset.from_dict({"text": ["the"] * 20}))
    # Packed, twenty one-token documents are too little text for one sequence: a clear error.
    with pytest.raises(HfPretrainError, match="too little text for one sequence"):
        build_pretraining_dataset(documents, tokenizer, "mlm", max_seq_length=64)
    # As NSP pairs each still makes a well-formed pair.
    pairs = build_pretraining_dataset(documents, tokenizer, "mlm_nsp", max_seq_length=64)["train"]
    assert len(pairs) > 0
    for row in pairs:
        ids = row["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id and ids.count(tokenizer.sep_token_id) == 2


MRPC_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"
GLUE_CASES = {
    "too few fields": ("1\t1\t2\tonly one sentence", r"train\.tsv:3: wrong number of fields \(4 tab-separated, expected 5"),
    "too many fields": ("1\t1\t2\ta\tb\textra", r"train\.tsv:3: wrong number of fields \(6 tab-separated, expected 5"),
    "a label outside the task's set": ("7\t1\t2\ta\tb", r"train\.tsv:3: unknown label '7' for MRPC \(expected one of 0, 1\)"),
    "a row that is not UTF-8": ("1\t1\t2\tcaf\xe9\tb", r"train\.tsv:3: not UTF-8 text"),
}


def _glue_file(tmp_path: Path, bad_row: str) -> Path:
    folder = tmp_path / "MRPC"
    folder.mkdir()
    good = "1\t1\t2\tThe cat sat.\tA cat was sitting."
    content = "\n".join([MRPC_HEADER, good, bad_row, good]) + "\n"
    (folder / "train.tsv").write_bytes(content.encode("latin-1" if "\xe9" in bad_row else "utf-8"))
    return folder / "train.tsv"


@pytest.mark.parametrize("case", GLUE_CASES)
def test_glue_reader_error_or_counted_skip(case, tmp_path):
    row, error = GLUE_CASES[case]
    path = _glue_file(tmp_path, row)
    with pytest.raises(HfPretrainError, match=error):
        read_glue_tsv(str(path), GLUE_TASKS["mrpc"])
    bad = BadInput("skip")
    rows = read_glue_tsv(str(path), GLUE_TASKS["mrpc"], bad)
    assert len(rows) == 2 and sum(bad.counts.values()) == 1


def test_recipe_skips_bad_lines_by_flag_and_says_how_many(tmp_path):
    corpus = tmp_path / "corpus.txt"
    from .conftest import synthetic_documents

    text = "\n\n".join(" ".join(doc) for doc in synthetic_documents(30))
    corpus.write_bytes(text.encode() + b"\n\nNot \xff UTF-8 at all.\n")
    args = ["recipes/pretrain_bert.py", "--config", str(ROOT / "recipes" / "configs" / "debug.yaml"),
            "--train_file", str(corpus), "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
            "--output_dir", str(tmp_path / "out")]
    refused = run_recipe(*args)
    assert refused.returncode == 2 and "Traceback" not in refused.stdout
    assert "not UTF-8 text (byte 4 of the line)" in refused.stdout and "--on_bad_input skip" in refused.stdout
    skipped = run_recipe(*args, "--on_bad_input", "skip")
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    assert "skipped 1 bad lines or rows: 1 not UTF-8 text (first at " in skipped.stdout
