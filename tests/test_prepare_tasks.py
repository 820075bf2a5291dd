"""`hf-pretrain prepare --tasks N [--executor local|slurm]`: the stages as datatrove tasks give a one-process
preparation's documents, in its order, whatever N; a task killed with SIGKILL is resumed without redoing the finished
ones; Slurm runs through sbatch and srun stand-ins that run each array task here (this machine has no cluster)."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import load_from_disk

from hf_pretrain.errors import HfPretrainError
from hf_pretrain.prepare.arguments import PrepareArguments
from hf_pretrain.prepare.executor import file_runs

from .conftest import HF_PRETRAIN, ROOT, recipe_env, run_cli
from .test_preparation import english

pytestmark = pytest.mark.component

FLAGS = ["--vocab_size", "300", "--max_seq_length", "64", "--validation_split_percentage", "10",
         "--test_split_percentage", "10", "--on_bad_input", "skip"]


def _word(rng) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))


def _changed(text: str, fraction: float, rng) -> str:
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, int(fraction * len(words)))):
        words[i] = _word(rng)
    return " ".join(words)


def _corpus(folder: Path, files: int = 5, per_file: int = 12) -> list[str]:
    """JSON Lines files whose documents repeat across files: exact copies (up to case), near copies above and below
    the MinHash threshold, documents the filters drop, and a malformed line, so that every decision that needs the
    other tasks' documents is made across a task boundary."""
    import random

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    originals = [english(12, seed) + " " + " ".join(_word(rng) for _ in range(40))
                 for seed in range(files * per_file)]
    paths = []
    for f in range(files):
        rows = [json.dumps({"text": originals[f * per_file + i]}) for i in range(per_file)]
        if f > 0:
            earlier = originals[(f - 1) * per_file]
            rows.append(json.dumps({"text": earlier.upper()}))  # exact, in the previous file
            rows.append(json.dumps({"text": _changed(earlier, 0.01, rng)}))  # near, above the threshold
            rows.append(json.dumps({"text": _changed(originals[1], 0.3, rng)}))  # below it: kept
        rows.append(json.dumps({"text": "Too short to keep."}))
        rows.append("{not json")
        path = folder / f"part-{f}.jsonl"
        path.write_text("\n".join(rows) + "\n")
        paths.append(str(path))
    return paths


def _prepare(files: list[str], out: Path, *flags: str) -> subprocess.CompletedProcess:
    return run_cli("prepare", "--train_file", *files, "--output_dir", str(out), *FLAGS, *flags)


