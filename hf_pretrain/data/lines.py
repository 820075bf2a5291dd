"""Reading a text file line by line, safely: any compression, UTF-8 checked per line, memory bounded per line.

The corpus readers and the GLUE readers both read through :func:`decoded_lines`, so a bad line is named (file and
line) or skipped by the same policy everywhere.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from collections.abc import Iterator
from typing import IO

import zstandard

from ..errors import BadInput, HfPretrainError, located

# A line (a paragraph, a JSON record, a TSV row) longer than this is not text to train on, and reading it whole
# would make memory grow with the input: it is reported as bad input after being read in bounded pieces.
MAX_LINE_BYTES = 16 * 2**20
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": None}


class _ZstdReader(io.RawIOBase):
    """A .zst file's decompressed bytes, frame after frame, that raises ``EOFError`` when the file ends inside a
    frame, as the gzip, bz2 and lzma readers do for a truncated file (zstandard's own reader just stops)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._started = False  # input went into the current frame

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._file.read(2**16)
            if not chunk:
                if self._started and not self._frame.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker was reached")
                return 0
            while chunk:
                if self._frame.eof:  # the next frame of a multi-frame file
                    self._frame = zstandard.ZstdDecompressor().decompressobj()
                self._started = True
                self._pending += self._frame.decompress(chunk)
                chunk = self._frame.unused_data if self._frame.eof else b""
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_binary(path: str) -> IO[bytes]:
    """The file's bytes, decompressed by its suffix (.gz, .bz2, .xz, .zst) or as they are; a truncated compressed
    file raises ``EOFError`` when its end is reached."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".zst":
        return io.BufferedReader(_ZstdReader(path))
    opener = COMPRESSIONS.get(suffix)
    return opener(path, "rb") if opener else open(path, "rb")


def _bounded_lines(raw: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines as bytes, holding at most ``MAX_LINE_BYTES`` at a time; ``None`` stands for a longer line,
    which is read through in pieces and dropped."""
    while line := raw.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES:
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = raw.readline(MAX_LINE_BYTES)
        yield None


def decoded_lines(path: str, bad: BadInput | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text without the newline) of a possibly compressed text file, each line decoded as UTF-8
    (a byte-order mark is dropped), so that a bad line can be named or, by ``bad``'s policy, skipped."""
    bad = bad or BadInput()
    try:
        with open_binary(path) as raw:
            for number, line in enumerate(_bounded_lines(raw), start=1):
                where = located(path, number)
                if line is None:
                    bad(where, "line too long", f"(over {MAX_LINE_BYTES // 2**20} MiB)", "is this a text file?")
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad(where, "not UTF-8 text", f"(byte {err.start} of the line)", "convert the file to UTF-8")
                    continue
                if "\x00" in text:
                    bad(where, "NUL bytes", advice="this is not a text file")
                    continue
                if number == 1:
                    text = text.removeprefix("\ufeff")
                yield number, text.rstrip("\r\n")
    except (OSError, EOFError, lzma.LZMAError) as err:
        if isinstance(err, HfPretrainError):
            raise
        raise HfPretrainError(f"{path}: cannot be read ({err})") from None
