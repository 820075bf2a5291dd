"""A linear probe of an encoder's current weights on a GLUE task: is it getting better at something besides MLM?

Features are the encoder's last hidden states, mean-pooled over the tokens (or the first token's), of a fixed subset
of the task's training and evaluation pairs (the first N of each file, so every probe sees the same examples);
a logistic regression (a ridge regression for STS-B) is fit on the training features and scored on the evaluation
ones. No weight of the encoder changes. On a 4-layer encoder and 1,000 + 400 MRPC pairs it takes seconds on a CPU.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import HfPretrainError
from .finetune import tokenize_glue
from .tasks import GLUE_TASKS, GlueTask, load_glue

POOLINGS = ("mean", "cls")


@dataclass
class LinearProbe:
    """``probe(model)`` -> ``{"probe_<task>_<metric>": value}`` for the model's encoder (``model.base_model``)."""

    task: GlueTask
    train: Dataset  # tokenized: input_ids, attention_mask (token_type_ids), label
    evaluation: Dataset
    collator: DataCollatorWithPadding
    pooling: str = "mean"
    batch_size: int = 64

    @torch.no_grad()
    def features(self, model: PreTrainedModel, data: Dataset) -> np.ndarray:
        encoder = model.base_model
        device = next(encoder.parameters()).device
        accepted = inspect.signature(encoder.forward).parameters  # ModernBERT takes no token_type_ids
        pooled = []
        for start in range(0, len(data), self.batch_size):
            rows = data.select(range(start, min(start + self.batch_size, len(data))))
            batch = self.collator([{k: v for k, v in row.items() if k != "label"} for row in rows])
            batch = {k: v.to(device) for k, v in batch.items() if k in accepted}
            hidden = encoder(**batch).last_hidden_state.float()
            if self.pooling == "cls":
                pooled.append(hidden[:, 0])
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled.append((hidden * mask).sum(1) / mask.sum(1))
        return torch.cat(pooled).cpu().numpy()

    def __call__(self, model: PreTrainedModel) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            x_train, x_eval = self.features(model, self.train), self.features(model, self.evaluation)
        finally:
            model.train(was_training)
        y_train, y_eval = np.asarray(self.train["label"]), np.asarray(self.evaluation["label"])
        if self.task.is_regression:
            fitted = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x_train, y_train)
            return {f"probe_{self.task.name}_spearmanr": float(spearmanr(fitted.predict(x_eval), y_eval)[0])}
        fitted = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, y_train)
        return {f"probe_{self.task.name}_accuracy": float((fitted.predict(x_eval) == y_eval).mean())}


def build_probes(
    task_names: list[str], glue_dir: str | None, tokenizer: PreTrainedTokenizerBase, train_samples: int,
    eval_samples: int, pooling: str = "mean", max_seq_length: int = 128,
) -> list[LinearProbe]:
    """One probe per task, its fixed subsets read and tokenized once, before training starts."""
    if pooling not in POOLINGS:
        raise HfPretrainError(f"--probe_pooling must be one of {', '.join(POOLINGS)}, not '{pooling}'")
    probes = []
    for name in task_names:
        task = GLUE_TASKS[name]
        data = load_glue(task, glue_dir)
        evaluation_split = task.eval_files[0][0]
        subsets = {"train": data["train"].select(range(min(train_samples, len(data["train"])))),
                   "evaluation": data[evaluation_split].select(range(min(eval_samples, len(data[evaluation_split]))))}
        tokenized = tokenize_glue(type(data)(subsets), tokenizer, max_seq_length)
        probes.append(LinearProbe(task, tokenized["train"], tokenized["evaluation"], DataCollatorWithPadding(tokenizer),
                                  pooling))
    return probes
