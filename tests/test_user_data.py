"""Reliability, round three: nothing a user keeps is written over, no run resumes the wrong checkpoint, and the
output folders of every command are checked before any work. Each case is a ``faults`` case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DEBUG, HF_PRETRAIN, ROOT, run_cli, run_recipe, tmpfs

pytestmark = [pytest.mark.end_to_end, pytest.mark.faults]

PRETRAIN = "recipes/pretrain_bert.py"
FINETUNE = "recipes/finetune_glue.py"
TOKENIZER = str(ROOT / "tests" / "golden" / "debug_tokenizer")
QUICK = ["--config", DEBUG, "--tokenizer_name", TOKENIZER, "--eval_strategy", "no", "--logging_steps", "1"]


def _ok(result):
    assert result.returncode == 0, result.stdout[-4000:]
    return result


def _refused(result, message: str):
    assert result.returncode == 2 and "Traceback" not in result.stdout, result.stdout[-3000:]
    assert f"error: {message}" in result.stdout, result.stdout[-3000:]


def _prepare(*flags: str) -> subprocess.CompletedProcess:
    return run_cli("prepare", *flags)


def _corpus(folder: Path, documents: int = 60) -> Path:
    from .test_preparation import english

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "raw.txt").write_text("\n\n".join(english(10, seed) for seed in range(documents)) + "\n")
    return folder


def test_a_run_never_writes_over_a_user_s_files(tmp_path):
    """--output_dir . in a folder of the user's: refused, their README, config and report untouched; with the
    explicit --overwrite_output_dir the run writes there (and says so)."""
    mine = {"README.md": "# my project\n", "config.json": '{"mine": true}\n', "report.md": "my report\n"}
    for name, text in mine.items():
        (tmp_path / name).write_text(text)
    refused = run_recipe(PRETRAIN, *QUICK, "--max_steps", "2", "--output_dir", str(tmp_path))
    _refused(refused, f"--output_dir {tmp_path}: holds files that are not a pretraining run's (README.md, config.json, "
                      "report.md), which the run would write over")
    assert "pass --overwrite_output_dir to write over them" in refused.stdout
    assert {name: (tmp_path / name).read_text() for name in mine} == mine
    written = _ok(run_recipe(PRETRAIN, *QUICK, "--max_steps", "2", "--overwrite_output_dir", "--output_dir",
                             str(tmp_path)))
    assert "--overwrite_output_dir: writing into" in written.stdout
    assert (tmp_path / "README.md").read_text() != mine["README.md"]  # the model card, as asked
    # Its own folder, marked, is written into again without the flag (a rerun resumes or finishes).
    _ok(run_recipe(PRETRAIN, *QUICK, "--max_steps", "2", "--output_dir", str(tmp_path)))


def test_another_process_s_write_probe_is_not_a_user_s_file(tmp_path):
    """Each process of a run checks it can write into --output_dir with a file it removes at once; the main process,
    claiming the folder meanwhile, once took that file for a user's and refused the run (seen in a two-process run)."""
    from hf_pretrain.runtime.folders import WRITE_PROBE_PREFIX
    from hf_pretrain.training.output_folder import claim_output_dir

    (tmp_path / f"{WRITE_PROBE_PREFIX}4242").write_text("")
    claim_output_dir(str(tmp_path))
    assert (tmp_path / ".hf_pretrain_run").is_file()


def test_a_preparation_folder_is_never_a_run_s_output(tmp_path):
    prepared = tmp_path / "prepared"
    _ok_prepare = _prepare("--train_file", str(_corpus(tmp_path / "corpus")), "--output_dir", str(prepared),
                           "--vocab_size", "300", "--max_seq_length", "64", "--validation_split_percentage", "10",
                           "--test_split_percentage", "0")
    assert _ok_prepare.returncode == 0, _ok_prepare.stdout[-3000:]
    report = (prepared / "report.md").read_text()
    for flags in ([], ["--overwrite_output_dir"]):
        _refused(run_recipe(PRETRAIN, "--config", DEBUG, "--max_steps", "2", *flags, "--output_dir", str(prepared)),
                 f"--output_dir {prepared}: holds a `hf-pretrain prepare` output, which this run would write over; "
                 f"pass it as --prepared_dataset {prepared} and choose another --output_dir")
    assert (prepared / "report.md").read_text() == report
    # And a preparation of a small corpus with no test split loads and trains (an empty split is a shard of none).
    _ok(run_recipe(PRETRAIN, "--config", DEBUG, "--objective", "mlm", "--max_steps", "2", "--prepared_dataset",
                   str(prepared), "--output_dir", str(tmp_path / "run")))


