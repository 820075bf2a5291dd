"""A pretraining run on a streamed corpus (``--streaming``): its data step, what it refuses before any work, and
the callback that saves each process's stream position in every checkpoint.

The Trainer resumes a map-style dataset by skipping the batches it has trained; on a stream that means reading
them again, so a streamed run sets ``ignore_data_skip`` and starts each process's stream after the last row it
trained instead (:class:`~hf_pretrain.data.streaming.StreamState`). Each process reads its own shards
(``dispatch_batches=False``: accelerate gives each process its own shard of a ``datasets`` stream rather than
reading everything on the main process and sending it; the stream has one shard per process, its files: corpus
files, a prepared dataset's Arrow files, or a Hub dataset's data files).
"""

from __future__ import annotations

import glob
import logging
import os
from itertools import islice

from datasets import Dataset, DatasetDict
from transformers import TrainerCallback, TrainingArguments

from ..data.arguments import DataArguments
from ..data.corpus import expand_paths, hub_shards, load_documents
from ..data.sequences import tokenize_documents
from ..data.streaming import Shard, StreamState, shard_documents, stream_dataset
from ..errors import BadInput, HfPretrainError
from ..models.arguments import ModelArguments
from ..objectives import Objective, streaming_objectives
from .callbacks import StepBatches
from .inputs import PretrainingData, describe_corpus, open_prepared, prepare_tokenizer

logger = logging.getLogger(__name__)

TOKENIZER_SAMPLE_DOCUMENTS = 20_000  # what a streamed run trains its tokenizer on: the stream's first documents


def check_streaming(objective: Objective, data_args: DataArguments, world_size: int, evaluates: bool,
                    output_dir: str | None = None) -> list[Shard]:
    """The stream's shards, or a one-line refusal of what a streamed run on ``world_size`` processes cannot do
    (before any work; a Hub dataset is looked up, not read)."""
    if not objective.streams:
        raise HfPretrainError(
            f"--streaming packs documents as they are read; --objective {objective.name} builds its rows from the "
            f"whole corpus: drop --streaming, or use one that streams ({', '.join(streaming_objectives())})"
        )
    if objective.args.masking == "static":
        raise HfPretrainError("--streaming masks rows as they are drawn: drop --masking static")
    if data_args.max_train_documents is not None:
        raise HfPretrainError("--max_train_documents reads a sample into memory: with --streaming, bound the run "
                              "with --max_steps or --max_train_minutes")
    if evaluates and not (data_args.validation_file or data_args.prepared_dataset):
        raise HfPretrainError("--streaming holds no documents out for evaluation: pass a --validation_file, or "
                              "--eval_strategy no")
    shards = stream_shards(data_args, output_dir)
    if len(shards) < world_size:
        split = (f"push --dataset_name {data_args.dataset_name} in at least as many data files" if data_args.dataset_name
                 else "split the corpus into at least as many files")
        raise HfPretrainError(f"--streaming gives each process its own files: {len(shards)} file(s) for {world_size} "
                              f"processes; {split}, or run fewer processes")
    if len(shards) % world_size:
        logger.warning("--streaming: %d files over %d processes: some processes read more files than others (each "
                       "goes round its own again when done)", len(shards), world_size)
    return shards


def stream_shards(data_args: DataArguments, output_dir: str | None = None) -> list[Shard]:
    """The stream's shards: the ``--train_file`` files (less any inside the run's ``output_dir``), a Hub dataset's
    data files, or a prepared dataset's tokenized train files."""
    if data_args.dataset_name:
        return hub_shards(data_args.dataset_name, data_args.dataset_config_name, data_args.text_column_name)
    if not data_args.prepared_dataset:
        return expand_paths(data_args.train_file or [], output_dir)
    folder = os.path.join(data_args.prepared_dataset, "tokenized", "train")
    files = sorted(glob.glob(os.path.join(folder, "*.arrow")))
    if not files:
        raise HfPretrainError(f"--prepared_dataset {data_args.prepared_dataset}: no tokenized train files in {folder}; "
                              "run hf-pretrain prepare")
    return files


def stream_start(checkpoint: str | None, training_args: TrainingArguments) -> int | None:
    """The ``sequence_id`` this process last trained, from ``checkpoint`` (None for a fresh run)."""
    if checkpoint is None:
        return None
    state = StreamState.load(checkpoint, training_args.process_index, training_args.world_size)
    logger.info("resuming the stream after sequence %d (%s)", state.sequence_id, checkpoint)
    return state.sequence_id


def tokenizer_sample(shards: list[Shard], data_args: DataArguments, n: int = TOKENIZER_SAMPLE_DOCUMENTS
                     ) -> DatasetDict:
    """The stream's first ``n`` documents: what a streamed run trains its tokenizer on."""
    bad = BadInput(data_args.on_bad_input)
    documents = (text for shard in shards for text in shard_documents(shard, data_args.text_column_name, bad))
    return DatasetDict(train=Dataset.from_dict({"text": list(islice(documents, n))}))


def prepare_streaming_data(
    objective: Objective, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments,
    checkpoint: str | None,
) -> PretrainingData:
    """The recipes' data step for ``--streaming``: the tokenizer, the training stream, validation rows if any."""
    shards = check_streaming(objective, data_args, training_args.world_size, training_args.eval_strategy != "no",
                             training_args.output_dir)
    start = stream_start(checkpoint, training_args)
    documents = DatasetDict()
    if data_args.prepared_dataset:  # tokenized already, with its own tokenizer
        prepared, tokenizer, tokenizer_description = open_prepared(data_args, model_args)
        validation = prepared.tokenized["validation"] if len(prepared.tokenized.get("validation", [])) else None
    else:
        needs_sample = training_args.process_index == 0 and not (
            model_args.tokenizer_name or model_args.model_name_or_path or checkpoint)
        sample = tokenizer_sample(shards, data_args) if needs_sample else DatasetDict(train=Dataset.from_dict({"text": []}))
        tokenizer, tokenizer_description = prepare_tokenizer(
            sample, model_args, data_args, training_args, checkpoint, objective.default_model_type
        )
        if needs_sample:
            tokenizer_description += f", from the stream's first {len(sample['train']):,} documents"
        validation = None
        if data_args.validation_file:
            documents["validation"] = load_documents(data_args.validation_file, data_args.text_column_name,
                                                     bad=BadInput(data_args.on_bad_input))
            validation = tokenize_documents(documents["validation"], tokenizer)
    sequences = DatasetDict(train=stream_dataset(
        shards, tokenizer, data_args.max_seq_length, objective.document_stream, data_args.text_column_name,
        start, data_args.on_bad_input, training_args.world_size,
    ))
    if validation is not None and training_args.eval_strategy != "no":
        sequences["validation"] = objective.build_rows(
            validation, tokenizer, split="validation", max_seq_length=data_args.max_seq_length,
            source=describe_corpus(data_args) + " (validation)",
        )
    corpus = f"{describe_corpus(data_args)} (streamed, {len(shards)} shards)"
    return PretrainingData(documents, sequences, tokenizer, corpus, tokenizer_description)


class StreamPositionCallback(TrainerCallback):
    """Writes, into every checkpoint, the id of the last row this process trained (``stream-rank-<r>.json``):
    where its stream resumes. It runs before the manifest is written, so a complete checkpoint has it."""

    def __init__(self, batches: StepBatches) -> None:
        self.batches = batches

    def on_save(self, args, state, control, **kwargs):
        trained = [ids for ids in self.batches.sequence_ids if ids is not None and len(ids)]
        if not trained:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        StreamState(int(trained[-1][-1]), args.world_size).save(folder, args.process_index)
