"""Where ``hf-pretrain prepare`` runs (:func:`prepare_corpus`): in this process (``--tasks 1``, the default), or with
``--tasks N [--executor local|slurm|ray]`` as two datatrove stages, run as tasks by datatrove's executors (processes
on this machine, a Slurm job array, a Ray cluster).

``clean`` (N tasks): task r takes the r-th of N contiguous runs of the sorted input files (balanced by bytes), reads
them, normalizes, splits into sentences, judges each document by the quality filters and computes the kept ones'
deduplication keys (:func:`~.dedup.hash_texts`, a pure function of the text), and writes one Arrow file.
``finish`` (1 task): reads those files in task order, which is the files' order, and runs the rest as a one-process
preparation does (duplicate matching, semantic deduplication, the split, the tokenizer, tokenization, the report):
the kept documents, their order and the tokenized rows are a one-process preparation's, whatever N.

Why the matching is ours rather than datatrove's MinHash stages: they remove every document that shares a band
with another (no check of the signatures' agreement against the threshold) and keep one document per connected
cluster chosen by the union-find's layout, which depends on how the files were spread over the tasks; ours removes
a document only when its signature agrees with an earlier one's at the threshold, and keeps the earliest, so the
output does not depend on N (docs/data.md has the comparison).

Resuming: the executors record each finished task (``completions/`` under ``OUTPUT_DIR/.datatrove/STAGE``, beside
their logs and stats). A rerun of the same preparation (same fingerprint, same --tasks) keeps the work folder and
skips the finished tasks; any other run starts afresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
from collections import Counter

import numpy as np
from datasets import Dataset, Features, List, Value, concatenate_datasets
from datasets.arrow_writer import ArrowWriter
from datatrove.executor import LocalPipelineExecutor, SlurmPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from ..errors import BadInput, HfPretrainError
from ..rng import Stream, legacy_seed
from ..runtime import OutputDirLock
from .arguments import PrepareArguments
from .cleaning import QualityFilters
from .dedup import hash_features, hash_texts
from .pipeline import (
    BATCH, STAGE_FOLDERS, WORK, check_nothing_foreign, check_output_dir, clean_texts, finish_preparation, fingerprint,
    input_files, prepare_in_process, read_texts, reuse, start_afresh,
)

logger = logging.getLogger(__name__)
LOGS = ".datatrove"  # the executors' logging folders, one per stage: logs, stats, completions
STATE = "tasks.json"  # in the work folder: the fingerprint and --tasks its task outputs belong to


def prepare_corpus(args: PrepareArguments, filters: QualityFilters) -> dict | None:
    """Prepare ``args.train_file`` into ``args.output_dir`` and return the report (None when submitted to Slurm);
    reuse a finished preparation of the same inputs and settings unless ``args.overwrite_cache``. The folder is
    locked while this runs, as a recipe's is: a second preparation into it is refused rather than mixed with this."""
    check_output_dir(args.output_dir)
    lock = OutputDirLock(args.output_dir)
    lock.acquire()
    try:
        files = input_files(args)
        key = fingerprint(args, filters, files)
        if (report := reuse(args, key)) is not None:
            return report
        if args.tasks == 1 and args.executor == "local":
            return prepare_in_process(args, filters, files, key)
        return run_in_tasks(args, filters, files, key)
    finally:
        lock.release()


def file_runs(files: list[str], tasks: int) -> list[list[str]]:
    """``files`` cut into ``tasks`` contiguous runs of about equal bytes (a file is never split; a run may be
    empty when there are fewer files than tasks). Concatenated in order they are ``files``."""
    sizes = np.array([os.path.getsize(path) for path in files], np.float64)
    total = sizes.sum()
    if total == 0:
        middles = np.arange(len(files)) + 0.5
        total = float(len(files))
    else:
        middles = np.cumsum(sizes) - sizes / 2
    owner = np.minimum((middles * tasks / total).astype(np.int64), tasks - 1)
    return [[path for path, task in zip(files, owner) if task == rank] for rank in range(tasks)]


def clean_features(args: PrepareArguments) -> Features:
    return Features({
        "raw": Value("string"), "text": Value("string"), "sentences": List(Value("string")),
        "dropped": Value("string"),
        **hash_features(exact=args.dedup_exact, near=args.dedup_near, threshold=args.minhash_threshold,
                        num_perm=args.minhash_num_perm),
    })


def _shard_path(work: str, rank: int) -> str:
    return os.path.join(work, "clean", f"{rank:05d}.arrow")


