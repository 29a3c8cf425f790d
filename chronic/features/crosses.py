"""Crosses of binned fields (order 1..3): count on training people, score per task, keep the top K, transform.

Shape of the computation (docs/crosses.md has the why and the numbers):

1. Bins (:mod:`chronic.features.bins`): every field becomes a uint8 code per person; code 0 is missing.
2. Counting is a *map-reduce over chunks of people* of dense per-combination tables. A block is a prefix of
   fields (none, one field, or a pair) and a list of extension fields; its crosses are prefix-bin-tuple x extension
   bin. Within a block the bin tuple of a person is hashed *perfectly* by mixed radix (``cell = pre_cell * B_e +
   b_e``) and the person's label pattern is folded in (``key = cell * 27 + state``, the states of 3 tasks in base 3),
   so one ``np.bincount`` per extension field and label group counts support, labelled and positive people for
   every cross and task at once. Chunks of people give tables of the same shape, so the reduce is a sum (a Dask
   version maps chunks to workers and sums). No Python loop touches people or crosses: the loops run over blocks,
   extension fields and chunks.
3. Order 1 and 2 are exhaustive. Order 3 is a plan built from their scores: every pair of the top
   ``order3_pairs`` pairs (by interaction score, round-robin over tasks) extended by every other field, plus all
   triples of the top ``order3_fields`` fields (by univariate score, round-robin over tasks).
4. Crosses below ``min_support`` training people are dropped; the rest are scored per task on the labelled
   training people (:mod:`chronic.features.selection`: productive evidence in nats) and streamed through a top-K
   pool per task. A cross is scored for a task only if none of its fields derives from the task's defining measures
   or is the task's own definition.
5. The fitted transform keeps the bins and the selected crosses (ids, field/bin tuples, rule texts); ``transform``
   maps people to a binary CSR matrix with the same columns every time, and ``save``/``load`` round-trip it as JSON.

Ids are stable 64-bit hashes (FNV-1a of the field name, splitmix64 mixing with the bin index, chained over the
atoms in field-name order): the same cross gets the same id in every process and whatever the column order.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing as mp
import os
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from chronic.features.bins import FieldBins, FieldSpec, encode, field_eligible, fit_field, load_catalog
from chronic.features.selection import TopKPool, productive_score, smoothed_rate

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "features" / "crosses.toml"
DEFAULT_CATALOG = REPO / "features" / "fields.toml"
FORMAT = "chronic.crosses/1"

GROUP = 3  # tasks per label group: 3**3 = 27 states keep each bincount table small enough for the CPU cache
STATES = 3**GROUP
KEY_COLUMNS = ("person_id", "clinic_id")

# --------------------------------------------------------------------------------------------------- stable ids
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic): a bijection with full avalanche."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def name_hash(name: str) -> np.uint64:
    """64-bit hash of a field name: FNV-1a over its UTF-8 bytes, then mixed (independent of PYTHONHASHSEED)."""
    h = _FNV_OFFSET
    for byte in name.encode("utf-8"):  # a loop over the characters of one name, once per field
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return _mix(np.array([h], dtype=np.uint64))[0]


def cross_ids(hashes: np.ndarray, fields: np.ndarray, bins: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Ids of crosses given per-field name hashes, (rows, 3) field indices sorted by name (-1 pads) and bins."""
    with np.errstate(over="ignore"):
        acc = _mix(order.astype(np.uint64) * _GOLD)
        for j in range(fields.shape[1]):  # over the (at most 3) positions of a cross
            f = fields[:, j]
            atom = _mix(hashes[np.maximum(f, 0)] + (bins[:, j].astype(np.uint64) + np.uint64(1)) * _GOLD)
            acc = np.where(f >= 0, _mix(acc ^ atom), acc)
    return acc


def cross_id(atoms: Sequence[tuple[str, int]]) -> int:
    """The id of one cross from its (field name, bin code) atoms, in any order (for tests and lookups)."""
    atoms = sorted(atoms)
    hashes = np.array([name_hash(n) for n, _ in atoms], dtype=np.uint64)
    fields = np.arange(len(atoms))[None, :]
    bins = np.array([b for _, b in atoms])[None, :]
    return int(cross_ids(hashes, fields, bins, np.array([len(atoms)]))[0])


# ----------------------------------------------------------------------------------------------------- labels
def label_states(Y: np.ndarray) -> np.ndarray:
    """Per person and task: 0 missing, 1 negative, 2 positive."""
    return np.where(np.isnan(Y), 0, np.where(Y > 0.5, 2, 1)).astype(np.int64)


