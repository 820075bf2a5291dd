"""Corpora read as a stream (``--streaming``): packed training rows made as the files are read, for corpora larger than
a disk.

Each corpus file is a shard, and so is each data file of a Hub dataset (read through ``datasets``' streaming). Process
p of W reads only its own shards, files p, p + W, p + 2W... (the stream has one ``datasets`` shard per process, which
accelerate hands to that process), tokenizes and packs them as it goes, and goes round them again when they are used
up, so that no process runs dry before another. A row's ``sequence_id`` says where it comes from (the round, the shard
and the row's place in it), so masks, which the collator keys by that id, are the same whatever the number of
processes, and a checkpoint can say where each process's stream stands: the id of the last row it trained. A resumed
stream starts right after it, without opening the shards it has finished; only the shard it stopped in is read again
up to that row (rows are cut from tokenized text, which has no index to seek).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

import datasets
import numpy as np
import pyarrow as pa
from transformers import PreTrainedTokenizerBase

from ..errors import BadInput, HfPretrainError
from .corpus import hub_shard_documents, read_documents
from .sentences import split_sentences
from .sequences import encode_sentences, pack_blocks

ROW_BITS = 32  # rows per shard and round: up to 4 billion
SHARD_BITS = 20  # shards: up to a million files
STATE_FILE = "stream-rank-{rank}.json"  # in each checkpoint folder, one per process
DOCUMENTS_PER_CHUNK = 256  # tokenized and packed at a time: what bounds a stream's memory


def stream_sequence_id(round_: int, shard: int, row: int) -> int:
    """The ``sequence_id`` of row ``row`` of ``shard`` in round ``round_`` (0 for the first pass)."""
    return (round_ << (SHARD_BITS + ROW_BITS)) | (shard << ROW_BITS) | row


def stream_position(sequence_id: int) -> tuple[int, int, int]:
    """``(round, shard, row)`` of a streamed row's ``sequence_id``."""
    return (sequence_id >> (SHARD_BITS + ROW_BITS), (sequence_id >> ROW_BITS) & (2**SHARD_BITS - 1),
            sequence_id & (2**ROW_BITS - 1))


Shard = str | datasets.IterableDataset  # a corpus file's path, or one data file of a Hub dataset


def shard_documents(shard: Shard, text_column: str = "text", bad: BadInput | None = None) -> Iterator[str]:
    """The documents of one shard, in order."""
    if isinstance(shard, datasets.IterableDataset):
        return hub_shard_documents(shard, text_column)
    return read_documents(shard, text_column, bad)


def shard_rows(
    shard: Shard, tokenizer: PreTrainedTokenizerBase, max_seq_length: int, isolate_documents: bool,
    text_column: str = "text", bad: BadInput | None = None,
) -> Iterator[np.ndarray]:
    """The packed rows of one shard, in order (as :func:`~.sequences.pack_sequences` packs them); what its last row
    cannot fill is dropped, so rows never span two shards. An ``.arrow`` file is a shard of a prepared dataset's
    tokenized documents (``hf-pretrain prepare --num_shards``): packed without tokenizing again."""

    def chunks() -> Iterator:
        if isinstance(shard, str) and shard.endswith(".arrow"):
            with pa.memory_map(shard) as source:  # datasets writes Arrow IPC streams: read a record batch at a time
                for batch in pa.ipc.open_stream(source):
                    yield batch.column(batch.schema.get_field_index("sentences"))
            return
        documents = iter(shard_documents(shard, text_column, bad))
        while chunk := list(islice(documents, DOCUMENTS_PER_CHUNK)):
            yield encode_sentences([split_sentences(text) for text in chunk], tokenizer)

    for block in pack_blocks(chunks(), tokenizer.cls_token_id, tokenizer.sep_token_id, max_seq_length,
                             isolate_documents):
        yield from block


