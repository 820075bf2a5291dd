"""Sentence embeddings judged without training anything: the Spearman correlation between the cosine similarity of
each pair's two sentence vectors and its gold score (STS-B: a similarity from 0 to 5; MRPC, QQP: paraphrase or
not), as SimCSE and sentence-transformers report STS."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..errors import HfPretrainError
from .tasks import GLUE_TASKS, load_glue

POOLINGS = ("cls", "mean")


@torch.no_grad()
def embed(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], pooling: str = "cls",
          batch_size: int = 64, max_length: int = 128) -> np.ndarray:
    """One vector per text from ``model``'s encoder (``base_model``): its first token's last hidden state, or the
    mean over its tokens."""
    if pooling not in POOLINGS:
        raise HfPretrainError(f"pooling must be one of {', '.join(POOLINGS)}, not '{pooling}'")
    encoder = model.base_model
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    vectors = []
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt", return_token_type_ids=False).to(device)
            hidden = encoder(**batch).last_hidden_state.float()
            if pooling == "cls":
                vectors.append(hidden[:, 0])
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vectors.append((hidden * mask).sum(1) / mask.sum(1))
    finally:
        encoder.train(was_training)
    return torch.cat(vectors).cpu().numpy()


def similarity_spearman(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, task_name: str,
                        glue_dir: str | None, pooling: str = "cls", max_samples: int | None = None) -> float:
    """Spearman's rho between cosine similarities and the gold scores of ``task_name``'s evaluation split."""
    task = GLUE_TASKS[task_name]
    if len(task.text_columns) != 2:
        raise HfPretrainError(f"{task.folder} has single sentences; similarity needs a pair task (stsb, mrpc, qqp)")
    data = load_glue(task, glue_dir)[task.eval_files[0][0]]
    if max_samples is not None:
        data = data.select(range(min(max_samples, len(data))))
    first = embed(model, tokenizer, data["sentence1"], pooling)
    second = embed(model, tokenizer, data["sentence2"], pooling)
    cosine = (first * second).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1) + 1e-12)
    return float(spearmanr(cosine, np.asarray(data["label"], dtype=float))[0])