def group_states(states: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Fold each group of up to 3 tasks into one base-3 state per person (0..26: task j of the group is digit j),
    and the number of tasks in each group."""
    keys, sizes = [], []
    for start in range(0, states.shape[1], GROUP):
        sub = states[:, start:start + GROUP]
        keys.append((sub * 3 ** np.arange(sub.shape[1])[None, :]).sum(axis=1).astype(np.int64))
        sizes.append(sub.shape[1])
    return keys, sizes


# ------------------------------------------------------------------------------------------------- the counter
BATCH = 1 << 16  # people x extension fields per bincount when chunks are small (amortises the per-call cost)


class _Counter:
    """Counts support, labelled and positive people per cross for blocks (prefix fields x extension fields).

    A block's table holds, per extension field e, ``27 * n_pre * B_e`` counters laid out (label state, prefix
    cell, bin of e). Extension fields are ordered by bin count so that runs of equal B_e share one key base and
    reduce with one reshape.
    """

    def __init__(self, codes: np.ndarray, n_bins: np.ndarray, states: np.ndarray, chunk_size: int) -> None:
        self.codes = codes  # (fields, people) uint8
        self.nb = n_bins.astype(np.int64)
        self.n = codes.shape[1]
        self.keys, self.group_sizes = group_states(states)
        self.chunk = max(1, int(chunk_size))
        self.person_combos = 0  # people x combinations visited, for throughput figures

    @staticmethod
    def _runs(b: np.ndarray) -> np.ndarray:
        """Start indices of runs of equal values in `b`, plus its length."""
        return np.flatnonzero(np.diff(np.concatenate([[-1], b, [-1]])))

    def map_chunk(self, prefix: tuple[int, ...], ext: np.ndarray, sl: slice, out: list[np.ndarray],
                  offsets: np.ndarray) -> None:
        """Add one chunk of people's counts into `out` (one table per label group): the map step.

        The key of a person in extension e's slice is ``(state * n_pre + pre_cell) * B_e + bin_e``, a perfect hash
        of (label state, prefix bins, extension bin): each person x extension x label group costs one add and one
        bincount increment; the extension's codes are added as they are (uint8).
        """
        codes, nb = self.codes, self.nb
        m = sl.stop - sl.start
        pre = np.zeros(m, dtype=np.int64)
        for f in prefix:
            pre *= nb[f]
            pre += codes[f, sl]
        n_pre = int(np.prod(nb[list(prefix)])) if prefix else 1
        keys = [k[sl] * n_pre + pre for k in self.keys]  # state * n_pre + pre_cell, per label group
        be_all = nb[ext]
        buf = np.empty(m, dtype=np.int64)
        step = max(1, BATCH // m)  # extension fields per bincount
        runs = self._runs(be_all)
        for r0, r1 in zip(runs[:-1], runs[1:]):  # runs of extension fields with the same bin count
            be = int(be_all[r0])
            width = n_pre * STATES * be
            bases = [k * be for k in keys]
            for i0 in range(r0, r1, step):  # a loop over (batches of) extension fields
                i1 = min(i0 + step, r1)
                lo, hi = int(offsets[i0]) * STATES, int(offsets[i1]) * STATES
                if i1 - i0 == 1:
                    row = codes[ext[i0], sl]
                    for g, base in enumerate(bases):
                        np.add(base, row, out=buf)
                        out[g][lo:hi] += np.bincount(buf, minlength=width)
                else:  # several extension fields at once: shift each to its own slice of the table
                    shift = (np.arange(i1 - i0, dtype=np.int64) * width)[:, None]
                    part = codes[ext[i0:i1], sl] + shift
                    for g, base in enumerate(bases):
                        out[g][lo:hi] += np.bincount((part + base[None, :]).ravel(), minlength=hi - lo)
        self.person_combos += m * len(ext)

    def layout(self, prefix: tuple[int, ...], ext: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """A block's table layout: extension fields in table order (by bin count, then index), prefix cells and
        the first row of each extension field (plus the total)."""
        nb = self.nb
        ext = ext[np.lexsort((ext, nb[ext]))]
        n_pre = int(np.prod(nb[list(prefix)])) if prefix else 1
        offsets = np.concatenate([[0], np.cumsum(n_pre * nb[ext])]).astype(np.int64)
        return ext, n_pre, offsets

    def tables(self, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
        """The block's count tables (one per label group) over this counter's people: map over chunks, and the
        reduce of the chunks' tables is the in-place sum. Tables of disjoint people add up (the Dask reduce)."""
        tables = [np.zeros(int(offsets[-1]) * STATES, dtype=np.int64) for _ in self.keys]
        for start in range(0, self.n, self.chunk):
            self.map_chunk(prefix, ext, slice(start, min(start + self.chunk, self.n)), tables, offsets)
        return tables

    def count(self, prefix: tuple[int, ...], ext: np.ndarray) -> dict[str, np.ndarray]:
        """Counts of every cross prefix-bins x extension-bin: map over chunks of people, reduce by summing.

        Returns row arrays (extension field, prefix cell, extension bin, support, labelled and positive per task);
        rows run over the extension fields in `ext_order` (by bin count, then index), each as (prefix cell,
        extension bin) in row-major order, with `offsets` the first row of each extension field.
        """
        ext, _, offsets = self.layout(prefix, ext)
        return self.rows(prefix, ext, offsets, self.tables(prefix, ext, offsets))

    def count_all(self, blocks: Sequence[tuple[tuple[int, ...], np.ndarray]]) -> Iterator[dict[str, np.ndarray]]:
        """`count` of each block in turn (a distributed counter overlaps them)."""
        for prefix, ext in blocks:
            yield self.count(prefix, ext)

    def rows(self, prefix: tuple[int, ...], ext: np.ndarray, offsets: np.ndarray,
             tables: list[np.ndarray]) -> dict[str, np.ndarray]:
        """A block's tables as rows: support, labelled and positive people per cross and task."""
        nb = self.nb
        n_pre = int(np.prod(nb[list(prefix)])) if prefix else 1
        be_all = nb[ext]
        sizes = n_pre * be_all
        total = int(offsets[-1])
        # states -> support, labelled and positive per task: view each run as (ext, d2, d1, d0, pre x bin) and sum
        # out the other digits of each task's label state (adds of contiguous rows)
        support = np.empty(total, dtype=np.int64)
        n_tasks = sum(self.group_sizes)
        lab = np.empty((total, n_tasks), dtype=np.int64)
        pos = np.empty((total, n_tasks), dtype=np.int64)
        runs = self._runs(be_all)
        for r0, r1 in zip(runs[:-1], runs[1:]):  # a loop over runs of equal bin count
            be = int(be_all[r0])
            rows = slice(int(offsets[r0]), int(offsets[r1]))
            t0 = 0
            for g, (table, size) in enumerate(zip(tables, self.group_sizes)):
                v = table[rows.start * STATES:rows.stop * STATES].reshape(r1 - r0, 3, 3, 3, n_pre * be)
                for j in range(size):  # digit j of the state is axis 3 - j
                    d = v.sum(axis=tuple(a for a in (1, 2, 3) if a != 3 - j))  # (ext, 3, pre x bin)
                    lab[rows, t0 + j] = (d[:, 1] + d[:, 2]).ravel()
                    pos[rows, t0 + j] = d[:, 2].ravel()
                    if g == 0 and j == 0:
                        support[rows] = (d[:, 0] + lab[rows, 0].reshape(d[:, 0].shape)).ravel()
                t0 += size
        e_idx = np.repeat(np.arange(len(ext)), sizes)
        pre_cell, ext_bin = np.divmod(np.arange(total) - offsets[e_idx], be_all[e_idx])
        return {"ext": ext[e_idx], "pre_cell": pre_cell, "ext_bin": ext_bin, "support": support, "n": lab,
                "k": pos, "offsets": offsets, "ext_order": ext}


