"""The run report: figures of a run's logged metrics and a ``report.md`` that shows them with its settings and
final numbers. Written at the end of every pretraining run and by ``hf-pretrain report OUTPUT_DIR``; read only
from the files a run leaves (``trainer_state.json``, ``run_settings.json``), so a resumed run's report covers the
whole run and an old run's can be drawn again. A GLUE table gets a bar chart of its task scores.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from ..errors import HfPretrainError  # noqa: E402

FIGURES = "figures"
# Each figure: its file, its title, and the logged series it draws (training logs, then evaluation logs).
PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("loss.png", "loss", ("loss", "eval_loss")),
    ("mlm_accuracy.png", "MLM accuracy", ("mlm_accuracy", "eval_mlm_accuracy")),
    ("learning_rate.png", "learning rate", ("learning_rate",)),
    ("tokens_per_second.png", "tokens/s (non-padding)", ("train_tokens_per_second",)),
)
TOKENS = "num_input_tokens_seen"


def _series(history: Sequence[Mapping], key: str) -> tuple[list[float], list[float], list[float]]:
    """(steps, tokens seen, values) of every log entry that has ``key``."""
    rows = [h for h in history if key in h and "step" in h]
    return [h["step"] for h in rows], [h.get(TOKENS, float("nan")) for h in rows], [h[key] for h in rows]


def _figure(history: Sequence[Mapping], title: str, keys: Sequence[str], path: str) -> bool:
    """One figure, two panels (against steps, against tokens seen); False when nothing was logged for it."""
    present = [key for key in keys if any(key in h for h in history)]
    if not present:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    # Fixed margins: a layout engine measures every label's box first, which doubled the time a run spends here.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.22)
    for key in present:
        steps, tokens, values = _series(history, key)
        style = {"marker": "o", "markersize": 3} if len(values) < 30 else {}
        axes[0].plot(steps, values, label=key, **style)
        axes[1].plot(tokens, values, label=key, **style)
    for axis, xlabel in zip(axes, ("optimizer steps", "tokens seen")):
        axis.set_xlabel(xlabel)
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_run_report(output_dir: str, training: Mapping | None = None) -> str:
    """Draw the run's figures into ``<output_dir>/figures/`` and write ``<output_dir>/report.md``; returns its path.
    ``training`` (the training hyperparameters) is kept in ``training_settings.json`` for later reports."""
    state_path = os.path.join(output_dir, "trainer_state.json")
    if not os.path.isfile(state_path):
        raise HfPretrainError(f"{output_dir}: no trainer_state.json; give the --output_dir of a finished run")
    with open(state_path, encoding="utf-8") as f:
        state = json.load(f)
    history = state.get("log_history", [])
    os.makedirs(os.path.join(output_dir, FIGURES), exist_ok=True)
    probes = tuple(sorted({k for h in history for k in h if k.startswith("probe_")}))
    panels = PANELS + ((("probes.png", "linear probes", probes),) if probes else ())
    drawn = [(name, title) for name, title, keys in panels
             if _figure(history, title, keys, os.path.join(output_dir, FIGURES, name))]

    lines = [f"# Run report: {os.path.basename(os.path.abspath(output_dir))}", "",
             f"{state.get('global_step', 0):,} optimizer steps, {_last(history, TOKENS):,.0f} tokens seen.", ""]
    final = {k: v for k, v in (_last_entry(history, "eval_loss") or {}).items() if k.startswith("eval_")}
    if final:
        lines += ["## Final evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k.removeprefix('eval_')} | {v:.4g} |" for k, v in final.items()
                  if not k.endswith(("runtime", "per_second"))]
        lines.append("")
    for probe in probes:
        lines.append(f"- last {probe}: {_last(history, probe):.4f}")
    lines += ["", "## Figures", ""] + [f"![{title}]({FIGURES}/{name})" for name, title in drawn] + [""]
    settings = _settings(output_dir, training)
    if settings:
        lines += ["## Settings", "", "| setting | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(settings.items()) if v not in (None, "", [], {})]
        lines.append("")
    path = os.path.join(output_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def _settings(output_dir: str, training: Mapping | None) -> dict:
    """The run's data, model and objective settings (its newest checkpoint's ``run_settings.json``) and its
    training hyperparameters (given, or saved by an earlier report)."""
    settings: dict = {}
    checkpoints = sorted(glob.glob(os.path.join(output_dir, "checkpoint-*", "run_settings.json")),
                         key=lambda p: int(os.path.basename(os.path.dirname(p)).split("-")[1].split(".")[0]))
    saved_training = os.path.join(output_dir, "training_settings.json")
    if training is not None:
        with open(saved_training, "w", encoding="utf-8") as f:
            json.dump(dict(training), f, indent=2, default=str)
    for path in (*checkpoints[-1:], saved_training):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                settings.update(json.load(f))
    return settings


def _last_entry(history: Sequence[Mapping], key: str) -> Mapping | None:
    return next((h for h in reversed(history) if key in h), None)


def _last(history: Sequence[Mapping], key: str) -> float:
    entry = _last_entry(history, key)
    return float(entry[key]) if entry else 0.0


def glue_bar_chart(task_scores: Mapping[str, float], average: float | None, path: str) -> None:
    """A bar per task score (points), and the GLUE score as a line."""
    fig, axis = plt.subplots(figsize=(max(4, 0.9 * len(task_scores) + 2), 3.6), constrained_layout=True)
    names = list(task_scores)
    axis.bar(names, [task_scores[n] for n in names], color="#4c72b0")
    if average is not None:
        axis.axhline(average, color="#dd8452", linestyle="--", label=f"GLUE score {average:.1f}")
        axis.legend(fontsize=8)
    axis.set_ylabel("dev score (points)")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