def test_overwrite_output_dir_makes_the_folder_the_new_run_s(tmp_path):
    """The old checkpoints go (one log line), so the next run without the flag resumes the new run, not the old."""
    out = str(tmp_path / "out")
    _ok(run_recipe(PRETRAIN, *QUICK, "--max_steps", "4", "--save_steps", "2", "--log_sequence_ids",
                   "--output_dir", out))
    fresh = _ok(run_recipe(PRETRAIN, *QUICK, "--max_steps", "6", "--save_steps", "3", "--learning_rate", "5e-4",
                           "--overwrite_output_dir", "--log_sequence_ids", "--output_dir", out))
    assert f"--overwrite_output_dir: starting afresh; removed the earlier run's checkpoint-2, checkpoint-4, " \
           f"sequence_ids from {out}" in fresh.stdout
    assert sorted(p.name for p in Path(out).glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    logged = [json.loads(line)["step"] for line in (Path(out) / "sequence_ids" / "rank-0.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]
    # What a resume now finds is the new run's own (its schedule, its learning rate): nothing is refused.
    again = _ok(run_recipe(PRETRAIN, *QUICK, "--max_steps", "6", "--save_steps", "3", "--learning_rate", "5e-4",
                           "--log_sequence_ids", "--output_dir", out))
    assert f"resuming from {out}/checkpoint-6" in again.stdout


def test_the_output_folder_inside_the_corpus_folder_is_never_read_as_corpus(tmp_path):
    corpus = _corpus(tmp_path / "corpus", 200)
    run = ["--config", DEBUG, "--objective", "mlm", "--vocab_size", "300", "--save_steps", "2", "--train_file",
           str(corpus), "--output_dir", str(corpus / "run")]
    first = _ok(run_recipe(PRETRAIN, *run, "--max_steps", "4"))
    assert "leaving out" not in first.stdout  # nothing there yet
    again = _ok(run_recipe(PRETRAIN, *run, "--max_steps", "6"))
    assert f"inside the output folder {corpus / 'run'}" in again.stdout
    assert f"resuming from {corpus / 'run' / 'checkpoint-4'}" in again.stdout


def test_concurrent_preparations_of_one_folder_are_refused(tmp_path):
    from hf_pretrain.runtime import OutputDirLock

    out = tmp_path / "prepared"
    out.mkdir()
    (out / ".hf_pretrain_preparation").write_text("")
    live = OutputDirLock(str(out))
    live.acquire()  # a preparation under way in this folder (this process holds its lock)
    try:
        second = _prepare("--train_file", str(_corpus(tmp_path / "corpus")), "--output_dir", str(out))
    finally:
        live.release()
    assert second.returncode == 2 and "Traceback" not in second.stdout
    assert f"error: --output_dir {out} is in use by another run (pid {os.getpid()}" in second.stdout


def test_a_file_a_user_drops_into_a_preparation_is_kept(tmp_path):
    corpus, out = _corpus(tmp_path / "corpus"), tmp_path / "prepared"
    flags = ["--train_file", str(corpus), "--output_dir", str(out), "--vocab_size", "300", "--max_seq_length", "64",
             "--validation_split_percentage", "10", "--test_split_percentage", "0"]
    assert _prepare(*flags).returncode == 0
    (out / "documents" / "notes.txt").write_text("mine")
    again = _prepare(*flags, "--overwrite_cache")
    assert again.returncode == 2 and "Traceback" not in again.stdout
    assert f"error: --output_dir {out}: documents/notes.txt was not written by the preparation" in again.stdout
    assert (out / "documents" / "notes.txt").read_text() == "mine"


@pytest.fixture
def read_only(tmp_path):
    """A read-only file system (root writes through chmod, not through a read-only mount)."""
    with tmpfs(tmp_path / "ro", "ro,size=1M") as folder:
        yield folder


@pytest.mark.parametrize("command", ["finetune_glue", "prepare"])
def test_output_dir_a_file_under_a_file_or_read_only_is_one_line(command, tmp_path, read_only):
    (tmp_path / "afile").write_text("x")
    cases = {tmp_path / "afile": "is a file, not a folder", tmp_path / "afile" / "run": "cannot write there (Not a "
             "directory)", read_only / "run": "cannot write there (Read-only file system)"}
    for output_dir, message in cases.items():
        if command == "prepare":
            result = _prepare("--train_file", str(_corpus(tmp_path / "corpus")), "--output_dir", str(output_dir))
            output = result.stdout
        else:
            result = run_recipe(FINETUNE, "--config", "recipes/configs/glue.yaml", "--model_name_or_path",
                                str(tmp_path), "--task_name", "mrpc", "--glue_dir", str(tmp_path), "--output_dir",
                                str(output_dir))
            output = result.stdout
        assert result.returncode == 2 and "Traceback" not in output, output[-3000:]
        assert f"error: --output_dir {output_dir}: {message}" in output


def test_ctrl_c_during_prepare_says_what_it_left(tmp_path):
    out = tmp_path / "prepared"
    # SIGINT at its default, as a terminal's foreground job has it: a worker that ignores it (as xdist's may, and
    # anything started in the background by a shell does) would pass that on, and the Ctrl-C would never arrive.
    process = subprocess.Popen([HF_PRETRAIN, "prepare", "--train_file", str(_corpus(tmp_path / "corpus", 3000)),
                                "--output_dir", str(out), "--vocab_size", "300"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / ".cache").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # its work folder: the preparation is under way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert f"interrupted: the preparation into {out} stopped before it finished" in stderr
    assert "checkpoint" not in stderr
    assert not (out / "fingerprint.json").exists()


@pytest.mark.parametrize("recipe", [PRETRAIN, "recipes/pretrain_electra.py", FINETUNE])
def test_every_recipe_s_help_prints_its_flags(recipe):
    result = run_recipe(recipe, "--help")
    assert result.returncode == 0 and "Traceback" not in result.stdout, result.stdout[-3000:]
    assert result.stdout.startswith("usage:") and "--output_dir" in result.stdout


@pytest.mark.parametrize("argv, expected", [
    (["--help"], "hf-pretrain prepare --train_file"),
    (["prepare", "--help"], "at most 30 % of lines ending in an ellipsis"),  # a help text with a % sign
    (["compare", "--help"], "usage: hf-pretrain compare DIR"),
    (["report", "--help"], "usage: hf-pretrain report OUTPUT_DIR"),
    (["similarity", "--help"], "--glue_dir"),
    (["flags", "--help"], "usage: hf-pretrain flags"),
    (["flags", "--objective", "electra"], "| `--generator_size` | `0.25` |"),
])
def test_every_hf_pretrain_command_s_help(argv, expected, monkeypatch, capsys):
    from hf_pretrain import cli

    monkeypatch.setattr(sys, "argv", ["hf-pretrain", *argv])
    try:
        cli.main()
    except SystemExit as exit:  # argparse's help exits 0
        assert exit.code == 0
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("name", ["optimizer.pt", "rng_state.pth"])
def test_a_tampered_pickle_in_a_checkpoint_is_one_line_naming_it(name, tmp_path):
    """An object that is not plain tensors, with the manifest recomputed over it: torch refuses to load it (no code
    runs), and the user reads one line naming the file, never the advice to load it with weights_only=False."""
    import torch

    from hf_pretrain.training.checkpoints import write_manifest

    run = [*QUICK, "--save_steps", "2", "--output_dir", str(tmp_path)]
    _ok(run_recipe(PRETRAIN, *run, "--max_steps", "4"))
    torch.save({"state": Exploit(tmp_path / "exploited")}, tmp_path / "checkpoint-4" / name)
    write_manifest(str(tmp_path / "checkpoint-4"))
    result = run_recipe(PRETRAIN, *run, "--max_steps", "6")
    _refused(result, f"{tmp_path / 'checkpoint-4' / name}: holds objects other than tensors and numbers, which are "
                     f"not loaded (loading them could run code); the file was altered or is not this project's: pass "
                     f"--resume_from_checkpoint {tmp_path / 'checkpoint-2'}")
    assert "weights_only" not in result.stdout and not (tmp_path / "exploited").exists()


class Exploit:
    """Unpickled, it would write the file ``marker``: proof that it ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_glue_on_a_checkpoint_without_its_tokenizer_gives_advice_it_can_follow(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=100).save_pretrained(tmp_path / "model")
    result = run_recipe(FINETUNE, "--config", "recipes/configs/glue.yaml", "--model_name_or_path",
                        str(tmp_path / "model"), "--glue_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"))
    _refused(result, f"--model_name_or_path {tmp_path / 'model'}: the folder holds no tokenizer")
    assert "copy into it the tokenizer files of the run that trained it" in result.stdout
    assert "--tokenizer_name" not in result.stdout  # a flag finetune_glue.py does not take
