"""Layer 2: corpus readers for every format and compression, and their errors."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hf_pretrain.data.corpus import load_corpus, load_documents, stdlib_docstrings
from hf_pretrain.errors import HfPretrainError

from .conftest import ROOT, SHARED_DATA, requires_shared_data

GOLDEN_TOKENIZER = ROOT / "tests" / "golden" / "debug_tokenizer"

pytestmark = pytest.mark.component

PLAIN = "First paragraph of doc one.\nSecond paragraph of doc one.\n\nOnly paragraph of doc two.\n"
EXPECTED = ["First paragraph of doc one.\nSecond paragraph of doc one.", "Only paragraph of doc two."]
WIKI = (
    '<doc id="1" url="http://x?curid=1" title="Alpha">\nAlpha\n\nAlpha is a letter.\nIt comes first.\n</doc>\n'
    '<doc id="2" url="http://x?curid=2" title="Beta">\nBeta\n\nBeta follows alpha.\n</doc>\n'
)
COMPRESSORS = {"": lambda b: b, ".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": zstandard.compress}


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz"])
@pytest.mark.faults
def test_csv_and_tsv_are_read_by_their_columns(tmp_path, suffix):
    """--text_column_name names the column; never the raw rows as one plain-text document."""
    separator = "," if suffix == ".csv" else "\t"
    rows = [["id", "body"], ["1", '"The first document, with a comma."'], ["2", '"Quoted, and\nover two lines."'],
            ["3", "Plain text."]]
    text = "".join(separator.join(row) + "\n" for row in rows)
    path = tmp_path / f"corpus{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    expected = ["The first document, with a comma.", "Quoted, and\nover two lines.", "Plain text."]
    assert load_documents([str(path)], "body")["text"] == expected
    with pytest.raises(HfPretrainError, match=rf"corpus{suffix}:1: no 'text' column in the header \(columns: id, "
                                              r"body\); set --text_column_name"):
        load_documents([str(path)])


@pytest.mark.faults
def test_a_csv_row_with_the_wrong_number_of_fields_is_named_or_skipped(tmp_path):
    from hf_pretrain.errors import BadInput

    path = tmp_path / "corpus.csv"
    path.write_text("id,body\n1,Fine text here.\n2,one,too many\n3,More fine text.\n")
    with pytest.raises(HfPretrainError, match=r"corpus\.csv:3: 3 fields, the header has 2"):
        load_documents([str(path)], "body")
    bad = BadInput("skip")
    assert load_documents([str(path)], "body", bad=bad)["text"] == ["Fine text here.", "More fine text."]
    assert bad.counts == {"3 fields, the header has 2": 1}


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
@pytest.mark.faults
def test_plain_text_in_every_compression(tmp_path, suffix):
    path = tmp_path / f"corpus.txt{suffix}"
    path.write_bytes(COMPRESSORS[suffix](PLAIN.encode()))
    assert load_documents([str(path)])["text"] == EXPECTED


@pytest.mark.parametrize("suffix", ["", ".bz2", ".gz"])
def test_wikiextractor_drops_markup_and_title(tmp_path, suffix):
    path = tmp_path / f"wiki_00{suffix}"
    path.write_bytes(COMPRESSORS[suffix](WIKI.encode()))
    assert load_documents([str(path)])["text"] == ["Alpha is a letter.\nIt comes first.", "Beta follows alpha."]


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_jsonl_with_text_column(tmp_path, suffix):
    lines = [json.dumps({"text": t, "id": i}) for i, t in enumerate(EXPECTED)]
    path = tmp_path / f"c.jsonl{suffix}"
    path.write_bytes(COMPRESSORS[suffix](("\n".join(lines) + "\n").encode()))
    assert load_documents([str(path)])["text"] == EXPECTED


@pytest.mark.faults
def test_parquet_and_custom_text_column(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": EXPECTED, "n": [1, 2]}), path)
    assert load_documents([str(path)], text_column="body")["text"] == EXPECTED
    with pytest.raises(HfPretrainError, match=r"c\.parquet: no 'text' column \(columns: body, n\)"):
        load_documents([str(path)])
    with pytest.raises(HfPretrainError, match=r"c\.parquet: the 'n' column holds int64, not text \(columns: body, n\); "
                       "set --text_column_name to the column of text"):
        load_documents([str(path)], text_column="n")


def test_globs_and_directories_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("doc b\n")
    (tmp_path / "sub" / "a.txt").write_text("doc a\n")
    (tmp_path / ".hidden").write_text("ignored\n")
    assert load_documents([str(tmp_path)])["text"] == ["doc b", "doc a"]
    assert load_documents([str(tmp_path / "*.txt")])["text"] == ["doc b"]
    assert load_documents([str(tmp_path / "**" / "*.txt")])["text"] == ["doc b", "doc a"]


@pytest.mark.faults
def test_symbolic_links_are_followed_once_and_a_loop_is_one_line(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "a.txt").write_text("doc a\n")
    (corpus / "loop").symlink_to(corpus)  # back to its own parent: walked once, not forever
    (corpus / "again").symlink_to(corpus / "sub")  # the same folder twice: its file read once
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.txt").write_text("doc b\n")
    (corpus / "linked").symlink_to(tmp_path / "elsewhere")  # a link to a folder of data is followed
    assert sorted(load_documents([str(corpus)])["text"]) == ["doc a", "doc b"]
    (corpus / "self").symlink_to(corpus / "self")
    with pytest.raises(HfPretrainError, match=r"corpus/self: a symbolic link that loops or points nowhere"):
        load_documents([str(corpus)])
    with pytest.raises(HfPretrainError, match=r"corpus/self: a symbolic link that loops or points nowhere"):
        load_documents([str(corpus / "self")])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.txt", b"", r"empty\.txt: the file is empty"),
        ("blank.txt", b"\n\n  \n", r"blank\.txt: no document with any text"),
        ("latin1.txt", "ok line\ncaf\xe9\n".encode("latin-1"), r"latin1\.txt:2: not UTF-8"),
        ("nul.txt", b"text\n\x00\x00\x00\n", r"nul\.txt:2: NUL bytes"),
        ("bad.jsonl", b'{"text": "a"}\n{broken\n', r"bad\.jsonl:2: not valid JSON"),
        ("nocol.jsonl", b'{"body": "a"}\n', r"nocol\.jsonl:1: no 'text' field"),
        ("open.txt", b'<doc id="1">\nT\n\ntext\n', r"open\.txt: the <doc> opened at line 1 is never closed"),
        ("fake.txt.gz", b"not gzip at all", r"fake\.txt\.gz: cannot be read"),
    ],
)
@pytest.mark.faults
def test_bad_input_names_the_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(HfPretrainError, match=message):
        load_documents([str(tmp_path / name)])


@pytest.mark.faults
def test_missing_paths(tmp_path):
    with pytest.raises(HfPretrainError, match="no such file or directory"):
        load_documents([str(tmp_path / "nope.txt")])
    with pytest.raises(HfPretrainError, match="no file matches"):
        load_documents([str(tmp_path / "*.nope")])


def test_validation_split_is_deterministic_and_by_document(corpus_file):
    a = load_corpus([str(corpus_file)], validation_split_percentage=10, seed=0)
    b = load_corpus([str(corpus_file)], validation_split_percentage=10, seed=0)
    c = load_corpus([str(corpus_file)], validation_split_percentage=10, seed=1)
    assert a["validation"]["text"] == b["validation"]["text"]
    assert a["validation"]["text"] != c["validation"]["text"]
    assert len(a["validation"]) == 4 and len(a["train"]) == 36
    assert not set(a["train"]["text"]) & set(a["validation"]["text"])
    assert list(load_corpus([str(corpus_file)], validation_split_percentage=0)) == ["train"]


@pytest.mark.faults
def test_too_few_documents_to_hold_out(tmp_path):
    (tmp_path / "one.txt").write_text("a single document\n")
    with pytest.raises(HfPretrainError, match="too few to hold out"):
        load_corpus([str(tmp_path / "one.txt")])


def test_the_default_corpus_walks_the_files_a_glob_finds():
    """The sources are walked, pruning left-out folders, for speed; the list (and so the corpus and the golden
    losses) is the one the plain recursive glob gives."""
    import glob
    import os
    import sysconfig

    from hf_pretrain.data import corpus

    root = sysconfig.get_paths()["stdlib"]
    globbed = [p for p in sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True))
               if not any(part in p for part in ("site-packages", "test", "idlelib", "lib2to3"))]
    assert corpus._stdlib_sources() == globbed and len(globbed) > 300


def test_embedded_default_corpus():
    docs = stdlib_docstrings()
    assert len(docs) > 300
    assert sum(len(t) for t in docs["text"]) > 1_000_000
    assert any("pickle" in t.lower() for t in docs["text"])


def test_the_embedded_corpus_is_parsed_once_then_read_from_its_cache(tmp_path, monkeypatch):
    import ast

    from datasets import Dataset

    from hf_pretrain.data import corpus

    sources = corpus._stdlib_sources()[:40]  # a part of the standard library, to keep each parse short
    monkeypatch.setattr(corpus, "_stdlib_sources", lambda: sources)
    first = list(stdlib_docstrings(cache_dir=tmp_path)["text"])
    (cached,) = tmp_path.glob("stdlib_docstrings-*.arrow")

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cached corpus was parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(ast, "parse", no_parsing)
        assert list(stdlib_docstrings(cache_dir=tmp_path)["text"]) == first

    cached.write_bytes(cached.read_bytes()[:100])  # a torn file is parsed again and replaced
    assert list(stdlib_docstrings(cache_dir=tmp_path)["text"]) == first
    assert Dataset.from_file(str(cached))["text"] == first
    # Memory-mapped from the cache, so its fingerprint, and with it the cache of every map over it, is every run's.
    assert stdlib_docstrings(cache_dir=tmp_path)._fingerprint == stdlib_docstrings(cache_dir=tmp_path)._fingerprint
    # Where the cache cannot be written, the corpus is still read.
    assert list(stdlib_docstrings(cache_dir=cached / "not-a-folder")["text"]) == first
    # A changed standard library (here: one source fewer) is another key: parsed again, cached beside the first.
    monkeypatch.setattr(corpus, "_stdlib_sources", lambda: sources[1:])
    assert list(stdlib_docstrings(cache_dir=tmp_path)["text"]) != first
    assert len(list(tmp_path.glob("stdlib_docstrings-*.arrow"))) == 2


def test_docstrings_come_in_the_order_of_a_full_walk():
    import ast

    from hf_pretrain.data.corpus import _docstrings

    source = '''
"""module"""
if True:
    def in_if():
        """in if"""
        class Deep:
            """deep"""
try:
    pass
except ValueError:
    def in_handler():
        """in handler"""
else:
    async def in_else():
        """in else"""
finally:
    def in_finally():
        """in finally"""
match 1:
    case 1:
        def in_case():
            """in case"""
class Top:
    """top"""
    def method(self):
        """method"""
        for _ in ():
            while False:
                def in_loops():
                    """in loops"""
    f = lambda: None
def top():
    """top function"""
'''
    tree = ast.parse(source)
    walked = [ast.get_docstring(node) for node in ast.walk(tree)
              if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    assert _docstrings(tree) == walked
    assert len(walked) == 11 and walked[0] == "module" and walked[-1] == "in loops"


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The Hub as a user without a connection meets it: online mode, an endpoint that refuses connections."""
    import socket

    from huggingface_hub import constants

    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens on it
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    return constants.ENDPOINT


