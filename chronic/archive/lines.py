"""Split an input file into numbered physical lines, as one Arrow column, without a Python loop.

Every format is read through here so that every quarantined row can name its true 1-based line, whatever
its content: the newline positions are found with numpy and the lines become an Arrow string array over the
file's own bytes (no copy). A UTF-8 byte-order mark and CRLF line ends are accepted; a last line with no line
end is flagged so that a truncated write can be told apart from a complete last row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BOM = b"\xef\xbb\xbf"
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class FileLines:
    """The lines of one file. `table` has `line` (int64, 1-based) and `text` (string, no line end)."""

    path: Path
    sha256: str
    n_bytes: int
    table: pa.Table
    last_line_unterminated: bool  # the file does not end with a line end

    @property
    def n_lines(self) -> int:
        return self.table.num_rows

    def slice(self, start: int, length: int) -> pa.Table:
        return self.table.slice(start, length)


def read_lines(path: Path) -> FileLines:
    """Read `path` into numbered lines; empty lines are kept (and later skipped by the parsers)."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    n_bytes = len(data)
    start = len(BOM) if data.startswith(BOM) else 0
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 0x0A)
    unterminated = n_bytes > start and (len(newlines) == 0 or newlines[-1] != n_bytes - 1)
    # Line i spans offsets[i]..offsets[i+1] of the buffer, its line end included: an Arrow string array over
    # the file's own bytes, then one vectorised trim of the CR/LF.
    line_starts = np.concatenate(([start], newlines + 1)).astype(np.int64)
    if not unterminated:  # the final newline opens no further line
        line_starts = line_starts[:-1]
    if start >= n_bytes:
        line_starts = line_starts[:0]
    offsets = np.concatenate((line_starts, [n_bytes])).astype(np.int64)
    text = _strings(data, offsets)
    table = pa.table({"line": pa.array(np.arange(1, len(line_starts) + 1, dtype=np.int64)), "text": text})
    # zero-copy record batches: DuckDB scans Arrow in parallel by batch, so one big batch would use one core
    table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), schema=table.schema)
    return FileLines(path=path, sha256=sha, n_bytes=n_bytes, table=table, last_line_unterminated=bool(unterminated))


def _strings(data: bytes, offsets: np.ndarray) -> pa.Array:
    """Lines as large_string over `data` at `offsets`, line ends removed; invalid UTF-8 bytes replaced."""
    n = len(offsets) - 1
    if n <= 0:
        return pa.array([], type=pa.large_string())
    raw = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        raw.validate(full=True)
    except pa.ArrowInvalid:
        # Not UTF-8 somewhere: decode line by line with replacement so every line survives and the parsers
        # quarantine the junk, rather than the whole file failing. Rare path, so a loop is acceptable here.
        raw = pa.array(
            [data[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(n)],
            type=pa.large_string(),
        )
    return pc.utf8_rtrim(raw, characters="\r\n")
