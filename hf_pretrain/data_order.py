"""The order in which training sequences are drawn, as a pure function of (seed, epoch), so that a resumed run can
start at any position without replaying the batches before it."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from .masking import derive_seed


class ResumableSampler(Sampler[int]):
    """Every epoch a fresh permutation of the dataset, drawn from ``(seed, epoch)`` alone.

    ``resume(epoch, position)`` makes the next pass over ``epoch`` start at ``position`` in that epoch's order:
    the cost is one permutation, whatever the position (transformers' own resume skips batch after batch).
    An epoch holds whole batches of ``batch_size`` (the global micro-batch): the remainder of the permutation is
    left out, so processes that split batches between them (accelerate's ``BatchSamplerShard``) never pad an
    epoch's last batch, and split every batch the same way before and after a resume.
    """

    def __init__(self, dataset_size: int, seed: int, batch_size: int = 1, shuffle: bool = True) -> None:
        self.dataset_size = dataset_size
        # (A dataset smaller than one batch keeps its one partial batch.)
        self.num_samples = dataset_size - dataset_size % batch_size or dataset_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self._resume_at: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, position: int) -> None:
        if not 0 <= position <= self.num_samples:
            raise ValueError(f"position {position} is outside an epoch of {self.num_samples} samples")
        self._resume_at = (epoch, position)

    def order(self, epoch: int) -> torch.Tensor:
        """The dataset indices of ``epoch``, in the order they are drawn."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(self.dataset_size, generator=generator)[: self.num_samples]

    def __iter__(self) -> Iterator[int]:
        start = 0
        if self._resume_at is not None and self._resume_at[0] == self.epoch:
            start, self._resume_at = self._resume_at[1], None
        return iter(self.order(self.epoch)[start:].tolist())

    def __len__(self) -> int:
        return self.num_samples