@pytest.mark.faults
def test_every_way_into_the_hub_fails_at_once_when_it_cannot_be_reached(unreachable_hub, tmp_path):
    """Without the probe, huggingface_hub retries five times with backoff: 25 s before the same refusal."""
    import time

    from hf_pretrain import GLUE_TASKS, load_glue, load_tokenizer
    from hf_pretrain.glue.finetune import usable_length
    from hf_pretrain.models.arguments import ModelArguments
    from hf_pretrain.models.loading import resolve_model_type

    start = time.perf_counter()
    refusals = {
        "--dataset_name wikitext": lambda: load_corpus(None, dataset_name="wikitext"),
        "--task_name mrpc without --glue_dir (nyu-mll/glue)": lambda: load_glue(GLUE_TASKS["mrpc"], None),
        "--tokenizer_name google-bert/bert-base-uncased": lambda: load_tokenizer(
            "google-bert/bert-base-uncased", flag="--tokenizer_name"),
        "--model_name_or_path google-bert/bert-base-uncased": lambda: resolve_model_type(
            ModelArguments(model_name_or_path="google-bert/bert-base-uncased")),
        "--config_name google-bert/bert-base-uncased": lambda: resolve_model_type(
            ModelArguments(config_name="google-bert/bert-base-uncased")),
        "--model_name_or_path user/classifier": lambda: usable_length("user/classifier", 128),
    }
    for what, call in refusals.items():
        with pytest.raises(HfPretrainError) as refused:
            call()
        local = "" if what.startswith(("--dataset_name", "--task_name")) else "not a local folder, and "
        assert str(refused.value).startswith(f"{what}: {local}the Hub ({unreachable_hub}) cannot be reached ("), what
        assert str(refused.value).endswith("or set HF_HUB_OFFLINE=1 to use a copy in your Hugging Face cache")
    assert time.perf_counter() - start < 10  # six refusals, each one connection refused: well under one retry loop
    # A local folder is never sent to the Hub, reachable or not.
    assert load_tokenizer(str(GOLDEN_TOKENIZER)).vocab_size > 0