def _same_output(a: Path, b: Path) -> None:
    for folder in ("documents", "tokenized"):
        first, second = load_from_disk(str(a / folder)), load_from_disk(str(b / folder))
        assert list(first) == list(second)
        for split in first:
            assert first[split].features == second[split].features
            assert first[split].to_dict() == second[split].to_dict(), (folder, split)
    assert (a / "tokenizer" / "tokenizer.json").read_text() == (b / "tokenizer" / "tokenizer.json").read_text()
    assert json.loads((a / "report.json").read_text()) == json.loads((b / "report.json").read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tasks")
    files = _corpus(tmp / "corpus")
    result = _prepare(files, tmp / "one")
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((tmp / "one" / "report.json").read_text())
    stages = {stage["stage"]: stage for stage in report["stages"]}
    # the corpus exercises what the tasks must agree on: duplicates across files, filters, a skipped line
    assert stages["deduplicate"]["exact_duplicates"] == 4 and stages["deduplicate"]["near_duplicates"] == 4
    assert stages["filter"]["removed"] == {"too short": 5} and report["bad_input_skipped"]
    return files, tmp / "one"


def test_file_runs_are_contiguous_balanced_by_bytes_and_cover_every_file(tmp_path):
    sizes = [100, 100, 400, 100, 100, 100, 100]
    files = []
    for i, size in enumerate(sizes):
        (tmp_path / f"{i}.txt").write_text("x" * size)
        files.append(str(tmp_path / f"{i}.txt"))
    runs = file_runs(files, 3)
    assert [len(run) for run in runs] == [2, 2, 3]  # the 400-byte file weighs as four
    assert sum(runs, []) == files
    assert file_runs(files, 1) == [files]
    assert sum(file_runs(files[:2], 4), []) == files[:2] and len(file_runs(files[:2], 4)) == 4


@pytest.mark.parametrize("tasks", ["2", "3"])
def test_tasks_give_the_one_process_preparation(one_process, tmp_path, tasks):
    files, expected = one_process
    result = _prepare(files, tmp_path / "out", "--tasks", tasks)
    assert result.returncode == 0, result.stdout[-3000:]
    _same_output(expected, tmp_path / "out")
    completions = sorted(os.listdir(tmp_path / "out" / ".datatrove" / "clean" / "completions"))
    assert completions == [f"{rank:05d}" for rank in range(int(tasks))]
    assert not (tmp_path / "out" / ".cache").exists()  # the work folder goes when the preparation is done


@pytest.mark.faults
def test_a_killed_task_is_resumed_without_redoing_the_finished_ones(one_process, tmp_path):
    """SIGKILL the preparation (its process group) once the first of two clean tasks has finished and while the
    second runs; the rerun skips the first (its file is not rewritten) and ends with the one-process output."""
    files, expected = one_process
    # the second task's files are many times the first's, so it is still running when the first completes
    files = [files[0], *_corpus(tmp_path / "heavy", files=1, per_file=600)]
    reference = tmp_path / "reference"
    assert _prepare(files, reference).returncode == 0
    out = tmp_path / "out"
    command = [HF_PRETRAIN, "prepare", "--train_file", *files, "--output_dir", str(out), *FLAGS, "--tasks", "2",
               "--workers", "1"]
    assert file_runs(files, 2) == [files[:1], files[1:]]
    process = subprocess.Popen(command, cwd=ROOT, env=recipe_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    first = out / ".datatrove" / "clean" / "completions" / "00000"
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert first.exists() and process.returncode == -signal.SIGKILL
    assert not (out / ".datatrove" / "clean" / "completions" / "00001").exists()
    assert not (out / "fingerprint.json").exists()
    shard = out / ".cache" / "clean" / "00000.arrow"
    written = shard.stat().st_mtime_ns
    result = subprocess.run(command, cwd=ROOT, env=recipe_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "resuming the preparation of 2 task(s)" in result.stdout
    assert "Skipping 1 already completed tasks" in result.stdout
    log = (out / ".datatrove" / "clean" / "logs" / "task_00000.log").read_text()
    assert log.count("Processing done for rank=0") == 1  # task 0 ran once, in the killed run
    _same_output(reference, out)
    # another --tasks is another layout of the work: the rerun starts afresh rather than mixing them
    del written
    result = _prepare(files, out, "--tasks", "3", "--overwrite_cache")
    assert result.returncode == 0 and "resuming" not in result.stdout
    _same_output(reference, out)


STANDIN_SBATCH = '''#!{python}
"""sbatch as far as this machine allows: record the submission, then run every task of its array here, in order
(submissions come in dependency order, so what a job depends on has finished), and print the job id."""
import os, re, subprocess, sys
args, script = sys.argv[1:-1], sys.argv[-1]
text = open(script).read()
log = os.environ["STANDIN_LOG"]
job = len(os.listdir(log)) + 100
with open(os.path.join(log, f"{{job}}.sh"), "w") as f:
    f.write(" ".join(args) + "\\n" + text)
first, last = map(int, re.search(r"#SBATCH --array=(\\d+)-(\\d+)", text).groups())
exports = next((a.removeprefix("--export=ALL,") for a in args if a.startswith("--export=ALL,")), "")
env = dict(os.environ, **dict(pair.split("=", 1) for pair in exports.split(",") if pair))
for task in range(first, last + 1):
    subprocess.run(["bash", script], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(env, SLURM_ARRAY_TASK_ID=str(task), SLURM_JOB_ID=str(job), SLURM_NODELIST="localhost"))
print(f"Submitted batch job {{job}}")
'''
STANDIN_SRUN = '''#!/bin/bash
# srun -l -n N COMMAND...: run COMMAND here
while [[ "$1" == -* ]]; do case "$1" in -n) shift 2;; *) shift;; esac; done
exec "$@"
'''
STANDIN_SCONTROL = '''#!/bin/bash
# scontrol show hostnames NODELIST: one node here
echo "$3"
'''


def _standins(folder: Path) -> Path:
    folder.mkdir()
    for name, text in (("sbatch", STANDIN_SBATCH.format(python=sys.executable)), ("srun", STANDIN_SRUN),
                       ("scontrol", STANDIN_SCONTROL)):
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)
    return folder


def test_slurm_submits_an_array_per_stage_whose_jobs_write_the_preparation(one_process, tmp_path):
    files, expected = one_process
    bin_dir, log = _standins(tmp_path / "bin"), tmp_path / "submissions"
    log.mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "STANDIN_LOG": str(log)}
    out = tmp_path / "out"
    result = subprocess.run(
        [HF_PRETRAIN, "prepare", "--train_file", *files, "--output_dir", str(out), *FLAGS, "--executor", "slurm",
         "--tasks", "2", "--slurm_partition", "cpu", "--slurm_time", "2:00:00", "--cpus_per_task", "2"],
        cwd=ROOT, env=recipe_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "submitted the preparation" in result.stdout
    jobs = {int(p.stem): p.read_text() for p in log.iterdir()}
    clean, finish = (min(j for j, t in jobs.items() if f"--job-name=hf-pretrain-{n}\n" in t
                         and "launch_pickled_pipeline" in t) for n in ("clean", "finish"))
    assert len(jobs) == 4  # and each stage's merge_stats job, after it
    for job in (clean, finish):
        script = jobs[job]
        assert "#SBATCH --partition=cpu" in script and "#SBATCH --time=2:00:00" in script
        assert f"source {Path(sys.executable).parent / 'activate'}" in script
        assert "launch_pickled_pipeline" in script and "executor.pik" in script
    assert "#SBATCH --array=0-1" in jobs[clean] and "#SBATCH --cpus-per-task=2" in jobs[clean]
    assert "#SBATCH --array=0-0" in jobs[finish] and f"--dependency=afterok:{clean}" in jobs[finish].splitlines()[0]
    _same_output(expected, out)  # the jobs, run by the stand-ins, wrote the whole preparation


def test_ray_runs_the_stages_as_its_tasks(one_process, tmp_path):
    """With no cluster to join, Ray starts one on this machine (as ``ray.init()`` does) and stops it at the end."""
    files, expected = one_process
    result = _prepare(files, tmp_path / "out", "--tasks", "2", "--executor", "ray", "--mem_per_cpu_gb", "1")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Started a local Ray instance" in result.stdout
    _same_output(expected, tmp_path / "out")
    assert len(os.listdir(tmp_path / "out" / ".datatrove" / "clean" / "completions")) == 2


@pytest.mark.faults
@pytest.mark.parametrize("flags, message", [
    (["--tasks", "0"], "--tasks and --workers must be at least 1"),
    (["--executor", "slurm"], "--executor slurm needs --slurm_partition"),
    (["--slurm_partition", "cpu"], "--slurm_partition is read by --executor slurm only"),
    (["--executor", "spark"], "--executor spark: choose"),
])
def test_executor_flags_are_checked_before_any_work(flags, message):
    values = dict(zip(flags[::2], flags[1::2]))
    kwargs = {k.removeprefix("--"): int(v) if v.isdigit() else v for k, v in values.items()}
    with pytest.raises(HfPretrainError, match=message):
        PrepareArguments(train_file=["x"], output_dir="y", **kwargs)


def test_the_settings_of_the_tasks_leave_the_fingerprint_alone(one_process, tmp_path):
    """How the work is spread is not what is prepared: a finished one-process folder is reused by a run in tasks."""
    files, expected = one_process
    result = _prepare(files, expected, "--tasks", "2", "--workers", "1")
    assert result.returncode == 0 and "reusing it" in result.stdout


@pytest.mark.faults
def test_a_task_that_meets_bad_input_stops_the_preparation_in_one_line(one_process, tmp_path):
    files, _ = one_process
    result = run_cli("prepare", "--train_file", *files, "--output_dir", str(tmp_path / "out"),
                     *[flag for flag in FLAGS if flag not in ("--on_bad_input", "skip")], "--tasks", "2")
    assert result.returncode != 0
    last = result.stdout.strip().splitlines()[-1]
    assert re.match(r"error: \S+/part-\d\.jsonl:\d+: not valid JSON .*--on_bad_input skip", last), last
    assert "Traceback" not in result.stdout
    assert not (tmp_path / "out" / "fingerprint.json").exists()
    # the failed tasks are not marked done: the same command, once the files are fixed, runs them again
    assert os.listdir(tmp_path / "out" / ".datatrove" / "clean" / "completions") == []
