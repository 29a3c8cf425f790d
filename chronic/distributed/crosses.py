"""Cross counting as a map-reduce over partitions of people on Dask workers.

Why the counts distribute exactly: a block of crosses is counted into dense tables whose cells are (label state,
prefix bins, extension bin); the tables of disjoint sets of people add up. So each worker keeps its people's bin
codes and label states (a `_Counter`, built where the partition lives: codes never travel), maps a block to its
tables, the tables are summed on a worker (the reduce), and only the summed table of the block comes back to the
client, which turns it into rows, scores them and feeds the top-K pools exactly as the single-machine fit does,
block by block in the same order. Same counts, same order, same ties: the same selected crosses. While the client
scores one block, the workers already count the next ones (`window`).

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
from chronic.features.crosses import CrossFeatures, _Counter, group_states, label_states


def _part_counter(part: tuple[pl.DataFrame, np.ndarray], fields: list[FieldBins], nb: np.ndarray,
                  chunk_size: int) -> _Counter:
    """On a worker: the counter of one partition's people (their codes and label states stay there)."""
    X, Y = part
    return _Counter(encode(fields, X), nb, label_states(Y), chunk_size)


def _part_tables(counter: _Counter, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return counter.tables(prefix, ext, offsets)


def _sum_tables(*parts: list[np.ndarray]) -> list[np.ndarray]:
    out = [t.copy() for t in parts[0]]
    for p in parts[1:]:  # a loop over partitions
        for acc, t in zip(out, p):
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
                 window: int = 3) -> None:
        self.client = client
        self.parts = list(parts)
        self.nb = n_bins.astype(np.int64)
        _, self.group_sizes = group_states(np.zeros((1, n_tasks), dtype=np.int64))
        self.n = people
        self.window = max(1, window)
        self.person_combos = 0

    def tables(self, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
        return self._submit(prefix, ext, offsets).result()

    def _submit(self, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray) -> Any:
        maps = [self.client.submit(_part_tables, p, prefix, ext, offsets, pure=False) for p in self.parts]
        return maps[0] if len(maps) == 1 else self.client.submit(_sum_tables, *maps, pure=False)

    def count_all(self, blocks: Sequence[tuple[tuple[int, ...], np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """Counts of each block in order, with up to `window` blocks being counted ahead on the workers."""
        todo = iter(blocks)
        pending: deque[tuple[tuple[int, ...], np.ndarray, np.ndarray, Any]] = deque()

        def submit_next() -> None:
            nxt = next(todo, None)
            if nxt is not None:
                ext, _, offsets = self.layout(*nxt)
                pending.append((nxt[0], ext, offsets, self._submit(nxt[0], ext, offsets)))

        for _ in range(self.window):
            submit_next()
        while pending:
            prefix, ext, offsets, future = pending.popleft()
            submit_next()
            tables = future.result()
            future.release()
            self.person_combos += self.n * len(ext)
            yield self.rows(prefix, ext, offsets, tables)


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