# -------------------------------------------------------------------------------------------- blocks of crosses
@dataclass
class _Shared:
    """Everything a block needs, picklable: one copy per worker process of a parallel fit."""

    codes: np.ndarray  # (fields, people) uint8 bin codes
    nb: np.ndarray  # (fields,) bins per field
    states: np.ndarray  # (people, tasks) 0 missing / 1 negative / 2 positive
    elig: np.ndarray  # (tasks, fields) may the task see the field
    hashes: np.ndarray  # (fields,) uint64 name hashes
    p0: np.ndarray  # (tasks,) base rates
    chunk_size: int
    m: float
    min_support: int
    min_score: float
    top_k: int
    n_lab: np.ndarray  # (tasks,) labelled training people
    n_pos: np.ndarray  # (tasks,) positive training people


class _Blocks:
    """Counts and scores blocks of crosses into a local top-K pool (one per process; the map of the fit)."""

    def __init__(self, sh: _Shared, counter: _Counter | None = None) -> None:
        self.sh = sh
        self.counter = counter if counter is not None else _Counter(sh.codes, sh.nb, sh.states, sh.chunk_size)
        self.atom_off = np.concatenate([[0], np.cumsum(sh.nb)]).astype(np.int64)

    def _result(self) -> dict[str, Any]:
        self.counter.person_combos = 0
        return {"pool": TopKPool(self.sh.top_k, self.sh.p0.size, self.sh.min_score), "candidates": 0,
                "supported": 0, "scored": np.zeros(self.sh.p0.size, dtype=np.int64)}

    def _done(self, res: dict[str, Any]) -> dict[str, Any]:
        pool, _ = res.pop("pool").result()
        res["pool"] = pool
        res["person_combos"] = self.counter.person_combos
        return res

    def _supported(self, res: dict[str, Any], c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Tally candidates (seen at all) and supported crosses; the supported rows of the block."""
        res["candidates"] += int((c["support"] > 0).sum())
        sup = c["support"] >= self.sh.min_support
        res["supported"] += int(sup.sum())
        return {k: v[sup] for k, v in c.items() if k not in ("offsets", "ext_order")}

    def _score(self, res: dict[str, Any], order: int, fields: np.ndarray, bins: np.ndarray,
               s: dict[str, np.ndarray], parents: list[np.ndarray]) -> np.ndarray:
        """Per-task scores of supported rows (-inf where a field is hidden from the task); offer them to the pool."""
        sh = self.sh
        n, k = s["n"], s["k"]
        ok = np.ones(n.shape, dtype=bool)
        for j in range(order):
            ok &= sh.elig[:, fields[:, j]].T
        score = np.where(ok, productive_score(k, n, parents, sh.m), -np.inf)
        res["scored"] += ok.sum(axis=0)
        pool: TopKPool = res["pool"]
        keep = pool.admissible(score)
        if keep.any():
            rows = int(keep.sum())
            f3 = np.full((rows, 3), -1, dtype=np.int32)
            b3 = np.zeros((rows, 3), dtype=np.int16)
            f3[:, :order] = fields[keep]
            b3[:, :order] = bins[keep]
            o = np.full(rows, order, dtype=np.int8)
            pool.add(score[keep], cross_ids(sh.hashes, f3, b3, o),
                     {"fields": f3, "bins": b3, "order": o, "support": s["support"][keep],
                      "n": n[keep].astype(np.int32), "k": k[keep].astype(np.int32)})
        return score

    def singles(self) -> dict[str, Any]:
        """Order 1: every bin of every field, scored against the base rate."""
        sh, res = self.sh, self._result()
        c = self.counter.count((), np.arange(sh.nb.size))
        atom_rate = np.empty((int(self.atom_off[-1]), sh.p0.size))  # rows = atoms in (field, bin) order
        atom_rate[self.atom_off[c["ext"]] + c["ext_bin"]] = smoothed_rate(c["k"], c["n"], sh.p0[None, :], sh.m)
        res["atom_rate"] = atom_rate
        s = self._supported(res, c)
        score = self._score(res, 1, s["ext"][:, None], s["ext_bin"][:, None], s, [sh.p0[None, :]])
        signal = np.full((sh.nb.size, sh.p0.size), -np.inf)
        np.maximum.at(signal, s["ext"], score)  # per field: its best supported bin
        res["field_signal"] = signal.T
        return self._done(res)

    def pairs(self, blocks: list[tuple[int, np.ndarray]], atom_rate: np.ndarray) -> dict[str, Any]:
        """Order 2: prefix field a x extension fields (all > a), scored against both single bins."""
        sh, res = self.sh, self._result()
        res["pair_rates"], res["pair_best"] = [], []
        for (a, ext), c in zip(blocks, self.counter.count_all([((a,), ext) for a, ext in blocks])):  # over blocks
            rate = smoothed_rate(c["k"], c["n"], sh.p0[None, :], sh.m).astype(np.float32)
            res["pair_rates"].append((a, c["ext_order"], c["offsets"], rate))
            s = self._supported(res, c)
            if not s["support"].size:
                continue
            fields = np.stack([np.full(s["ext"].size, a), s["ext"]], axis=1)
            bins = np.stack([s["pre_cell"], s["ext_bin"]], axis=1)
            parents = [atom_rate[self.atom_off[a] + s["pre_cell"]], atom_rate[self.atom_off[s["ext"]] + s["ext_bin"]]]
            score = self._score(res, 2, fields, bins, s, parents)
            best = np.full((ext.size, sh.p0.size), -np.inf)  # best supported cell per pair: ranks pairs for order 3
            np.maximum.at(best, np.searchsorted(ext, s["ext"]), score)
            res["pair_best"].append((a, ext, best))
        return self._done(res)

    def triples(self, blocks: list[tuple[tuple[int, int], np.ndarray]], pair_rate: np.ndarray,
                pair_off: np.ndarray) -> dict[str, Any]:
        """Order 3: prefix pair (a, b) x extension fields, scored against the three pairs inside each triple."""
        sh, res = self.sh, self._result()
        nb = sh.nb
        for ((a, b), ext), c in zip(blocks, self.counter.count_all(blocks)):  # a loop over blocks
            s = self._supported(res, c)
            if not s["support"].size:
                continue
            ba, bb = np.divmod(s["pre_cell"], nb[b])
            e = s["ext"]
            fields = np.stack([np.full(e.size, a), np.full(e.size, b), e], axis=1)
            bins = np.stack([ba, bb, s["ext_bin"]], axis=1)
            perm = np.argsort(fields, axis=1, kind="stable")  # canonical (name) order of the three atoms
            fields = np.take_along_axis(fields, perm, axis=1)
            bins = np.take_along_axis(bins, perm, axis=1)
            parents = []
            for x, y in ((0, 1), (0, 2), (1, 2)):
                fx, fy = fields[:, x], fields[:, y]
                parents.append(pair_rate[pair_off[fx, fy] + bins[:, x] * nb[fy] + bins[:, y]].astype(np.float64))
            self._score(res, 3, fields, bins, s, parents)
        return self._done(res)


_WORKER: _Blocks | None = None


def _init_worker(shared: _Shared) -> None:
    global _WORKER
    _WORKER = _Blocks(shared)


def _work(stage: str, args: tuple[Any, ...]) -> dict[str, Any]:
    assert _WORKER is not None
    return getattr(_WORKER, stage)(*args)


def _partition(costs: np.ndarray, parts: int) -> list[np.ndarray]:
    """Block indices split into `parts` groups of similar total cost (largest first to the least loaded)."""
    load = np.zeros(parts)
    groups: list[list[int]] = [[] for _ in range(parts)]
    for i in np.argsort(-costs, kind="stable").tolist():  # a loop over blocks, not people
        g = int(np.argmin(load))
        groups[g].append(i)
        load[g] += costs[i]
    return [np.sort(np.array(g, dtype=np.int64)) for g in groups if g]


class _Runner:
    """Runs a stage's blocks in-process or on a pool of worker processes, and merges the results (the reduce)."""

    def __init__(self, shared: _Shared, n_jobs: int, local: _Blocks | None = None) -> None:
        self.local = local if local is not None else _Blocks(shared)
        self.n_jobs = n_jobs
        self.executor: ProcessPoolExecutor | None = None
        if n_jobs > 1:
            self.executor = ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn"),
                                                initializer=_init_worker, initargs=(shared,))

    def run(self, stage: str, blocks: list[Any], costs: np.ndarray, *extra: Any) -> list[dict[str, Any]]:
        if self.executor is None or len(blocks) < 2:
            return [getattr(self.local, stage)(blocks, *extra)]
        groups = _partition(costs, 2 * self.n_jobs)
        futures = [self.executor.submit(_work, stage, ([blocks[i] for i in g], *extra)) for g in groups]
        return [f.result() for f in futures]  # in submission order: merging is deterministic

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()


