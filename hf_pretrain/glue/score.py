"""The GLUE score as papers compute it, from each task's fine-tuning summary (mean over seeds of each metric).

One score per task, in points (0-100): the mean of its metrics where it has two (MRPC and QQP: F1 and accuracy;
STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy), CoLA's Matthews correlation, accuracy
elsewhere. The GLUE score is the mean of the task scores, WNLI left out as BERT did (its dev set is adversarial
to every model trained on its training set); WNLI is still reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

# Each task's metrics in its score, as the summary names them (``<split>_<metric>``).
SCORE_METRICS: dict[str, tuple[str, ...]] = {
    "cola": ("validation_matthews_correlation",),
    "sst2": ("validation_accuracy",),
    "mrpc": ("validation_f1", "validation_accuracy"),
    "stsb": ("validation_pearson", "validation_spearmanr"),
    "qqp": ("validation_f1", "validation_accuracy"),
    "mnli": ("validation_matched_accuracy", "validation_mismatched_accuracy"),
    "qnli": ("validation_accuracy",),
    "rte": ("validation_accuracy",),
    "wnli": ("validation_accuracy",),
}
LEFT_OUT_OF_AVERAGE = ("wnli",)


def task_score(task_name: str, summary: Mapping[str, Mapping[str, float]]) -> float:
    """The task's score in points: the mean over its score metrics of each metric's mean over seeds."""
    return 100 * statistics.fmean(summary[metric]["mean"] for metric in SCORE_METRICS[task_name])


def glue_score(summaries: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict:
    """Every task's score, and their average over the tasks present (WNLI excluded), with the tasks it covers."""
    return average_score({name: task_score(name, summary) for name, summary in summaries.items()})


def average_score(scores: Mapping[str, float]) -> dict:
    """The GLUE score of task scores: their mean over the tasks present, WNLI left out."""
    averaged = [name for name in SCORE_METRICS if name in scores and name not in LEFT_OUT_OF_AVERAGE]
    return {
        "task_scores": dict(scores),
        "average": statistics.fmean(scores[name] for name in averaged) if averaged else None,
        "averaged_over": averaged,
        "left_out": [name for name in LEFT_OUT_OF_AVERAGE if name in scores],
    }


def compare_results(results: Mapping[str, Mapping]) -> str:
    """A markdown table of several runs' GLUE results side by side (``name -> glue_results.json`` contents, of one
    task or of several): one row per task with each run's task score, then each run's GLUE score."""
    scores: dict[str, dict[str, float]] = {}
    for name, result in results.items():
        tasks = result["tasks"] if "tasks" in result else {result["task"]: result}
        scores[name] = {task: task_score(task, r["summary"]) for task, r in tasks.items()}
    names = list(results)
    lines = ["| task | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for task in SCORE_METRICS:
        if any(task in s for s in scores.values()):
            cells = [f"{scores[n][task]:.1f}" if task in scores[n] else "-" for n in names]
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    averages = [average_score(scores[name]) for name in names]
    cells = [f"{a['average']:.1f} (over {', '.join(a['averaged_over'])})" if a["average"] is not None else "-"
             for a in averages]
    lines.append("| GLUE score | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