class CleanFiles(PipelineStep):
    """Stage ``clean``: one task's run of the input files, read, cleaned, judged and hashed into one Arrow file
    (written under a temporary name and renamed when complete, so a killed task leaves nothing that looks done)."""

    name = "read, clean, filter, hash"
    type = "hf_pretrain"

    def __init__(self, args: PrepareArguments, filters: QualityFilters, files: list[str], work: str) -> None:
        super().__init__()
        self.args, self.filters, self.files, self.work = args, filters, files, work

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        try:
            self._run(rank, world_size)
        except HfPretrainError as err:  # the user's input: `prepare` says it in one line, not as a task's traceback
            with open(_shard_path(self.work, rank) + ".error", "w", encoding="utf-8") as f:
                f.write(str(err))
        return data

    def _run(self, rank: int, world_size: int) -> None:
        args = self.args
        files = file_runs(self.files, world_size)[rank]
        bad = BadInput(args.on_bad_input)
        path = _shard_path(self.work, rank)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        hashing = {"exact": args.dedup_exact, "near": args.dedup_near, "threshold": args.minhash_threshold,
                   "num_perm": args.minhash_num_perm, "seed": legacy_seed(Stream.MINHASH, args.seed)}
        features = clean_features(args)
        documents = 0
        with ArrowWriter(features=features, path=path + ".tmp", writer_batch_size=BATCH) as writer:
            batch: list[str] = []
            for text in read_texts(files, args, bad):
                batch.append(text)
                documents += 1
                if len(batch) == BATCH:
                    writer.write_batch(self._clean_batch(batch, hashing, features))
                    batch = []
            if batch:
                writer.write_batch(self._clean_batch(batch, hashing, features))
            writer.finalize()
        with open(path + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump({"files": files, "bad_input_skipped": dict(bad.counts)}, f)
        os.replace(path + ".json.tmp", path + ".json")
        os.replace(path + ".tmp", path)
        self.stat_update("documents", value=documents)

    def _clean_batch(self, texts: list[str], hashing: dict, features: Features) -> dict[str, list]:
        cleaned = clean_texts(texts, self.args, self.filters)
        kept = [row for row, reason in enumerate(cleaned["dropped"]) if not reason]
        keys = hash_texts([cleaned["text"][row] for row in kept], **hashing)
        columns = {"raw": texts, **cleaned}
        for name, values in keys.items():  # a dropped document's keys are zeros: never read (it is filtered out first)
            full = np.zeros((len(texts), *values.shape[1:]), values.dtype)
            full[kept] = values
            columns[name] = list(full)
        return {name: columns[name] for name in features}


class Finish(PipelineStep):
    """Stage ``finish`` (one task): the clean tasks' files in task order, then the rest of the preparation."""

    name = "deduplicate, split, tokenize, report"
    type = "hf_pretrain"

    def __init__(self, args: PrepareArguments, filters: QualityFilters, files: list[str], key: str, tasks: int) -> None:
        super().__init__()
        self.args, self.filters, self.files, self.key, self.tasks = args, filters, files, key, tasks

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        args = self.args
        work = os.path.join(args.output_dir, WORK)
        check_clean_tasks(args, self.tasks)  # under Slurm, the finish job is where a clean task's error shows
        shards = [Dataset.from_file(_shard_path(work, task)) for task in range(self.tasks)]
        table = concatenate_datasets(shards)
        skipped: Counter = Counter()
        for task in range(self.tasks):
            with open(_shard_path(work, task) + ".json", encoding="utf-8") as f:
                skipped.update(json.load(f)["bad_input_skipped"])
        for name in STAGE_FOLDERS:  # what a finish killed midway wrote
            shutil.rmtree(os.path.join(args.output_dir, name), ignore_errors=True)
        raw = table.select_columns("raw").rename_column("raw", "text")
        cleaned = table.remove_columns("raw")
        report = finish_preparation(args, self.filters, self.files, self.key, raw, cleaned, dict(skipped))
        self.stat_update("documents", value=len(table))
        self.stat_update("kept", value=sum(report["splits"].values()))
        return data


def check_clean_tasks(args: PrepareArguments, tasks: int) -> None:
    """Raise the first clean task's error, if one met bad input, after reopening the failed tasks (their completion
    marks removed) so that a rerun, once the input is fixed, runs them again."""
    work, errors = os.path.join(args.output_dir, WORK), []
    for rank in range(tasks):
        path = _shard_path(work, rank) + ".error"
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                errors.append(f.read())
            os.remove(path)
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(args.output_dir, LOGS, "clean", "completions", f"{rank:05d}"))
    if errors:
        raise HfPretrainError(errors[0])


