"""--streaming: packed rows made as the corpus files are read, each process on its own files, and exact resume from
the stream position a checkpoint saves (with SIGKILL, as the other fault tests)."""

from __future__ import annotations

import json
import sys
from itertools import islice
from pathlib import Path

import pytest

from hf_pretrain.training import checkpoints as checkpointing

from .conftest import DEBUG, ROOT, run_processes, run_recipe, synthetic_documents

pytestmark = pytest.mark.end_to_end

TOKENIZER = str(ROOT / "tests" / "golden" / "debug_tokenizer")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[Path]:
    """Four plain-text files of different sizes: the stream's shards."""
    folder = tmp_path_factory.mktemp("shards")
    documents = synthetic_documents(48, sentences=10)
    paths = []
    for i, (start, end) in enumerate([(0, 16), (16, 24), (24, 36), (36, 48)]):
        path = folder / f"part-{i}.txt"
        path.write_text("\n\n".join(" ".join(doc) for doc in documents[start:end]) + "\n")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def debug_tokenizer():
    from hf_pretrain.data.tokenizer import load_tokenizer

    return load_tokenizer(TOKENIZER)


def _rows(stream, n=None):
    return [(row["sequence_id"], list(row["input_ids"])) for row in islice(iter(stream), n)]


def test_a_stream_packs_each_file_as_the_in_memory_path_does_and_goes_round_again(shards, debug_tokenizer):
    from hf_pretrain.data.corpus import load_documents
    from hf_pretrain.data.sequences import pack_sequences, tokenize_documents
    from hf_pretrain.data.streaming import stream_dataset, stream_position, stream_sequence_id

    expected = []
    for shard, path in enumerate(shards):
        packed = pack_sequences(tokenize_documents(load_documents([str(path)]), debug_tokenizer),
                                debug_tokenizer.cls_token_id, debug_tokenizer.sep_token_id, 64, True)
        expected += [(stream_sequence_id(0, shard, row), ids) for row, ids in enumerate(packed["input_ids"])]
    rows = _rows(stream_dataset([str(p) for p in shards], debug_tokenizer, 64, True), len(expected) + 3)
    assert rows[: len(expected)] == expected
    assert {stream_position(i)[1] for i, _ in expected} == {0, 1, 2, 3}  # every file gives rows
    # Used up, the stream goes round again: the same rows, new ids (so new masks).
    assert [(stream_position(i), ids) for i, ids in rows[len(expected):]] == [
        ((1, 0, row), ids) for row, (_, ids) in enumerate(expected[:3])]


def test_a_resumed_stream_starts_after_its_position_without_opening_finished_files(shards, debug_tokenizer, tmp_path):
    from hf_pretrain.data.streaming import stream_dataset, stream_sequence_id

    files = [str(p) for p in shards]
    whole = _rows(stream_dataset(files, debug_tokenizer, 64, True), 200)
    position = next(k for k, (i, _) in enumerate(whole) if i == stream_sequence_id(0, 1, 2))
    # Shard 0 is finished at that position: the resumed stream must not read it (here it no longer exists).
    files[0] = str(tmp_path / "gone.txt")
    resumed = _rows(stream_dataset(files, debug_tokenizer, 64, True, start=stream_sequence_id(0, 1, 2)), 20)
    assert resumed == whole[position + 1 : position + 21]


def test_each_process_reads_its_own_files(shards, debug_tokenizer):
    from hf_pretrain.data.streaming import stream_dataset, stream_position

    stream = stream_dataset([str(p) for p in shards], debug_tokenizer, 64, True, num_processes=2)
    assert stream.n_shards == 2
    # What accelerate does with a datasets stream for process 1 of 2 (dispatch_batches=False): files 1 and 3.
    mine = _rows(stream.shard(num_shards=2, index=1), 60)
    assert {stream_position(i)[1] for i, _ in mine} == {1, 3}


def test_what_a_streamed_run_refuses(shards, tmp_path):
    from hf_pretrain.data.arguments import DataArguments
    from hf_pretrain.data.streaming import StreamState
    from hf_pretrain.errors import HfPretrainError
    from hf_pretrain.objectives import make_objective
    from hf_pretrain.objectives.arguments import PretrainingArguments
    from hf_pretrain.training.streaming import check_streaming

    data = DataArguments(train_file=[str(shards[0].parent)], streaming=True)
    mlm = make_objective(PretrainingArguments(objective="mlm"), 0)
    assert check_streaming(mlm, data, world_size=4, evaluates=False) == [str(p) for p in shards]
    cases = [
        (make_objective(PretrainingArguments(objective="mlm_nsp"), 0), data, 1, False,
         "--objective mlm_nsp builds its rows from the whole corpus"),
        (make_objective(PretrainingArguments(objective="mlm", masking="static"), 0), data, 1, False,
         "drop --masking static"),
        (mlm, data, 1, True, "pass a --validation_file, or --eval_strategy no"),
        (mlm, data, 5, False, "4 file(s) for 5 processes"),
        (mlm, DataArguments(train_file=[str(shards[0])], streaming=True, max_train_documents=3), 1, False,
         "bound the run with --max_steps"),
    ]
    for objective, arguments, world_size, evaluates, message in cases:
        with pytest.raises(HfPretrainError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_streaming(objective, arguments, world_size, evaluates)

    StreamState(41, world_size=2).save(str(tmp_path), rank=1)
    assert StreamState.load(str(tmp_path), rank=1, world_size=2) == StreamState(41, 2)
    with pytest.raises(HfPretrainError, match="saved by a --streaming run on 2 processes.*resume it on 2"):
        StreamState.load(str(tmp_path), rank=1, world_size=3)
    with pytest.raises(HfPretrainError, match="has no stream-rank-0.json"):
        StreamState.load(str(tmp_path), rank=0, world_size=2)


def _command(shards: list[Path], out: Path, *flags: str, source: tuple[str, ...] = ()) -> list[str]:
    """A streamed debug run of ``shards`` (or of ``source``, another corpus flag and its value)."""
    return ["recipes/pretrain_bert.py", "--config", DEBUG, "--objective", "mlm", "--streaming",
            *(source or ("--train_file", str(shards[0].parent))), "--tokenizer_name", TOKENIZER, "--eval_strategy",
            "no", "--logging_steps", "1", "--log_sequence_ids", "--output_dir", str(out), *flags]


RESUMED_FLAGS = ("--max_steps", "8", "--save_steps", "3")


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory) -> Path:
    """An uninterrupted streamed run of ``shards``: what a killed and resumed one must train, step by step."""
    out = tmp_path_factory.mktemp("streamed") / "reference"
    result = run_recipe(*_command(shards, out, *RESUMED_FLAGS))
    assert result.returncode == 0, result.stdout[-3000:]
    return out


