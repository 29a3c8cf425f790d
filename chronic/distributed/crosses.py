"""Cross counting as a map-reduce over partitions of people on Dask workers.

Why the counts distribute exactly: a block of crosses is counted into dense tables whose cells are (label state,
prefix bins, extension bin); the tables of disjoint sets of people add up. So each worker keeps its people's bin
codes and label states (a `_Counter`, built where the partition lives: codes never travel), maps a block to its
tables, the tables are summed on a worker (the reduce), and only the summed table of the block comes back to the
client, which turns it into rows, scores them and feeds the top-K pools exactly as the single-machine fit does,
block by block in the same order. Same counts, same order, same ties: the same selected crosses. Blocks travel in
batches, and while the client scores one batch the workers already count the next (`window`).

Bins are fitted on the client from the columns whose bins come from the data (quantile and category fields of
the training people, gathered once); guideline bins need no data.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from chronic.features.bins import FieldBins, encode
from chronic.features.crosses import STATES, CrossFeatures, _Counter, group_states, label_states


def _part_counter(part: tuple[pl.DataFrame, np.ndarray], fields: list[FieldBins], nb: np.ndarray,
                  chunk_size: int) -> _Counter:
    """On a worker: the counter of one partition's people (their codes and label states stay there)."""
    X, Y = part
    return _Counter(encode(fields, X), nb, label_states(Y), chunk_size)


def _part_tables(counter: _Counter, blocks: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]
                 ) -> list[list[np.ndarray]]:
    """On a worker: the tables of a batch of blocks over one partition's people (the map)."""
    return [counter.tables(prefix, ext, offsets) for prefix, ext, offsets in blocks]


def _sum_tables(*parts: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """The reduce: tables of disjoint people add up."""
    out = [[t.copy() for t in block] for block in parts[0]]
    for p in parts[1:]:  # a loop over partitions
        for acc_block, block in zip(out, p):
            for acc, t in zip(acc_block, block):
                acc += t
    return out


def _describe(part: tuple[pl.DataFrame, np.ndarray]) -> dict[str, Any]:
    X, Y = part
    states = label_states(np.asarray(Y, dtype=np.float64))
    return {"columns": X.columns, "people": X.height, "tasks": states.shape[1],
            "labelled": (states > 0).sum(axis=0), "positive": (states == 2).sum(axis=0)}


def _columns(part: tuple[pl.DataFrame, np.ndarray], names: list[str]) -> pl.DataFrame:
    return part[0].select(names)


class DaskCounter(_Counter):
    """A `_Counter` whose people live on Dask workers, one `_Counter` per partition."""

    def __init__(self, client: Any, parts: Sequence[Any], n_bins: np.ndarray, n_tasks: int, people: int,
                 window: int = 2, batch_cells: int = 4_000_000) -> None:
        self.client = client
        self.parts = list(parts)
        self.nb = n_bins.astype(np.int64)
        _, self.group_sizes = group_states(np.zeros((1, n_tasks), dtype=np.int64))
        self.n = people
        self.window = max(1, window)
        self.batch_cells = max(1, batch_cells)
        self.person_combos = 0

    def tables(self, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
        return self._submit([(prefix, ext, offsets)]).result()[0]

    def _submit(self, batch: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]) -> Any:
        maps = [self.client.submit(_part_tables, p, batch, pure=False) for p in self.parts]
        return maps[0] if len(maps) == 1 else self.client.submit(_sum_tables, *maps, pure=False)

    def count_all(self, blocks: Sequence[tuple[tuple[int, ...], np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Counts of each block in order. Blocks go to the workers in batches of about `batch_cells` table cells
        (one task per partition and batch, not per block: the scheduler's per-task cost stays small), with up to
        `window` batches being counted while the client scores the results of an earlier one."""
        todo = iter(blocks)
        pending: deque[tuple[list[tuple[tuple[int, ...], np.ndarray, np.ndarray]], Any]] = deque()

        def submit_next() -> None:
            batch, cells = [], 0
            while cells < self.batch_cells:
                nxt = next(todo, None)
                if nxt is None:
                    break
                ext, _, offsets = self.layout(*nxt)
                batch.append((nxt[0], ext, offsets))
                cells += int(offsets[-1]) * STATES * len(self.group_sizes)
            if batch:
                pending.append((batch, self._submit(batch)))

        for _ in range(self.window):
            submit_next()
        while pending:
            batch, future = pending.popleft()
            submit_next()
            tables = future.result()
            future.release()
            for (prefix, ext, offsets), t in zip(batch, tables):  # a loop over the batch's blocks
                self.person_combos += self.n * len(ext)
                yield self.rows(prefix, ext, offsets, t)


def fit_on_dask(est: CrossFeatures, client: Any, parts: Sequence[Any]) -> CrossFeatures:
    """`est.fit` on training people spread over Dask: `parts` are futures of (fields frame, Y) per partition.

    Gives the same fitted transform as ``est.fit(concat of the frames, concat of the Ys)``.
    """
    t0 = time.perf_counter()
    if not parts:
        raise ValueError("no partitions to fit on")
    meta = client.gather([client.submit(_describe, p, pure=False) for p in parts])
    columns = meta[0]["columns"]
    if any(m["columns"] != columns or m["tasks"] != meta[0]["tasks"] for m in meta):
        raise ValueError("the partitions do not share one set of columns and tasks")
    est.begin_fit(columns, meta[0]["tasks"])
    names = est.data_fitted_fields()
    frames = client.gather([client.submit(_columns, p, names, pure=False) for p in parts])
    est.fit_bins(pl.concat(frames, how="vertical") if names else pl.DataFrame())
    del frames
    n_lab = np.sum([m["labelled"] for m in meta], axis=0)
    n_pos = np.sum([m["positive"] for m in meta], axis=0)
    shared = est.shared_state(None, None, n_lab, n_pos)
    counters = [client.submit(_part_counter, p, est.fields_, shared.nb, int(est.chunk_size), pure=False)
                for p in parts]
    people = int(sum(m["people"] for m in meta))
    counter = DaskCounter(client, counters, shared.nb, len(est.task_names_), people)
    try:
        return est.count_and_select(shared, people, t0, counter=counter)
    finally:
        for f in counters:
            f.release()