@pytest.mark.faults
def test_hub_dataset_fails_early_offline(monkeypatch):
    """In offline mode nothing is asked of the network: the library looks in its cache and the miss is one line."""
    import datasets
    from huggingface_hub import constants

    from hf_pretrain.data.corpus import hub_shards

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(HfPretrainError, match="--dataset_name wikitext: could not load it from the Hub"):
        load_corpus(None, dataset_name="wikitext", dataset_config_name="wikitext-2-raw-v1")
    with pytest.raises(HfPretrainError, match="--dataset_name wikitext: could not load it from the Hub"):
        hub_shards("wikitext", "wikitext-2-raw-v1")  # --streaming's way in


@requires_shared_data
def test_real_wikiextractor_dump():
    docs = load_documents([str(SHARED_DATA / "wikipedia" / "AA" / "wiki_00.bz2")])
    assert 30 < len(docs) < 200
    assert docs[0]["text"].startswith("Anarchism is a political philosophy")
    assert not any("<doc" in t or "</doc>" in t for t in docs["text"])


def test_tokenizer_vocabulary_is_numbered_canonically(corpus_file):
    import random

    from hf_pretrain.data.tokenizer import SPECIAL_TOKENS, canonical_vocab, train_wordpiece_tokenizer

    tokens = ["##b", "cat", "[CLS]", "##a", "[PAD]", "a", "[MASK]", "[SEP]", "[UNK]"]
    shuffled = tokens[:]
    random.Random(0).shuffle(shuffled)
    expected = {t: i for i, t in enumerate([*SPECIAL_TOKENS, "a", "cat", "##a", "##b"])}
    assert canonical_vocab(dict.fromkeys(tokens, 0)) == canonical_vocab(dict.fromkeys(shuffled, 0)) == expected

    first = train_wordpiece_tokenizer(load_documents([str(corpus_file)])["text"], vocab_size=300)
    assert first.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS


@pytest.mark.faults
def test_tokenizer_training_gives_the_same_vocabulary_in_every_process():
    """tokenizers numbers WordPiece's ##c pieces in hash order, which changes per process, and breaks merge ties by
    those numbers: before the fix, two processes trained different vocabularies here."""
    script = (
        "import hashlib, random\n"
        "from hf_pretrain.data.tokenizer import BERT_SPECIALS, ROBERTA_SPECIALS, train_tokenizer\n"
        "rng = random.Random(0)\n"
        "words = [''.join(rng.choice('abcdefghijklmnop') for _ in range(rng.randint(3, 9))) for _ in range(3000)]\n"
        "texts = [' '.join(words[i:i + 100]) for i in range(0, 3000, 100)]\n"
        "for kind, specials in (('wordpiece', BERT_SPECIALS), ('wordpiece', ROBERTA_SPECIALS), ('bpe', ROBERTA_SPECIALS)):\n"
        "    tokenizer = train_tokenizer(texts, kind, specials, vocab_size=400)\n"
        "    print(hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest())\n"
    )
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert len(runs[0].split()) == 3 and runs[0] == runs[1]