def packed_stream(
    assignments: Sequence[Sequence[tuple[int, Shard]]], tokenizer: PreTrainedTokenizerBase, max_seq_length: int,
    isolate_documents: bool, text_column: str = "text", start: int | None = None, on_bad_input: str = "error",
) -> Iterator[dict]:
    """Rows ``{"input_ids", "sequence_id"}`` of one process's shards (``assignments``: a one-item list of its
    ``(index, shard)`` pairs, as ``datasets`` passes a shard of the generator's arguments), round after round, from
    the row after ``start`` (a ``sequence_id``) on. A stream that yields nothing in a whole round ends."""
    (shards,) = assignments
    bad = BadInput(on_bad_input)
    first_round, first_shard, last_row = stream_position(start) if start is not None else (0, -1, -1)
    indices = [index for index, _ in shards]
    if start is not None and first_shard not in indices:
        raise HfPretrainError(f"the stream's saved position is in shard {first_shard}, which this process does not "
                              "read: resume with the number of processes the run was saved with")
    resume_at = indices.index(first_shard) if start is not None else 0
    round_ = first_round
    while True:
        produced = False
        for place, (index, shard) in enumerate(shards):
            resuming = round_ == first_round and start is not None
            if resuming and place < resume_at:
                continue  # finished before the checkpoint: not opened
            skip = last_row if resuming and place == resume_at else -1
            for row, input_ids in enumerate(shard_rows(shard, tokenizer, max_seq_length, isolate_documents,
                                                       text_column, bad)):
                produced = True
                if row > skip:
                    yield {"input_ids": input_ids.tolist(), "sequence_id": stream_sequence_id(round_, index, row)}
        if not produced:
            return
        round_ += 1


def stream_dataset(
    shards: Sequence[Shard], tokenizer: PreTrainedTokenizerBase, max_seq_length: int, isolate_documents: bool,
    text_column: str = "text", start: int | None = None, on_bad_input: str = "error", num_processes: int = 1,
) -> datasets.IterableDataset:
    """A ``datasets.IterableDataset`` of packed rows (see :func:`packed_stream`) with a shard per process: its
    files, strided, so that sizes even out. ``start`` is the calling process's position."""
    if len(shards) < num_processes:
        raise HfPretrainError(f"{len(shards)} shard(s) cannot give each of {num_processes} processes its own")
    assignments = [[(i, shards[i]) for i in range(p, len(shards), num_processes)] for p in range(num_processes)]
    features = datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32")),
                                  "sequence_id": datasets.Value("int64")})
    return datasets.IterableDataset.from_generator(
        packed_stream, features=features,
        gen_kwargs={"assignments": assignments, "tokenizer": tokenizer, "max_seq_length": max_seq_length,
                    "isolate_documents": isolate_documents, "text_column": text_column, "start": start,
                    "on_bad_input": on_bad_input},
    )


@dataclass(frozen=True)
class StreamState:
    """Where one process's stream stood at a checkpoint: the last row it trained, and the run's process count."""

    sequence_id: int
    world_size: int

    def save(self, checkpoint: str, rank: int) -> None:
        path = os.path.join(checkpoint, STATE_FILE.format(rank=rank))
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"sequence_id": self.sequence_id, "world_size": self.world_size,
                       "position": dict(zip(("round", "shard", "row"), stream_position(self.sequence_id)))}, f)
        os.replace(path + ".tmp", path)

    @classmethod
    def load(cls, checkpoint: str, rank: int, world_size: int) -> StreamState:
        """This process's state in ``checkpoint``, refused in one line if the run had another number of processes."""
        path = os.path.join(checkpoint, STATE_FILE.format(rank=rank))
        if not os.path.isfile(path):
            raise HfPretrainError(f"{checkpoint} has no {os.path.basename(path)}: it was not saved by a --streaming "
                                  "run with this process; resume it without --streaming, or start a new --output_dir")
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved["world_size"] != world_size:
            raise HfPretrainError(
                f"{checkpoint} was saved by a --streaming run on {saved['world_size']} processes, each with its own "
                f"shards; resume it on {saved['world_size']} (--num_processes), not {world_size}"
            )
        return cls(int(saved["sequence_id"]), world_size)
