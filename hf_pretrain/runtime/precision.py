"""``--bf16 auto``: bf16 mixed precision where it makes this device train faster, fp32 where it does not.

On GPUs with bf16 it is the fast path. On CPUs it depends on the matrix units: a Xeon with AMX multiplies bf16 several
times faster than fp32, one with AVX-512 BF16 alone at about half fp32's rate (measured on this project's machines:
the same budget recipe trained at 3,807 tokens/s in bf16 on the first, and at 1,650 in bf16 against 2,970 in fp32
on the second). So on a CPU the choice is measured: a few large matmuls in each precision.
"""

from __future__ import annotations

import time

import torch

MARGIN = 1.25  # bf16 must beat fp32 clearly: processes that measure apart should not choose apart


def matmul_rate(dtype: torch.dtype, seconds: float = 0.3, n: int = 1024,
                shape: tuple[int, int, int] | None = None) -> float:
    """This process's CPU matrix-multiply rate in ``dtype``: the best of repeated ``n`` x ``n`` matmuls, or of
    (m x k) by (k x n) ones for ``shape`` = (m, k, n) (FLOP/s)."""
    m, k, n = shape or (n, n, n)
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.matmul(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        best = max(best, 4 * 2 * m * k * n / (time.perf_counter() - start))
    return best


def choose_bf16() -> tuple[bool, str]:
    """Whether ``--bf16 auto`` trains in bf16 here, and why (for the log)."""
    if torch.cuda.is_available():
        supported = torch.cuda.is_bf16_supported()
        return supported, f"the GPU {'supports' if supported else 'does not support'} bf16"
    if torch.accelerator.is_available():
        return False, f"bf16 is not chosen automatically on {torch.accelerator.current_accelerator().type}"
    bf16, fp32 = matmul_rate(torch.bfloat16), matmul_rate(torch.float32)
    faster = bf16 > MARGIN * fp32
    return faster, (f"this CPU multiplies bf16 matrices at {bf16 / 1e9:,.0f} GFLOP/s and fp32 at {fp32 / 1e9:,.0f}: "
                    f"training in {'bf16' if faster else 'fp32'}")