@pytest.mark.faults
def test_a_streamed_run_killed_mid_run_resumes_exactly(shards, reference, tmp_path):
    from .test_faults import _batches, _kill_at_step, _losses

    flags = RESUMED_FLAGS
    killed = tmp_path / "killed"
    _kill_at_step([sys.executable, *_command(shards, killed, *flags)], killed, step=5)
    assert not (killed / "model.safetensors").exists()
    # The newest complete checkpoint: checkpoint-3, or checkpoint-6 where the run outpaced the kill (a step of this
    # model takes milliseconds, the kill polls every 50).
    newest = int(Path(checkpointing.checkpoints(str(killed))[-1]).name.split("-")[1])
    assert newest in (3, 6)
    resumed = run_recipe(*_command(shards, killed, *flags))
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"resuming the stream after sequence {_batches(reference)[(newest, 0)][-1]}" in resumed.stdout
    # Every step trains the rows of the uninterrupted run's step, none twice, none skipped; the same losses.
    assert _batches(killed) == _batches(reference)
    assert _losses(killed) == pytest.approx(_losses(reference), abs=1e-5)
    card = (killed / "README.md").read_text()
    assert "streamed, 4 shards" in card and "| training sequences | streamed (not counted) |" in card


@pytest.mark.faults
def test_a_hub_dataset_streams_file_by_file_and_resumes_exactly(shards, reference, tmp_path):
    """The same documents as ``shards``, as a Hub dataset of four JSON Lines data files on a loopback Hub: the run
    trains what the files' run trains, and killed after its checkpoint-6 (in the third file), the rerun does not
    download the second file again."""
    from hf_pretrain.data.corpus import read_documents

    from .hub_server import LoopbackHub
    from .test_faults import _batches, _kill_at_step, _losses

    killed = tmp_path / "hub"
    files = {f"data/train-{i:05d}-of-00004.jsonl": "".join(json.dumps({"text": text}) + "\n" for text in
                                                           read_documents(str(path))).encode()
             for i, path in enumerate(shards)}
    with LoopbackHub() as hub:
        hub.datasets["user/corpus"] = files
        env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
               "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf_home")}
        command = _command(shards, killed, *RESUMED_FLAGS, source=("--dataset_name", "user/corpus"))
        _kill_at_step([sys.executable, *command], killed, step=7, env=env)
        hub.downloads.clear()
        resumed = run_recipe(*command, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"resuming the stream after sequence {_batches(reference)[(6, 0)][-1]}" in resumed.stdout
    assert _batches(killed) == _batches(reference)
    assert _losses(killed) == pytest.approx(_losses(reference), abs=1e-5)
    # checkpoint-6 stands in the third file: the rerun reads it again and the fourth; the second, finished, is not
    # fetched (the first is, by datasets, which reads a file to learn the columns).
    fetched = {name.removeprefix("user/corpus/") for name in hub.downloads}
    assert {"data/train-00002-of-00004.jsonl", "data/train-00003-of-00004.jsonl"} <= fetched
    assert "data/train-00001-of-00004.jsonl" not in fetched
    assert "user/corpus (default) from the Hub (streamed, 4 shards)" in (killed / "README.md").read_text()


def test_two_processes_stream_their_own_files_and_save_where_each_stands(shards, debug_tokenizer, tmp_path):
    from hf_pretrain.data.streaming import StreamState, stream_dataset, stream_position

    result = run_processes(*_command(shards, tmp_path, "--max_steps", "4", "--save_steps", "2"))
    assert result.returncode == 0, result.stdout[-3000:]
    files = [str(p) for p in shards]
    for rank, own in ((0, {0, 2}), (1, {1, 3})):
        lines = (tmp_path / "sequence_ids" / f"rank-{rank}.jsonl").read_text().splitlines()
        trained = [json.loads(line)["sequence_ids"] for line in lines]
        ids = [i for batch in trained for i in batch]
        assert len(trained) == 4 and len(set(ids)) == len(ids) == 4 * 16
        assert {stream_position(i)[1] for i in ids} == own  # only its own files, both of them
        assert [stream_position(i) for i in ids] == sorted(stream_position(i) for i in ids)  # in stream order
        # checkpoint-2 holds where this process stood; a stream resumed there gives what steps 3 and 4 trained.
        state = StreamState.load(str(tmp_path / "checkpoint-2"), rank, world_size=2)
        assert state.sequence_id == trained[1][-1]
        # (debug.yaml packs full sentences: isolate_documents False)
        resumed = stream_dataset(files, debug_tokenizer, 64, False, start=state.sequence_id, num_processes=2)
        assert [i for i, _ in _rows(resumed.shard(num_shards=2, index=rank), 32)] == trained[2] + trained[3]