# ------------------------------------------------------------------------------------------------ the estimator
class CrossFeatures(TransformerMixin, BaseEstimator):
    """Binned-field crosses of order 1..`max_order`, selected per task on training people; binary CSR output.

    Parameters
    ----------
    catalog : path to a fields TOML, TOML text, or ``{name: spec}`` mapping; None = the field builder's catalog
        (``chronic.features.field_catalog()``, else ``features/fields.toml``).
    max_order : highest cross order (1, 2 or 3).
    min_support : crosses seen in fewer training people are dropped before scoring.
    top_k : crosses kept per task; the columns are the union over tasks.
    order3_pairs : order-3 plan: the top pairs (by interaction score, round-robin over tasks), each extended by
        every other field.
    order3_fields : order-3 plan: all triples of the top fields (by univariate score, round-robin over tasks).
    prior_strength : Beta prior strength (pseudo-people) shrinking a cross's rate toward its parent's.
    min_score : a cross needs more evidence than this (nats) to be selected for a task.
    chunk_size : people per counting chunk: bounds temporary memory; the map unit of the map-reduce.
    n_jobs : worker processes for counting (blocks of crosses are spread over them); 1 = in-process, -1 = all CPUs.
    tasks : task names in Y's column order; None = chronic.clinical.tasks.TASKS.
    defining : ``{task: measures}`` for the leakage rule; None = the definitions in tasks.toml.
    """

    def __init__(
        self,
        catalog: str | Path | Mapping[str, Any] | None = None,
        max_order: int = 3,
        min_support: int = 20,
        top_k: int = 500,
        order3_pairs: int = 100,
        order3_fields: int = 24,
        prior_strength: float = 10.0,
        min_score: float = 0.0,
        chunk_size: int = 100_000,
        n_jobs: int = 1,
        tasks: Sequence[str] | None = None,
        defining: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.catalog = catalog
        self.max_order = max_order
        self.min_support = min_support
        self.top_k = top_k
        self.order3_pairs = order3_pairs
        self.order3_fields = order3_fields
        self.prior_strength = prior_strength
        self.min_score = min_score
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.tasks = tasks
        self.defining = defining

    # ---------------------------------------------------------------------------------------------- config
    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> CrossFeatures:
        """An estimator with the parameters of ``features/crosses.toml`` (or `path`), overridden by keywords."""
        raw = tomllib.loads(Path(path or DEFAULT_CONFIG).read_text(encoding="utf-8"))
        return cls(**{**raw.get("crosses", {}), **overrides})

    def _catalog(self) -> dict[str, FieldSpec]:
        if self.catalog is not None:
            return load_catalog(self.catalog)
        try:  # the field builder's catalog
            from chronic.features import field_catalog  # type: ignore[attr-defined]
        except ImportError:
            return load_catalog(DEFAULT_CATALOG)
        return load_catalog(field_catalog())

    def _task_defs(self) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
        from chronic.clinical.tasks import TASKS, tasks

        names = tuple(self.tasks) if self.tasks is not None else TASKS
        if self.defining is not None:
            return names, {t: tuple(self.defining.get(t, ())) for t in names}
        defs = tasks()
        return names, {t: defs[t].defining if t in defs else () for t in names}

    # ------------------------------------------------------------------------------------------------- fit
    def fit(self, X: pl.DataFrame, Y: np.ndarray) -> CrossFeatures:
        """Fit bins and select crosses on the training people in `X` (rows aligned with `Y`, NaN = no label).

        Everything fitted (quantile cut points, supports, scores, the order-3 plan) sees only these rows: pass the
        training split, never the whole population. (`chronic.distributed.crosses.fit_on_dask` is the same fit
        with the people spread over Dask workers.)
        """
        t0 = time.perf_counter()
        Y = np.asarray(Y, dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        self.begin_fit(X.columns, Y.shape[1])
        if Y.shape[0] != X.height:
            raise ValueError(f"Y must be (people, {len(self.task_names_)}) aligned with X, got {Y.shape}")
        self.fit_bins(X)
        states = label_states(Y)
        shared = self.shared_state(encode(self.fields_, X), states, (states > 0).sum(axis=0),
                                   (states == 2).sum(axis=0))
        return self.count_and_select(shared, int(X.height), t0)

    def begin_fit(self, columns: Sequence[str], n_tasks: int) -> list[str]:
        """Check the parameters, the tasks and which catalog fields the data has; set what follows from them."""
        if self.max_order not in (1, 2, 3):
            raise ValueError(f"max_order must be 1, 2 or 3, got {self.max_order}")
        task_names, defining = self._task_defs()
        if n_tasks != len(task_names):
            raise ValueError(f"Y must be (people, {len(task_names)}) aligned with X, got {n_tasks} label columns")
        specs = self._catalog()
        names = sorted(n for n in specs if n in columns)  # name order: nothing depends on the frame's order
        if not names:
            raise ValueError("no catalog field is a column of X")
        self.catalog_ = {n: specs[n] for n in names}
        self.task_names_ = task_names
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self.eligible_ = np.array([[field_eligible(specs[n], t, defining[t]) for n in names] for t in task_names])
        return names

    def data_fitted_fields(self) -> list[str]:
        """Fields whose bins are fitted from the data (quantile cut points, category values seen): all `fit_bins`
        reads, so a distributed fit gathers these columns only."""
        return [n for n, sp_ in self.catalog_.items() if sp_.kind == "category"
                or (sp_.kind == "numeric" and isinstance(sp_.bins, str))]

    def fit_bins(self, X: pl.DataFrame) -> None:
        """Fit every field's bins on the training people in `X` (any row order: the fit does not depend on it)."""
        self.fields_ = [fit_field(self.catalog_[n], X) for n in self.feature_names_in_]

    def shared_state(self, codes: np.ndarray | None, states: np.ndarray | None, n_lab: np.ndarray,
                     n_pos: np.ndarray) -> _Shared:
        """What counting and scoring need (codes and states may live elsewhere: a distributed fit passes None)."""
        names = list(self.feature_names_in_)
        self.base_rate_ = (n_pos + 1.0) / (n_lab + 2.0)  # Laplace: a task without labels gets 0.5 and scores 0
        return _Shared(
            codes=codes, nb=np.array([fb.n_bins for fb in self.fields_], dtype=np.int64), states=states,
            elig=self.eligible_, hashes=np.array([name_hash(n) for n in names], dtype=np.uint64), p0=self.base_rate_,
            chunk_size=int(self.chunk_size), m=float(self.prior_strength), min_support=int(self.min_support),
            min_score=float(self.min_score), top_k=int(self.top_k), n_lab=np.asarray(n_lab), n_pos=np.asarray(n_pos),
        )

    def count_and_select(self, shared: _Shared, n_people: int, t0: float,
                         counter: _Counter | None = None) -> CrossFeatures:
        """Count orders 1..max_order, score, keep the top K per task (with `counter`: counts come from it)."""
        task_names, nb = self.task_names_, shared.nb
        funnel: dict[str, Any] = {
            "people": n_people, "fields": int(nb.size), "bins": int(nb.sum()),
            "labelled_per_task": dict(zip(task_names, shared.n_lab.tolist())),
            "positive_per_task": dict(zip(task_names, shared.n_pos.tolist())),
            "candidates": {}, "supported": {}, "scored_per_task": dict.fromkeys(task_names, 0),
        }
        pool = TopKPool(self.top_k, len(task_names), self.min_score)
        timings: dict[str, float] = {"bins": time.perf_counter() - t0}
        self.person_combos_ = 0
        n_jobs = (os.cpu_count() or 1) if self.n_jobs in (-1, None) else max(1, int(self.n_jobs))
        if counter is not None:  # the counts come from elsewhere; blocks run here, in order
            runner = _Runner(shared, 1, local=_Blocks(shared, counter))
        else:
            runner = _Runner(shared, n_jobs if self.max_order >= 2 else 1)
        try:
            t = time.perf_counter()
            single = runner.local.singles()  # order 1 is cheap: always in-process
            self._merge(single, 1, pool, funnel)
            timings["order1"] = time.perf_counter() - t
            if self.max_order >= 2:
                t = time.perf_counter()
                pair_rate, pair_off, pair_signal = self._pairs(runner, shared, single["atom_rate"], pool, funnel)
                timings["order2"] = time.perf_counter() - t
                if self.max_order >= 3:
                    t = time.perf_counter()
                    blocks = self._plan_triples(shared, single["field_signal"], pair_signal, funnel)
                    costs = np.array([len(ext) for _, ext in blocks], dtype=np.float64)
                    for res in runner.run("triples", blocks, costs, pair_rate, pair_off):
                        self._merge(res, 3, pool, funnel)
                    timings["order3"] = time.perf_counter() - t
        finally:
            runner.close()
        t = time.perf_counter()
        self._select(pool, funnel)
        timings["select"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        self.timings_ = timings
        return self

    def _merge(self, res: dict[str, Any], order: int, pool: TopKPool, funnel: dict[str, Any]) -> None:
        """Reduce one map result into the fit: tallies and the block's top-K pool."""
        key = str(order)
        funnel["candidates"][key] = funnel["candidates"].get(key, 0) + res["candidates"]
        funnel["supported"][key] = funnel["supported"].get(key, 0) + res["supported"]
        for t, v in zip(self.task_names_, res["scored"].tolist()):
            funnel["scored_per_task"][t] += v
        self.person_combos_ += res["person_combos"]
        p = res["pool"]
        if p:
            pool.add(p["score"], p["id"], {k: v for k, v in p.items() if k not in ("score", "id")})

    def _pairs(self, runner: _Runner, shared: _Shared, atom_rate: np.ndarray, pool: TopKPool,
               funnel: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Order 2 over every pair visible to at least one task; returns the parent rates and pair signals."""
        nb, elig = shared.nb, shared.elig
        blocks = []
        for a in range(nb.size - 1):  # a loop over prefix fields
            ext = np.arange(a + 1, nb.size)
            ext = ext[(elig[:, a, None] & elig[:, ext]).any(axis=0)]
            if ext.size:
                blocks.append((a, ext))
        costs = np.array([len(ext) for _, ext in blocks], dtype=np.float64)
        results = runner.run("pairs", blocks, costs, atom_rate)
        pair_off = np.full((nb.size, nb.size), -1, dtype=np.int64)
        pair_signal = np.full((shared.p0.size, nb.size, nb.size), -np.inf, dtype=np.float32)
        rate_blocks = sorted((blk for r in results for blk in r["pair_rates"]), key=lambda x: x[0])
        base = 0
        for a, ext, offsets, rate in rate_blocks:  # a loop over prefix fields
            pair_off[a, ext] = base + offsets[:-1]
            base += rate.shape[0]
        pair_rate = (np.concatenate([blk[3] for blk in rate_blocks]) if rate_blocks
                     else np.zeros((0, shared.p0.size), dtype=np.float32))
        for r in results:
            for a, ext, best in r["pair_best"]:
                pair_signal[:, a, ext] = best.T
            self._merge(r, 2, pool, funnel)
        return pair_rate, pair_off, pair_signal

    def _plan_triples(self, shared: _Shared, field_signal: np.ndarray, pair_signal: np.ndarray,
                      funnel: dict[str, Any]) -> list[tuple[tuple[int, int], np.ndarray]]:
        """Blocks (prefix pair, extension fields) covering the order-3 plan, each triple exactly once.

        Plan = every top pair extended by every other field + all triples of the top fields; only triples visible
        to at least one task. A triple reachable both ways is counted once, with the earliest top pair as prefix.
        """
        nb, elig = shared.nb, shared.elig
        n_fields = nb.size
        top_pairs = _round_robin(pair_signal.reshape(shared.p0.size, -1), int(self.order3_pairs), self.min_score)
        pa, pb = np.divmod(top_pairs, n_fields)
        triples, owners = [], []
        if top_pairs.size:
            third = np.tile(np.arange(n_fields), top_pairs.size)
            rank = np.repeat(np.arange(top_pairs.size), n_fields)
            t = np.stack([pa[rank], pb[rank], third], axis=1)
            keep = (third != pa[rank]) & (third != pb[rank])
            triples.append(np.sort(t[keep], axis=1))
            owners.append(rank[keep])
        top_fields = np.sort(_round_robin(field_signal, int(self.order3_fields), self.min_score))
        if top_fields.size >= 3:
            t = np.array(list(itertools.combinations(top_fields.tolist(), 3)), dtype=np.int64)
            triples.append(t)
            owners.append(np.full(t.shape[0], np.iinfo(np.int64).max))  # prefix = its first two fields
        self.order3_plan_ = np.zeros((0, 3), dtype=np.int32)
        funnel["order3_plan"] = {"top_pairs": int(top_pairs.size), "top_fields": int(top_fields.size), "triples": 0}
        if not triples:
            return []
        t, owner = np.concatenate(triples), np.concatenate(owners)
        visible = (elig[:, t[:, 0]] & elig[:, t[:, 1]] & elig[:, t[:, 2]]).any(axis=0)
        t, owner = t[visible], owner[visible]
        key = (t[:, 0] * n_fields + t[:, 1]) * n_fields + t[:, 2]
        order = np.lexsort((owner, key))
        t, owner, key = t[order], owner[order], key[order]
        first = np.concatenate([[True], key[1:] != key[:-1]])
        t, owner = t[first], owner[first]
        self.order3_plan_ = t.astype(np.int32)  # (triples, 3) field indices, for inspection and the bench
        funnel["order3_plan"]["triples"] = int(t.shape[0])
        blocks: list[tuple[tuple[int, int], np.ndarray]] = []
        by_pair = owner < top_pairs.size
        if by_pair.any():  # prefix = the chosen pair, extension = the third field
            tp, op = t[by_pair], owner[by_pair]
            srt = np.argsort(op, kind="stable")
            tp, op = tp[srt], op[srt]
            a, b = pa[op], pb[op]
            ext = np.where((tp[:, 0] != a) & (tp[:, 0] != b), tp[:, 0],
                           np.where((tp[:, 1] != a) & (tp[:, 1] != b), tp[:, 1], tp[:, 2]))
            bounds = np.flatnonzero(np.diff(np.concatenate([[-1], op, [top_pairs.size]])))
            for s, e in zip(bounds[:-1], bounds[1:]):  # a loop over chosen pairs
                blocks.append(((int(a[s]), int(b[s])), np.sort(ext[s:e])))
        rest = t[~by_pair]
        if rest.size:  # prefix = the first two fields
            pk = rest[:, 0] * n_fields + rest[:, 1]
            bounds = np.flatnonzero(np.diff(np.concatenate([[-1], pk, [-1]])))
            for s, e in zip(bounds[:-1], bounds[1:]):  # a loop over prefix pairs
                blocks.append(((int(rest[s, 0]), int(rest[s, 1])), rest[s:e, 2].copy()))
        return blocks

    def _select(self, pool: TopKPool, funnel: dict[str, Any]) -> None:
        """Union of the per-task top K in a stable column order; the crosses_ frame and per-task columns."""
        arrays, ranks = pool.result()
        tasks = self.task_names_
        union = np.unique(np.concatenate(ranks)) if any(r.size for r in ranks) else np.zeros(0, dtype=np.int64)
        if union.size:  # by order, then field names (indices follow name order), then bins
            f, b = arrays["fields"][union], arrays["bins"][union]
            union = union[np.lexsort([b[:, 2], b[:, 1], b[:, 0], f[:, 2], f[:, 1], f[:, 0], arrays["order"][union]])]
        col = np.full(arrays["id"].shape[0] if arrays else 0, -1, dtype=np.int64)
        col[union] = np.arange(union.size)
        self.selected_ = {t: col[r] for t, r in zip(tasks, ranks)}
        T = len(tasks)
        if union.size:
            stats = {k: arrays[k][union] for k in ("fields", "bins", "order", "id", "support", "score", "n", "k")}
        else:
            stats = {"fields": np.zeros((0, 3), np.int32), "bins": np.zeros((0, 3), np.int16),
                     "order": np.zeros(0, np.int8), "id": np.zeros(0, np.uint64), "support": np.zeros(0, np.int64),
                     "score": np.zeros((0, T)), "n": np.zeros((0, T), np.int32), "k": np.zeros((0, T), np.int32)}
        self._set_crosses(stats)
        funnel["selected_per_task"] = {t: int(r.size) for t, r in zip(tasks, ranks)}
        funnel["union"] = int(union.size)
        self.funnel_ = funnel

    def _set_crosses(self, st: dict[str, np.ndarray]) -> None:
        """Fitted state shared by fit and load: cross tables, rule texts, per-task columns, the crosses_ frame."""
        fields, bins, order = st["fields"].astype(np.int32), st["bins"].astype(np.int16), st["order"].astype(np.int8)
        self.cross_fields_, self.cross_bins_, self.cross_order_ = fields, bins, order
        self.cross_ids_ = st["id"].astype(np.uint64)
        self._stats = st
        texts = [fb.texts for fb in self.fields_]
        rules = [" & ".join(texts[f][b] for f, b in zip(fr[:o], br[:o]))  # one string per selected column
                 for fr, br, o in zip(fields.tolist(), bins.tolist(), order.tolist())]
        self.rules_ = np.array(rules, dtype=object)
        ok = np.ones((len(self.task_names_), len(rules)), dtype=bool)
        for j in range(3):
            f = fields[:, j]
            ok &= np.where(f >= 0, self.eligible_[:, np.maximum(f, 0)], True)
        self.task_columns_ = {t: np.flatnonzero(ok[i]) for i, t in enumerate(self.task_names_)}
        self.shared_columns_ = np.flatnonzero(ok.all(axis=0))
        m, p0 = float(self.prior_strength), self.base_rate_
        frame: dict[str, Any] = {
            "column": np.arange(len(rules), dtype=np.int64), "id": self.cross_ids_, "order": order,
            "rule": pl.Series(rules, dtype=pl.String), "support": st["support"].astype(np.int64),
        }
        for i, t in enumerate(self.task_names_):
            n, k = st["n"][:, i].astype(np.int64), st["k"][:, i].astype(np.int64)
            frame[f"score_{t}"] = pl.Series(np.where(ok[i], st["score"][:, i], np.nan)).fill_nan(None)
            frame[f"labelled_{t}"] = n
            frame[f"positive_{t}"] = k
            frame[f"rate_{t}"] = smoothed_rate(k, n, p0[i], m)
        self.crosses_ = pl.DataFrame(frame)

    # ------------------------------------------------------------------------------------------- transform
    def transform(self, X: pl.DataFrame) -> sp.csr_matrix:
        """Binary people x selected-crosses matrix (float32 ones); absent columns and unseen values fall into the
        missing bin, so scoring never fails on a frame that lacks a field."""
        check_is_fitted(self, "cross_ids_")
        codes = encode(self.fields_, X)
        n, n_cols = X.height, self.cross_ids_.size
        nb = np.array([fb.n_bins for fb in self.fields_], dtype=np.int64)
        rows_all, cols_all = [], []
        for o in (1, 2, 3):
            sel = np.flatnonzero(self.cross_order_ == o)
            if not sel.size:
                continue
            combos, combo_of = np.unique(self.cross_fields_[sel, :o], axis=0, return_inverse=True)
            combo_of = combo_of.ravel()
            strides = np.ones((combos.shape[0], o), dtype=np.int64)
            for j in range(o - 2, -1, -1):
                strides[:, j] = strides[:, j + 1] * nb[combos[:, j + 1]]
            offs = np.concatenate([[0], np.cumsum(strides[:, 0] * nb[combos[:, 0]])])
            table = np.full(int(offs[-1]), -1, dtype=np.int64)  # (combination, cell) -> column
            cell = (self.cross_bins_[sel, :o].astype(np.int64) * strides[combo_of]).sum(axis=1)
            table[offs[combo_of] + cell] = sel
            step = max(1, 8_000_000 // combos.shape[0])  # ~8M cells of temporaries per chunk of people
            for start in range(0, n, step):
                sl = slice(start, min(start + step, n))
                key = np.repeat(offs[:-1, None], sl.stop - sl.start, axis=1)
                for j in range(o):
                    key += codes[combos[:, j], sl].astype(np.int64) * strides[:, j, None]
                col = table[key].T  # (people, combinations)
                r, c = np.nonzero(col >= 0)
                rows_all.append(r + start)
                cols_all.append(col[r, c])
        rows = np.concatenate(rows_all) if rows_all else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(cols_all) if cols_all else np.zeros(0, dtype=np.int64)
        out = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n_cols))
        out.sort_indices()
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The rule texts of the columns, e.g. 'age 55-60 & SBP 140-160 mmHg'."""
        check_is_fitted(self, "rules_")
        return self.rules_.copy()

    # ------------------------------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        """Write the fitted transform as JSON (no pickle: safe to load, readable, diffable)."""
        check_is_fitted(self, "cross_ids_")
        params = self.get_params()
        params["catalog"] = {n: s.to_dict() for n, s in self.catalog_.items()}
        params["tasks"] = list(self.task_names_)
        if params["defining"] is not None:
            params["defining"] = {k: list(v) for k, v in params["defining"].items()}
        st = self._stats
        score = np.where(np.isfinite(st["score"]), st["score"], np.nan)
        doc = {
            "format": FORMAT,
            "params": params,
            "fields": [fb.to_dict() for fb in self.fields_],
            "eligible": self.eligible_.astype(int).tolist(),
            "base_rate": self.base_rate_.tolist(),
            "crosses": {
                "fields": self.cross_fields_.tolist(), "bins": self.cross_bins_.tolist(),
                "order": self.cross_order_.tolist(), "id": [f"{int(i):016x}" for i in self.cross_ids_],
                "support": st["support"].tolist(), "n": st["n"].tolist(), "k": st["k"].tolist(),
                "score": [[None if math.isnan(v) else v for v in row] for row in score.tolist()],
            },
            "selected": {t: v.tolist() for t, v in self.selected_.items()},
            "funnel": self.funnel_,
        }
        Path(path).write_text(json.dumps(doc), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CrossFeatures:
        """Read a transform written by :meth:`save`; its `transform` output is identical."""
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        est = cls(**doc["params"])
        est.catalog_ = load_catalog(doc["params"]["catalog"])
        est.task_names_ = tuple(doc["params"]["tasks"])
        est.fields_ = [FieldBins.from_dict(d) for d in doc["fields"]]
        est.feature_names_in_ = np.array([fb.name for fb in est.fields_], dtype=object)
        est.n_features_in_ = len(est.fields_)
        T = len(est.task_names_)
        est.eligible_ = np.array(doc["eligible"], dtype=bool).reshape(T, len(est.fields_))
        est.base_rate_ = np.array(doc["base_rate"], dtype=np.float64)
        c = doc["crosses"]
        rows = len(c["order"])
        est._set_crosses({
            "fields": np.array(c["fields"], dtype=np.int32).reshape(rows, 3),
            "bins": np.array(c["bins"], dtype=np.int16).reshape(rows, 3),
            "order": np.array(c["order"], dtype=np.int8),
            "id": np.array([int(i, 16) for i in c["id"]], dtype=np.uint64),
            "support": np.array(c["support"], dtype=np.int64),
            "n": np.array(c["n"], dtype=np.int32).reshape(rows, T),
            "k": np.array(c["k"], dtype=np.int32).reshape(rows, T),
            "score": np.array([[-np.inf if v is None else v for v in r] for r in c["score"]],
                              dtype=np.float64).reshape(rows, T),
        })
        est.selected_ = {t: np.array(v, dtype=np.int64) for t, v in doc["selected"].items()}
        est.funnel_ = doc["funnel"]
        return est


def _round_robin(signal: np.ndarray, k: int, min_score: float) -> np.ndarray:
    """Up to `k` distinct items (columns of `signal`, tasks x items) taken rank by rank across tasks.

    Taking every task's r-th best before any task's (r+1)-th keeps a task with weak signal from being crowded out
    by one with strong signal (blood-pressure fields would otherwise fill the whole order-3 plan).
    """
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    ranked = []
    for t in range(signal.shape[0]):  # a loop over tasks
        s = signal[t]
        valid = np.flatnonzero(np.isfinite(s) & (s > min_score))
        ranked.append(valid[np.lexsort((valid, -s[valid]))][:k])
    width = max(r.size for r in ranked)
    if width == 0:
        return np.zeros(0, dtype=np.int64)
    grid = np.full((signal.shape[0], width), -1, dtype=np.int64)
    for t, r in enumerate(ranked):
        grid[t, : r.size] = r
    flat = grid.T.ravel()  # rank-major: every task's best, then every task's second best, ...
    flat = flat[flat >= 0]
    _, first = np.unique(flat, return_index=True)
    return flat[np.sort(first)][:k]
