"""What the processes of a run share that is not a tensor of the model: files the global main process made.

On several machines, only one process makes the run's tokenizer; the others may not see its ``--output_dir`` (no
shared file system), so the files travel over the process group itself, as bytes (never pickled).
"""

from __future__ import annotations

import json
import os

import torch


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def broadcast_files(files: dict[str, bytes] | None, device: torch.device | str = "cpu") -> dict[str, bytes]:
    """``files`` (name -> content) of global rank 0, on every process; without a process group, ``files``."""
    if not _distributed():
        return files or {}
    if torch.distributed.get_rank() == 0:
        payload = json.dumps({name: content.decode("latin-1") for name, content in files.items()}).encode()
        size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
    else:
        size = torch.zeros(1, dtype=torch.int64, device=device)
    torch.distributed.broadcast(size, src=0)
    if torch.distributed.get_rank() == 0:
        data = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
    else:
        data = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    torch.distributed.broadcast(data, src=0)
    received = json.loads(bytes(data.cpu().numpy()).decode())
    return {name: content.encode("latin-1") for name, content in received.items()}


def read_files(paths) -> dict[str, bytes]:
    """The files at ``paths`` by base name (what ``save_pretrained`` returns)."""
    out = {}
    for path in paths:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.basename(path)] = f.read()
    return out


def write_files(files: dict[str, bytes], folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(folder, os.path.basename(name)), "wb") as f:
            f.write(content)