def _state(work: str) -> dict | None:
    try:
        with open(os.path.join(work, STATE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def executors(args: PrepareArguments, filters: QualityFilters, files: list[str], key: str):
    """The two stages' executors, ``finish`` depending on ``clean``: running the last runs both."""
    logs = os.path.join(args.output_dir, LOGS)
    work = os.path.join(args.output_dir, WORK)
    clean = [CleanFiles(args, filters, files, work)]
    if args.executor == "local":
        workers = args.workers or args.tasks
        # fork: the workers start with this process's modules imported (a fresh interpreter spends seconds on them)
        first = LocalPipelineExecutor(clean, tasks=args.tasks, workers=workers, logging_dir=os.path.join(logs, "clean"),
                                      start_method="fork")
        return first, LocalPipelineExecutor([Finish(args, filters, files, key, args.tasks)], tasks=1, workers=1,
                                            logging_dir=os.path.join(logs, "finish"), depends=first)
    finish = [Finish(args, filters, files, key, args.tasks)]
    finish_cpus = max(args.cpus_per_task, args.num_proc or 1)  # its tokenization runs in --num_proc processes
    if args.executor == "slurm":
        activate = os.path.join(sys.prefix, "bin", "activate")
        common = {
            "time": args.slurm_time, "partition": args.slurm_partition, "mem_per_cpu_gb": args.mem_per_cpu_gb,
            "env_command": args.slurm_env_command or (f"source {activate}" if os.path.isfile(activate) else None),
        }
        first = SlurmPipelineExecutor(clean, tasks=args.tasks, workers=args.workers or -1, job_name="hf-pretrain-clean",
                                      cpus_per_task=args.cpus_per_task, logging_dir=os.path.join(logs, "clean"),
                                      slurm_logs_folder=os.path.join(logs, "clean", "slurm"), **common)
        return first, SlurmPipelineExecutor(
            finish, tasks=1, job_name="hf-pretrain-finish", cpus_per_task=finish_cpus,
            logging_dir=os.path.join(logs, "finish"), slurm_logs_folder=os.path.join(logs, "finish", "slurm"),
            depends=first, **common)
    try:
        from datatrove.executor.ray import RayPipelineExecutor
        import ray  # noqa: F401
    except ImportError:
        raise HfPretrainError("--executor ray needs Ray: pip install 'hf-pretrain[ray]' (then start or join a cluster: "
                              "ray start --head)") from None
    first = RayPipelineExecutor(clean, tasks=args.tasks, workers=args.workers or -1,
                                logging_dir=os.path.join(logs, "clean"), cpus_per_task=args.cpus_per_task,
                                mem_per_cpu_gb=args.mem_per_cpu_gb)
    return first, RayPipelineExecutor(finish, tasks=1, logging_dir=os.path.join(logs, "finish"), depends=first,
                                      cpus_per_task=finish_cpus, mem_per_cpu_gb=args.mem_per_cpu_gb)


def run_in_tasks(args: PrepareArguments, filters: QualityFilters, files: list[str], key: str) -> dict | None:
    """Run (or, with Slurm, submit) the two stages; resume a killed run of the same preparation. Returns the
    report, or None when the stages were submitted to Slurm (the last job writes the folder)."""
    work = os.path.join(args.output_dir, WORK)
    state = {"fingerprint": key, "tasks": args.tasks}
    for path in files:  # the one input error the tasks would otherwise meet only when their turn comes
        if os.path.getsize(path) == 0:
            raise HfPretrainError(f"{path}: the file is empty")
    if _state(work) == state:
        check_nothing_foreign(args.output_dir)
        logger.info("%s: resuming the preparation of %d task(s); finished tasks are skipped", args.output_dir,
                    args.tasks)
    else:
        start_afresh(args.output_dir)
        shutil.rmtree(os.path.join(args.output_dir, LOGS), ignore_errors=True)
        with open(os.path.join(work, STATE), "w", encoding="utf-8") as f:
            json.dump(state, f)
    first, last = executors(args, filters, files, key)
    if args.executor == "slurm":  # submitted: each job array runs when Slurm schedules it
        last.run()
        return None
    first.run()
    check_clean_tasks(args, args.tasks)
    # A failed task raises with the local executor; Ray retries it and moves on, and its dependent stage would then
    # wait for it forever: stop here, naming the logs.
    if failed := first.get_incomplete_ranks():
        raise HfPretrainError(
            f"{len(failed)} of {args.tasks} clean task(s) did not finish (see "
            f"{os.path.join(args.output_dir, LOGS, 'clean', 'logs', f'task_{failed[0]:05d}.log')}); rerun the same "
            "command to run them again"
        )
    last.run()
    with open(os.path.join(args.output_dir, "report.json"), encoding="utf-8") as f:
        return json.load(f)
