"""GLUE tasks: readers for the distribution's TSV files (or the Hub) and offline metrics.

Each task's files are read as the GLUE distribution ships them (``<glue_dir>/<Task>/train.tsv``, ``dev.tsv``):
tab-separated, no quoting, a header row except for CoLA. Labels are mapped to ids in the order of the Hub's
``nyu-mll/glue`` dataset, so a model fine-tuned on either source means the same thing by each id.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import datasets
import numpy as np
from datasets import Dataset, DatasetDict
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from ..data.lines import decoded_lines
from ..errors import BadInput, HfPretrainError, located
from ..runtime.hub_access import require_hub


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task is laid out on disk and scored."""

    name: str
    folder: str  # as GLUE spells it
    text_columns: tuple[str | int, ...]  # header names, or positions for header-less files
    label_column: str | int
    labels: tuple[str, ...] | None  # None: regression
    eval_files: tuple[tuple[str, str], ...] = (("validation", "dev.tsv"),)
    has_header: bool = True
    main_metric: str = "accuracy"

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)


GLUE_TASKS: dict[str, GlueTask] = {
    # CoLA ships without a header: source, label, original judgement, sentence.
    "cola": GlueTask("cola", "CoLA", (3,), 1, ("0", "1"), has_header=False, main_metric="matthews_correlation"),
    "sst2": GlueTask("sst2", "SST-2", ("sentence",), "label", ("0", "1")),
    "mrpc": GlueTask("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", ("0", "1"), main_metric="f1"),
    "stsb": GlueTask("stsb", "STS-B", ("sentence1", "sentence2"), "score", None, main_metric="pearson"),
    "qqp": GlueTask("qqp", "QQP", ("question1", "question2"), "is_duplicate", ("0", "1"), main_metric="f1"),
    "mnli": GlueTask(
        "mnli", "MNLI", ("sentence1", "sentence2"), "gold_label", ("entailment", "neutral", "contradiction"),
        eval_files=(("validation_matched", "dev_matched.tsv"), ("validation_mismatched", "dev_mismatched.tsv")),
    ),
    "qnli": GlueTask("qnli", "QNLI", ("question", "sentence"), "label", ("entailment", "not_entailment")),
    "rte": GlueTask("rte", "RTE", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment")),
    "wnli": GlueTask("wnli", "WNLI", ("sentence1", "sentence2"), "label", ("0", "1")),
}


def read_glue_tsv(path: str, task: GlueTask, bad: BadInput | None = None) -> Dataset:
    """One GLUE TSV file as a Dataset with ``sentence1`` (``sentence2``) and ``label`` columns.

    A row with the wrong number of fields or a label outside the task's set stops the reading with an error that
    names it, or is skipped and counted, as ``bad`` says; so are lines that are not UTF-8 or too long.
    """
    bad = bad or BadInput()
    if not os.path.isfile(path):
        raise HfPretrainError(f"{path}: no such file; --glue_dir must hold <Task>/train.tsv and dev.tsv as GLUE ships them")
    lines = decoded_lines(path, bad)
    if task.has_header:
        number, header_line = next(lines, (0, None))
        if header_line is None:
            raise HfPretrainError(f"{path}: the file is empty")
        header = header_line.split("\t")
        missing = [c for c in (*task.text_columns, task.label_column) if c not in header]
        if missing:
            raise HfPretrainError(
                f"{located(path, number)}: missing column(s) {', '.join(map(repr, missing))} in the header "
                f"(found {', '.join(header)}); is this the {task.folder} file?"
            )
        positions = [header.index(c) for c in (*task.text_columns, task.label_column)]
        width = len(header)
    else:
        positions = [*task.text_columns, task.label_column]
        width = max(positions) + 1
    label_ids = {label: i for i, label in enumerate(task.labels)} if task.labels else None

    texts: list[list[str]] = [[] for _ in task.text_columns]
    labels: list[float | int] = []
    for number, line in lines:
        if not line.strip():
            continue
        where = located(path, number)
        fields = line.split("\t")
        # A header-less file (CoLA) may not use every column, but a row never has more than its header.
        if len(fields) < width or (task.has_header and len(fields) > width):
            bad(where, "wrong number of fields", f"({len(fields)} tab-separated, expected {width} for {task.folder})")
            continue
        *row_texts, raw_label = (fields[p].strip() for p in positions)
        if label_ids is None:
            try:
                label = float(raw_label)
            except ValueError:
                label = math.nan
            if not math.isfinite(label):  # 'nan' and 'inf' parse as floats, then poison every correlation
                bad(where, "label not a number", f"('{raw_label}')")
                continue
        elif raw_label in label_ids:
            label = label_ids[raw_label]
        else:
            bad(where, "unknown label", f"'{raw_label}' for {task.folder} (expected one of {', '.join(task.labels)})")
            continue
        for column, text in zip(texts, row_texts):
            column.append(text)
        labels.append(label)
    if not labels:
        raise HfPretrainError(f"{path}: no examples")
    columns = {f"sentence{i + 1}": column for i, column in enumerate(texts)}
    return Dataset.from_dict({**columns, "label": labels})


def load_glue(task: GlueTask, glue_dir: str | None, bad: BadInput | None = None) -> DatasetDict:
    """``train`` and the task's evaluation splits, from ``glue_dir`` or, without one, from the Hub."""
    if glue_dir:
        folder = os.path.join(glue_dir, task.folder)
        if not os.path.isdir(folder):
            raise HfPretrainError(f"--glue_dir {glue_dir}: no {task.folder}/ folder in it")
        splits = {"train": read_glue_tsv(os.path.join(folder, "train.tsv"), task, bad)}
        for split, filename in task.eval_files:
            splits[split] = read_glue_tsv(os.path.join(folder, filename), task, bad)
        return DatasetDict(splits)
    return _load_glue_from_hub(task)


def _load_glue_from_hub(task: GlueTask) -> DatasetDict:
    require_hub(f"--task_name {task.name} without --glue_dir (nyu-mll/glue)",
                "pass --glue_dir with the GLUE files (<glue_dir>/<Task>/train.tsv, dev.tsv)")
    try:
        hub = datasets.load_dataset("nyu-mll/glue", task.name)
    except Exception as err:  # the Hub client raises many types: connection, missing repo
        raise HfPretrainError(
            f"--task_name {task.name}: cannot load nyu-mll/glue from the Hub ({type(err).__name__}); "
            "pass --glue_dir with the GLUE files (<glue_dir>/<Task>/train.tsv, dev.tsv)"
        ) from None
    text_names = [c for c in hub["train"].column_names if c not in ("label", "idx")]
    splits = {"train": hub["train"], **{split: hub[split] for split, _ in task.eval_files}}
    return DatasetDict(
        {
            name: split.rename_columns({old: f"sentence{i + 1}" for i, old in enumerate(text_names)}).remove_columns("idx")
            for name, split in splits.items()
        }
    )


def glue_metrics(task: GlueTask, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The task's official metrics, computed offline: MRPC/QQP accuracy and F1, CoLA Matthews correlation,
    STS-B Pearson and Spearman, accuracy elsewhere. ``predictions`` are logits (or scores for STS-B)."""
    if task.is_regression:
        scores = np.asarray(predictions, dtype=np.float64).reshape(-1)
        if np.isfinite(scores).all() and np.ptp(scores) == 0:
            # One score for every pair ranks nothing: the correlation is undefined (scipy: nan, which no mean over
            # seeds survives); 0, as scikit-learn's matthews_corrcoef reports a constant prediction. A linear probe
            # on a random encoder can land there.
            return {"pearson": 0.0, "spearmanr": 0.0}
        return {"pearson": float(pearsonr(scores, labels)[0]), "spearmanr": float(spearmanr(scores, labels)[0])}
    predicted = np.asarray(predictions).argmax(-1)
    if task.name == "cola":
        return {"matthews_correlation": float(matthews_corrcoef(labels, predicted))}
    metrics = {"accuracy": float(accuracy_score(labels, predicted))}
    if task.name in ("mrpc", "qqp"):
        metrics["f1"] = float(f1_score(labels, predicted))
    return metrics
