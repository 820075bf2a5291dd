"""What the benchmarks share: the peak memory of the process that ran one side."""

from __future__ import annotations


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
