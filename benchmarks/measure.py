"""What the benchmarks share: the peak memory of the process that ran one side, and the matrix-multiply rate a model's
own shapes allow on this core (the peak its MFU can approach)."""

from __future__ import annotations

import os
import tempfile
from collections import Counter


def one_core_env(**extra: str) -> dict[str, str]:
    """The environment of a benchmark side that must keep to one core while another side runs on the second: one
    torch thread, one inductor compile worker (torch.compile otherwise compiles on every core at once and slows
    the other side's first minutes, its step-time probe included), and an empty inductor cache of its own: a compile
    counted in a time budget is then the cold one a first run pays, not one an earlier run left on disk."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TORCHINDUCTOR_COMPILE_THREADS": "1",
            "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix="bench-inductor-"),
            "TOKENIZERS_PARALLELISM": "false", **extra}


def peak_resident_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


class AnonymousPeak:
    """The peak of this process's anonymous resident memory (RssAnon: the heap, arrays and objects it needs),
    sampled every ``interval`` seconds in a background thread. Unlike VmHWM it leaves out file pages, such as
    the Arrow files that ``datasets`` memory-maps, which the kernel keeps cached and reclaims at will."""

    def __init__(self, interval: float = 0.01):
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self, interval: float) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("RssAnon"))
            self.peak_kb = max(self.peak_kb, kb)
            self._stop.wait(interval)

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def linear_shapes(model, forward) -> list[tuple[int, int, int]]:
    """(rows, in_features, out_features) of every ``nn.Linear`` call that ``forward()`` makes in ``model``, in call
    order: the matrix products a training step multiplies, rows being the tokens each layer sees (all of a batch's,
    or the masked ones only where a head predicts sparsely)."""
    import torch

    shapes = []

    def record(module, inputs, output):
        shapes.append((inputs[0].numel() // module.in_features, module.in_features, module.out_features))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def gemm_rate(shapes: list[tuple[int, int, int]], dtype, seconds: float = 0.1) -> float:
    """FLOP/s of a training step's linear layers multiplied alone at their own shapes on this core: for each
    (rows, in, out), the forward product and the backward's two (the input's gradient, rows x out by out x in; the
    weight's, in x rows by rows x out), each at its best rate over ``seconds``. Small matrices multiply far below a
    large square matmul's rate, so this, not that, is the limit a small model's MFU can approach."""
    from hf_pretrain.runtime.precision import matmul_rate

    flops = spent = 0.0
    for (m, k, n), calls in Counter(shapes).items():
        for product in ((m, k, n), (m, n, k), (k, m, n)):
            flops += calls * 2 * m * k * n
            spent += calls * 2 * m * k * n / matmul_rate(dtype, seconds, shape=product)
    return flops / spent
