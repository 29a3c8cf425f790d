"""`chronic score`: the registered model over everyone in the archive at an as-of date -> the `risk` table.

`score_archive(settings, as_of=...)` loads the `champion` model (else the `challenger`) from the MLflow registry,
builds every person's fields at `as_of`, and writes one `risk` row per person x task: probability, band, percentile
within the clinic, the three rules that raise the person's risk most, completeness of the core measures, model name
and version. A rerun for the same as-of date replaces that date's rows, in one transaction. `score_frame` is the
pure core (a fields frame and a fitted model in, the rows out, no database and no MLflow); docs/scoring.md has the
column definitions and the benchmark.

Why a scorer of its own (`RiskScorer`) rather than `features.transform` + `model.predict_proba` +
`chronic.model.explain.top_rules`: those are written for training-sized frames and take ~20 minutes per million
people with rules (docs/scoring.md, bench/score.py). The scorer compiles the fitted transform and the SMT-GBDT
once and gives the same numbers (the tests check it against all three):

* bin codes per block of people (`chronic.features.bins.encode`); an atom (field, bin) column is a table lookup, a
  higher-order cross is an AND of its atoms' match vectors, evaluated cross by cross over the block (contiguous
  byte ANDs, no per-person work);
* the boosters are re-indexed once to the few hundred columns their trees split on, so every booster reads one
  compact CSR of those columns instead of a copy of the ~3,000-column matrix (XGBoost treats an absent entry as
  missing, so dropping columns no tree reads changes nothing; re-indexing keeps every tree, threshold and leaf);
* the fusion's linear term is one sparse product for all tasks;
* rules: each person's matched tree columns expand to the (tree, column) pairs of the trees splitting on them;
  the shared stage's path attribution is a per-(tree, leaf, column) table looked up at the person's leaf, the
  task stages' TreeSHAP is memoised per tree on the person's pattern of that tree's split columns (computed by
  XGBoost once per new pattern); both sum per matched column in tree order. Only positive credits compete for
  the top three, one segment-maximum pass per rank over all tasks. Ties go to the lower column (atoms before
  crosses).

Everything is vectorised over people; the loops are over blocks of people (on one thread per core), tasks,
boosters, trees and crosses. Memory is bounded by the blocks (`BLOCK` people each) plus the outputs (people x
tasks).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
import xgboost as xgb

from chronic.care.bands import BANDS, DEFAULT_HORIZON_YEARS, band
from chronic.features.bins import encode

__all__ = [
    "BLOCK", "CORE_MEASURES", "RISK_COLUMNS", "RiskScorer", "ScoreSummary", "completeness", "score_archive",
    "score_frame", "write_risk",
]

log = logging.getLogger(__name__)

#: Core measures of data completeness: measure -> the fields (latest value within the look-back, from the person
#: snapshot) any of which counts as a reading. Completeness is the share of these with a reading. The set is the
#: measurements that define or drive the six tasks: blood pressure (hypertension, CHD, CKD), adiposity (all),
#: glycaemia (t2d), lipids (dyslipidemia, CHD), uric acid (hyperuricemia), creatinine (CKD).
CORE_MEASURES: dict[str, tuple[str, ...]] = {
    "sbp": ("sbp",),
    "dbp": ("dbp",),
    "bmi": ("bmi", "weight_kg"),
    "glycaemia": ("fpg_mmol", "hba1c_pct"),
    "lipids": ("tc_mmol", "ldl_mmol"),
    "uric_acid": ("uric_acid_umol",),
    "creatinine": ("creatinine_umol",),
}

#: Columns of the `risk` table (sql/schema.sql), in order: what `score_frame` returns.
RISK_COLUMNS: tuple[str, ...] = (
    "person_id", "clinic_id", "task", "as_of", "probability", "band", "percentile", "rule_1", "rule_2", "rule_3",
    "completeness", "model_name", "model_version", "scored_at",
)

#: People per block inside a chunk: the unit of the memory-heavy steps (cross matching, the slot matrix of the
#: rules, TreeSHAP output). ~0.5 GB of temporaries at ~3,000 model columns.
BLOCK = 32_768
#: People per sub-block of the rules: their per-pair temporaries (~1,000 matched (tree, column) pairs a person)
#: stay in cache (1,024 measured 1.3x faster than 4,096 and 2x faster than 8,192).
RULE_BLOCK = 1_024
#: Crosses evaluated together (a BLOCK x CROSS_BATCH byte matrix).
CROSS_BATCH = 512
#: Most blocks scored at the same time (threads); more would multiply the block temporaries for little gain.
MAX_WORKERS = 4
#: Rules kept per person and task (the table has rule_1..rule_3).
N_RULES = 3
#: What one block of people is encoded as: bin codes (fields x people), the crosses' own codes or None, and the
#: threshold counts (numeric fields x people) or None.
Codes = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]

Progress = Callable[[int, int], None]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the same overflow-free logistic as SMTGBDTClassifier


def _reindex_booster(booster: xgb.Booster, new_index: np.ndarray, width: int, n_jobs: int | None) -> xgb.Booster:
    """The same trees with split feature j renamed `new_index[j]` over `width` features (predictions unchanged)."""
    raw = json.loads(booster.save_raw("json"))
    learner = raw["learner"]
    for tree in learner["gradient_booster"]["model"]["trees"]:
        left = np.asarray(tree["left_children"])
        split = np.asarray(tree["split_indices"], dtype=np.int64)
        tree["split_indices"] = np.where(left == -1, 0, new_index[split]).tolist()
        tree["tree_param"]["num_feature"] = str(width)
    learner["learner_model_param"]["num_feature"] = str(width)
    learner["feature_names"], learner["feature_types"] = [], []
    out = xgb.Booster()
    out.load_model(bytearray(json.dumps(raw).encode()))
    if n_jobs:
        out.set_param({"nthread": n_jobs})
    return out


def _split_features(booster: xgb.Booster) -> np.ndarray:
    """Feature indices any tree of the booster splits on."""
    used: set[int] = set()
    for tree in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]:
        left = np.asarray(tree["left_children"])
        used.update(np.asarray(tree["split_indices"])[left != -1].tolist())
    return np.array(sorted(used), dtype=np.int64)


def _top_per_row(row: np.ndarray, value: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The k largest positive values of each row of a sparse array given by entries (`row` ascending, `value`
    positive float32).

    Returns, per rank, (rows that have an entry of that rank, the position of that entry). Ties go to the first
    position (entries in column order: the lower column), as a row-wise argmax does. A positive float32's bits
    order like its value, so each entry is one uint64 key (value bits, then the complement of its position) and
    each rank is a single pass of segment maxima (`np.maximum.reduceat`) over the keys: the work is the entries,
    not rows x columns, and there is no separate argmax.
    """
    out: list[tuple[np.ndarray, np.ndarray]] = []
    if not row.size:
        return out
    if row.size >= 1 << 32:
        raise ValueError("too many entries for 32-bit positions; score fewer people at a time")
    low = np.uint64(0xFFFFFFFF)
    key = value.astype(np.float32).view(np.uint32).astype(np.uint64) << np.uint64(32)
    key |= low - np.arange(row.size, dtype=np.uint64)  # the lower position wins a tie
    first = np.flatnonzero(np.concatenate([[True], row[1:] != row[:-1]]))  # each row's first entry
    rows = row[first]
    for _ in range(k):
        top = np.maximum.reduceat(key, first)
        ok = top != 0  # 0: the row's entries are all taken
        if not ok.any():
            break
        best = (low - (top[ok] & low)).astype(np.int64)
        out.append((rows[ok], best))
        key[best] = 0
    return out


def _tree_split_columns(booster: xgb.Booster) -> list[np.ndarray]:
    """Per tree, the distinct columns it splits on (ascending)."""
    out = []
    for tree in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]:
        left = np.asarray(tree["left_children"])
        out.append(np.unique(np.asarray(tree["split_indices"])[left != -1]).astype(np.int64))
    return out


class _ColumnTrees:
    """Column -> the (tree, bit) pairs of trees that split on it: the inverse of the trees' split columns.

    Pair p says tree `tree[p]` splits on the column, as its `bit[p]`-th split column (its columns ascending).
    The pairs are stored column by column (CSR over the columns, `ptr`) and by tree within a column, so expanding a
    person's matched columns gives exactly the (person, tree, bit) cells a tree input pattern or a credit needs -
    the work is the number of matched pairs, not people x every tree's columns - and a column's pairs come in
    tree order, the order in which the credits of the earlier, dense formulation were summed (bit-identical sums).
    """

    def __init__(self, tree_cols: list[np.ndarray], width: int) -> None:
        sizes = np.array([c.size for c in tree_cols], dtype=np.int64)
        cols = np.concatenate(tree_cols).astype(np.int64) if tree_cols else np.zeros(0, dtype=np.int64)
        tree = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
        bit = np.arange(cols.size, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        order = np.lexsort((tree, cols))  # by column, then tree
        self.n_trees = int(sizes.size)
        self.sizes = sizes
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=width))]).astype(np.int64)
        self.tree: np.ndarray = tree[order]
        self.bit: np.ndarray = bit[order]
        self._incidence = sp.csr_matrix((np.ones(cols.size, dtype=np.int8), np.arange(cols.size), self.ptr),
                                        shape=(width, cols.size))  # column -> its pairs

    def expand(self, cols: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For entries with columns `cols` of people `person`: each entry's pairs (CSR over the entries: row
        pointers, pair indices - a column's pairs in tree order) and the person of each pair.

        The expansion is a row selection of the column -> pairs incidence matrix (one pass in SciPy's C code).
        """
        sel = self._incidence[cols]
        indptr, pair = sel.indptr, sel.indices
        return indptr, pair, np.repeat(person, np.diff(indptr))


class _StageShap:
    """TreeSHAP of the single-output task stages, tree by tree, memoised on each tree's input pattern.

    The model's columns are binary (1 or missing), so a tree's TreeSHAP values depend on a person only through
    which of the tree's own split columns (at most 2^depth - 1) the person has: the pattern, a bit per column.
    XGBoost computes the values of a (tree, pattern) the first time it is seen (a one-tree slice's
    `pred_contribs` over one row per new pattern) into a flat store; every later person is a table lookup. SHAP
    values add up over trees, so a stage's values are the sums (to float32 rounding: XGBoost accumulates in
    float32).

    The trees of all stages are numbered together (stage by stage), so a block is handled in one pass over the
    matched (person, tree, column) pairs (`_ColumnTrees.expand`) whatever the number of tasks: the patterns are one
    weighted bincount (bit weights 2^j summed per person x tree), the lookups one gather per pair, and the credits
    one bincount per matched column x task. Only the columns a person has are credited (as in
    chronic.model.explain.top_rules), so pairs of columns the person lacks are never formed.
    """

    MAX_DIRECT_BITS = 20  # a tree with more split columns keys its table by a dict instead of a direct array
    EXACT_BITS = 52  # patterns summed as float64 bit weights are exact up to here; wider ones in two halves

    def __init__(self, boosters: list[xgb.Booster | None], width: int) -> None:
        self.width = width
        self.n_tasks = len(boosters)
        self._where: list[tuple[xgb.Booster, int]] = []  # global tree -> (its stage's booster, tree in it)
        self.tree_cols: list[np.ndarray] = []
        stage: list[int] = []
        for t, b in enumerate(boosters):
            if b is not None:
                cols = _tree_split_columns(b)
                self._where += [(b, k) for k in range(len(cols))]
                self.tree_cols += cols
                stage += [t] * len(cols)
        self.pairs = _ColumnTrees(self.tree_cols, width)
        self._task = np.asarray(stage, dtype=np.int64)[self.pairs.tree]  # pair -> its stage's task
        sizes = self.pairs.sizes
        self._direct = sizes <= self.MAX_DIRECT_BITS
        self._all_direct = bool(self._direct.all())
        span = np.where(self._direct, np.int64(1) << np.minimum(sizes, self.MAX_DIRECT_BITS), 0)
        self._base = np.concatenate([[0], np.cumsum(span)[:-1]]).astype(np.int64)  # tree -> its block of `_index`
        # (tree, pattern) -> offset of its SHAP values (one per tree column) in `_store`; -1: not computed yet
        self._index = np.full(int(span.sum()), -1, dtype=np.int64)
        self._memo: dict[int, dict[int, int]] = {int(k): {} for k in np.flatnonzero(~self._direct)}
        self._store = np.zeros(1024)
        self._size = 0
        self._slices: dict[int, xgb.Booster] = {}
        self._lock = threading.Lock()
        bit = self.pairs.bit
        if int(sizes.max(initial=0)) > self.EXACT_BITS:  # 2^bit weights in two halves, each exact in float64
            wide = bit >= 32
            self._weights = np.ldexp(1.0, np.where(wide, 0, bit)) * ~wide
            self._weights_high: np.ndarray | None = np.ldexp(1.0, np.where(wide, bit - 32, 0)) * wide
        else:
            self._weights, self._weights_high = np.ldexp(1.0, bit), None

    def _compute(self, k: int, patterns: np.ndarray) -> np.ndarray:
        """SHAP values (patterns x tree columns) of tree `k` for the given patterns.

        One thread each: these DMatrix / predict calls are a few rows, where XGBoost's thread start-up (~20 ms a
        call on a loaded machine) would cost far more than the work.
        """
        cols = self.tree_cols[k]
        have = ((patterns[:, None] >> np.arange(cols.size, dtype=np.int64)[None, :]) & 1) != 0
        r, j = np.nonzero(have)
        X = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, cols[j])), shape=(patterns.size, self.width))
        one = self._slices.get(k)
        if one is None:
            booster, i = self._where[k]
            one = self._slices[k] = booster[i:i + 1]  # one tree (pred_contribs takes no iteration range)
            one.set_param({"nthread": 1})
        phi = one.predict(xgb.DMatrix(X, nthread=1), pred_contribs=True)
        return np.asarray(phi, dtype=np.float64)[:, cols]

    def _append(self, values: np.ndarray) -> np.ndarray:
        """Store rows of SHAP values (the lock held); their offsets. The store only grows: a reader's older
        snapshot of it still holds every offset it was given."""
        need = self._size + values.size
        if need > self._store.size:
            grown = np.zeros(max(need, 2 * self._store.size))
            grown[:self._size] = self._store[:self._size]
            self._store = grown
        self._store[self._size:need] = values.ravel()
        offsets = self._size + np.arange(values.shape[0], dtype=np.int64) * values.shape[1]
        self._size = need
        return offsets

    def _offsets(self, pattern: np.ndarray) -> np.ndarray:
        """(people, trees) patterns -> offsets of their SHAP values in the store, computing the new ones."""
        out = np.empty(pattern.shape, dtype=np.int64)
        direct = slice(None) if self._all_direct else self._direct
        key = self._base[direct][None, :] + pattern[:, direct]
        off = self._index[key]
        new = off < 0
        if new.any():
            with self._lock:  # blocks may run in threads; the tables only grow
                off[new] = self._index[key[new]]
                todo = np.unique(key[new][off[new] < 0])
                if todo.size:
                    # the tree of a key: the last one whose block starts at or before it (a wide tree has an
                    # empty block, so it is never that one)
                    tree = np.searchsorted(self._base, todo, side="right") - 1
                    bounds = np.concatenate([[0], np.flatnonzero(np.diff(tree)) + 1, [todo.size]])
                    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                        k = int(tree[s])  # a tree with new patterns (few once the tables are warm)
                        keys = todo[s:e]
                        self._index[keys] = self._append(self._compute(k, keys - self._base[k]))
                off[new] = self._index[key[new]]
        out[:, direct] = off
        for k, memo in self._memo.items():  # trees too wide for a direct table: a dict per distinct pattern
            keys, inv = np.unique(pattern[:, k], return_inverse=True)
            with self._lock:
                todo = np.array([p for p in keys.tolist() if p not in memo], dtype=np.int64)
                if todo.size:
                    memo.update(zip(todo.tolist(), self._append(self._compute(k, todo)).tolist(), strict=True))
                out[:, k] = np.array([memo[p] for p in keys.tolist()], dtype=np.int64)[inv.ravel()]
        return out

    def credits(self, person: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
        """(entries, tasks): each task stage's SHAP value of each matched entry (a person's column: `person`,
        `cols` per entry, people 0..n-1), summed over the stage's trees in tree order (0 where no tree of the
        stage splits on the column)."""
        p = self.pairs
        indptr, pair, who = p.expand(cols, person)
        cell = who * p.n_trees + p.tree[pair]  # person x tree
        pattern = np.bincount(cell, weights=self._weights[pair], minlength=n * p.n_trees).astype(np.int64)
        if self._weights_high is not None:
            high = np.bincount(cell, weights=self._weights_high[pair], minlength=n * p.n_trees).astype(np.int64)
            pattern |= high << 32
        offsets = self._offsets(pattern.reshape(n, p.n_trees)).ravel()
        store = self._store  # after the offsets: holds all of them
        value = store[offsets[cell] + p.bit[pair]]
        entry = np.repeat(np.arange(cols.size, dtype=np.int64), np.diff(indptr))
        # summed per entry x task in pair (= tree) order
        out = np.bincount(entry * self.n_tasks + self._task[pair], weights=value, minlength=cols.size * self.n_tasks)
        return out.reshape(cols.size, self.n_tasks)


def _kept_thresholds(th: Any, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tables to emit only the `used` threshold columns: the kept columns (threshold-block indices, by field), each
    field's first position among them, and - flat, with each field's offset - how many of a field's first c cuts
    are kept, for c = 0..its cuts."""
    sizes = np.array([len(e) for e in th.edges], dtype=np.int64)
    kept = np.flatnonzero(used)
    kept_per_field = np.bincount(th.column_fields[kept], minlength=sizes.size)
    kept_off = np.concatenate([[0], np.cumsum(kept_per_field)[:-1]]).astype(np.int64)
    upto = [np.concatenate([[0], np.cumsum(used[o:o + k])]) for o, k in zip(th.offsets, sizes)]  # per field
    uoff = np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype(np.int64)
    return kept, kept_off, np.concatenate(upto).astype(np.int64), uoff


class RiskScorer:
    """A fitted `RiskFeatures` + `SMTGBDTClassifier` compiled for scoring many people.

    `score(frame)` gives the probabilities (people x tasks, equal to ``model.predict_proba(features.transform(frame))``)
    and the top rules (people x tasks x 3 column indices, -1 = none; the columns and contributions
    ``chronic.model.explain.top_rules`` gives, ties broken towards the lower column). `matrix(frame)` is the model
    matrix itself (equal to ``features.transform(frame)``; for checks).
    """

    def __init__(self, features: Any, model: Any, *, n_jobs: int | None = None) -> None:
        from chronic.model.explain import _path_credits

        cores = n_jobs or os.cpu_count() or 1
        self.workers = max(1, min(cores, MAX_WORKERS))  # blocks scored at the same time
        self.n_jobs = max(1, cores // self.workers)  # XGBoost threads per block
        n_jobs = self.n_jobs
        self.task_names: tuple[str, ...] = tuple(model.task_names_)
        self.rule_names: np.ndarray = features.get_feature_names_out()
        T = len(self.task_names)
        atoms = features.atoms_
        if np.any(atoms.cross_order_ != 1):
            raise ValueError("the atom block of the transform holds crosses of order > 1")
        self.fields = list(atoms.fields_)
        n_bins = np.array([fb.n_bins for fb in self.fields], dtype=np.int64)
        self._off = np.concatenate([[0], np.cumsum(n_bins)[:-1]]).astype(np.int32)
        self.n_atoms = len(atoms.rules_)
        crosses, higher = features.crosses_, np.asarray(features.higher_, dtype=np.int64)
        n_higher = len(higher) if crosses is not None else 0
        thresholds = getattr(features, "thresholds_", None)
        self._thresholds = thresholds if thresholds is not None and thresholds.n_columns else None
        n_thresholds = self._thresholds.n_columns if self._thresholds is not None else 0
        self.n_cols = self.n_atoms + n_higher + n_thresholds
        if self.n_cols != model.n_features_in_ or len(self.rule_names) != self.n_cols:
            raise ValueError(f"the transform gives {self.n_cols} columns, the model expects {model.n_features_in_}")
        self.pad = self.n_cols  # the "no column" slot; every per-column table has a zero entry there
        self._atom_col = np.full(int(n_bins.sum()), self.pad, dtype=np.int32)
        self._atom_col[self._off[atoms.cross_fields_[:, 0]] + atoms.cross_bins_[:, 0]] = np.arange(self.n_atoms)

        # higher-order crosses: each an AND of (field, bin) atoms of the cross transform's own fields
        self._cross_fields = None
        self._n_higher = n_higher
        if n_higher:
            same = [fb.to_dict() for fb in crosses.fields_] == [fb.to_dict() for fb in self.fields]
            self._cross_fields = None if same else list(crosses.fields_)
            cf = crosses.cross_fields_[higher, :3].astype(np.int64)
            cb = crosses.cross_bins_[higher, :3].astype(np.int64)
            cnb = n_bins if same else np.array([fb.n_bins for fb in crosses.fields_], dtype=np.int64)
            coff = np.concatenate([[0], np.cumsum(cnb)[:-1]])
            present = cf >= 0
            keys = np.where(present, coff[np.maximum(cf, 0)] + cb, -1)
            ukeys, inv = np.unique(keys[present], return_inverse=True)
            self._key_field = np.zeros(ukeys.size, dtype=np.int64)
            self._key_bin = np.zeros(ukeys.size, dtype=np.uint8)
            self._key_field[inv] = cf[present]
            self._key_bin[inv] = cb[present]
            self._cross_keys = np.full(keys.shape, -1, dtype=np.int64)
            self._cross_keys[present] = inv

        # the fusion: linear coefficients per column (margin) and the linear credit of a matched column (rules)
        fusion = list(model.fusion_ or [None] * T)
        self._fusion = fusion
        self._coef = np.zeros((self.n_cols, T))
        self._rule_linear = [np.zeros(self.n_cols + 1) for _ in range(T)]
        for i, (task, f) in enumerate(zip(self.task_names, fusion, strict=True)):
            if f is not None:
                cols = np.asarray(model.task_columns_[task], dtype=np.int64)
                self._coef[cols, i] = np.asarray(f["coef"], dtype=np.float64)
                self._rule_linear[i][cols] = np.asarray(f["coef"], dtype=np.float64) * f["w_linear"]

        self._rule_linear32 = [v.astype(np.float32) for v in self._rule_linear]

        # boosters, re-indexed to G: the columns any tree splits on, in column order
        shared_cols = np.asarray(model.shared_columns_, dtype=np.int64)
        stage_cols = [np.asarray(model.task_columns_[t], dtype=np.int64) for t in self.task_names]
        used = []
        if model.shared_booster_ is not None:
            used.append(shared_cols[_split_features(model.shared_booster_)])
        for b, cols in zip(model.task_boosters_, stage_cols, strict=True):
            if b is not None:
                used.append(cols[_split_features(b)])
        self.tree_columns = np.unique(np.concatenate(used)) if used else np.zeros(0, dtype=np.int64)
        self._width = max(1, self.tree_columns.size)  # XGBoost wants at least one feature
        self._gpos = np.full(self.n_cols + 1, -1, dtype=np.int32)  # column -> position in G (pad: -1)
        self._gpos[self.tree_columns] = np.arange(self.tree_columns.size)
        self._thr_tables = None
        if self._thresholds is not None:  # score only the thresholds a tree splits on or the fusion weighs
            first = self.n_atoms + n_higher
            used = np.zeros(n_thresholds, dtype=bool)
            used[self.tree_columns[self.tree_columns >= first] - first] = True
            used |= np.any(self._coef[first:] != 0, axis=1)
            self._thr_tables = _kept_thresholds(self._thresholds, used)

        def new_index(cols: np.ndarray) -> np.ndarray:
            return np.maximum(self._gpos[cols], 0)

        self._shared = None
        self._shared_base = None
        if model.shared_booster_ is not None:
            self._shared = _reindex_booster(model.shared_booster_, new_index(shared_cols), self._width, n_jobs)
            self._shared_base = np.array([float(v) for v in model.shared_booster_.attr("base_margin").split(",")])
            self._set_paths(_path_credits(self._shared, self._width, T), T)
        self._stages = [None if b is None else _reindex_booster(b, new_index(cols), self._width, n_jobs)
                        for b, cols in zip(model.task_boosters_, stage_cols, strict=True)]
        self._shap = _StageShap(self._stages, self._width) if any(b is not None for b in self._stages) else None

    def _set_paths(self, pc: Any, T: int) -> None:
        """The shared stage's path credits as one table: (tree, node, tree column) -> credit per task.

        `pc.credits[t][node, column]` is the credit of a split column along the path from the root to `node` (for
        a leaf: the person's path). A person's matched column takes, from each shared tree splitting on it, the
        entry of the leaf the person reaches (0 if the column is not on that path). A column the person has is
        never credited by an edge only people without it take (the missing-value branch of a split whose
        present branch is the other child) - a person with the column does not reach such a leaf - so looking
        the credits up from the matched columns keeps exactly what the explanation keeps.

        Layout: tree k's nodes x its split columns, row-major from `base[k]`, so the credit of pair p (tree,
        bit) at leaf `l` is ``table[path_a[p] + l * path_b[p]]`` (one value per task).
        """
        tree_cols = _tree_split_columns(self._shared)
        self._path_pairs = _ColumnTrees(tree_cols, self._width)
        sizes = self._path_pairs.sizes
        nodes = np.diff(np.append(pc.offsets, pc.credits[0].shape[0])).astype(np.int64)
        base = np.concatenate([[0], np.cumsum(nodes * sizes)[:-1]]).astype(np.int64)
        col_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        keys = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes) * self._width + np.concatenate(tree_cols)
        table = np.zeros((int((nodes * sizes).sum()), T))
        for t, credits in enumerate(pc.credits):
            c = credits.tocoo()
            row, col = c.row.astype(np.int64), c.col.astype(np.int64)
            k = np.searchsorted(pc.offsets, row, side="right") - 1
            at = np.searchsorted(keys, k * self._width + col)
            if not np.array_equal(keys[np.minimum(at, keys.size - 1)], k * self._width + col):
                raise ValueError("a path credit of the shared stage is on a column its tree does not split on")
            table[base[k] + (row - pc.offsets[k]) * sizes[k] + at - col_start[k], t] = c.data
        tree, bit = self._path_pairs.tree, self._path_pairs.bit
        self._path_a = base[tree] + bit
        self._path_b = sizes[tree]
        self._path_table = table

    # ------------------------------------------------------------------------------------------ blocks
    def _codes(self, frame: pl.DataFrame) -> Codes:
        codes = encode(self.fields, frame)
        cross_codes = None if self._cross_fields is None else encode(self._cross_fields, frame)
        counts = None if self._thresholds is None else self._thresholds.counts(frame)
        return codes, cross_codes, counts

    def _slots(self, parts: Codes, *, full: bool) -> np.ndarray:
        """People x slots: each person's matched columns in ascending order (pads may sit between blocks).

        The first F slots are the atoms (one per field), then the matched crosses, then the thresholds reached —
        all of them if `full`, else only those a tree or the fusion reads (the others add nothing to a margin or
        a rule, and at 20 cuts per field they would be most of the slots).
        """
        codes, cross_codes, counts = parts
        slots = self._atom_and_cross_slots(codes, cross_codes)
        if counts is None:
            return slots
        if full or self._thr_tables is None:
            indptr, cols = self._thresholds.columns(counts)
        else:
            kept, kept_off, upto, uoff = self._thr_tables
            indptr, pos = self._thresholds.columns(upto[uoff[:, None] + counts], offsets=kept_off)
            cols = kept[pos]
        n = codes.shape[1]
        per = np.diff(indptr)
        extra = np.full((n, int(per.max(initial=0))), self.pad, dtype=np.int32)
        at = np.repeat(np.arange(n, dtype=np.int64) * extra.shape[1] - indptr[:-1], per) + np.arange(cols.size)
        extra.reshape(-1)[at] = self.n_atoms + self._n_higher + cols
        return np.concatenate([slots, extra], axis=1)

    def _atom_and_cross_slots(self, codes: np.ndarray, cross_codes: np.ndarray | None) -> np.ndarray:
        n = codes.shape[1]
        atoms = self._atom_col[codes + self._off[:, None]]  # (F, n); a bin seen in no training row: pad
        F = atoms.shape[0]
        if not self._n_higher:
            return np.ascontiguousarray(atoms.T)
        cc = codes if cross_codes is None else cross_codes
        match = cc[self._key_field] == self._key_bin[:, None]  # (keys, n): person has the atom
        batches = []
        count = np.zeros(n, dtype=np.int64)
        for s in range(0, self._n_higher, CROSS_BATCH):
            k = self._cross_keys[s:s + CROSS_BATCH]
            m = match[k[:, 0]] & match[k[:, 1]]
            third = np.flatnonzero(k[:, 2] >= 0)
            if third.size:
                m[third] &= match[k[third, 2]]
            count += m.sum(axis=0, dtype=np.int64)
            batches.append(m)
        width = F + int(count.max(initial=0))
        slots = np.full((n, width), self.pad, dtype=np.int32)
        slots[:, :F] = atoms.T
        flat = slots.reshape(-1)
        nxt = np.arange(n, dtype=np.int64) * width + F  # each person's next free slot
        col = self.n_atoms
        for m in batches:  # crosses in column order, so each person's crosses come out ascending
            for row in m:
                who = np.flatnonzero(row)
                at = nxt[who]
                flat[at] = col
                nxt[who] = at + 1
                col += 1
        return slots

    def _matrix(self, slots: np.ndarray) -> sp.csr_matrix:
        keep = slots != self.pad
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1), dtype=np.int64)])
        indices = slots[keep]
        return sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(slots.shape[0], self.n_cols))

    def _dmatrix(self, XU: sp.csr_matrix) -> xgb.DMatrix:
        return xgb.DMatrix(XU, nthread=self.n_jobs)

    def _block(self, parts: Codes, rules: bool) -> tuple[np.ndarray, np.ndarray | None]:
        n = parts[0].shape[1]
        T = len(self.task_names)
        slots = self._slots(parts, full=False)
        linear = np.asarray(self._matrix(slots) @ self._coef)  # (n, T): the coefficients of each person's columns
        # the tree input: each person's matched columns of G, in slot order (= column order)
        g = self._gpos[slots]
        tree_slot = np.flatnonzero(g >= 0)  # flat slot index of every tree input entry
        gcol = g.ravel()[tree_slot]
        indptr = np.concatenate([[0], np.cumsum(np.count_nonzero(g >= 0, axis=1), dtype=np.int64)])
        XU = sp.csr_matrix((np.ones(gcol.size, dtype=np.float32), gcol, indptr), shape=(n, self._width))
        del g
        # One DMatrix for every booster (building it costs more than a prediction). Each booster predicts a
        # margin from it once, so XGBoost's per-booster prediction cache never holds a stale base margin.
        d = self._dmatrix(XU)
        if self._shared is not None:
            # float32 like XGBoost's output, as SMTGBDTClassifier keeps it: the same probabilities to the bit
            d.set_base_margin(np.tile(self._shared_base, n))
            m = self._shared.predict(d, output_margin=True).reshape(n, T)
        else:
            m = np.zeros((n, T))
        for i, b in enumerate(self._stages):
            if b is not None:
                d.set_base_margin(np.ascontiguousarray(m[:, i]))
                m[:, i] = b.predict(d, output_margin=True)
        for i, f in enumerate(self._fusion):
            if f is not None:
                m[:, i] = f["bias"] + f["w_trees"] * m[:, i] + f["w_linear"] * (linear[:, i] + f["intercept"])
        proba = _sigmoid(m)
        if not rules:
            return proba, None
        return proba, self._top_rules(slots, XU, tree_slot, d)

    def _tree_credits(self, person: np.ndarray, cols: np.ndarray, leaves: np.ndarray | None, n: int
                      ) -> np.ndarray:
        """(entries, T): the trees' credit to each matched tree column (path attribution of the shared stage
        plus TreeSHAP of the task stage, times the fusion's tree weight), as chronic.model.explain computes it.

        The entries are people 0..n-1's matched columns of G (`person`, `cols`, person-major); `leaves` (n, shared
        trees) the shared stage's leaf per person and tree. Credits of columns a person does not have are not
        kept by the explanation, so the work starts from the matched entries: each expands to the (tree, bit)
        pairs of the trees splitting on its column, never to a dense people x columns array. Each stage's sum
        runs over its trees in tree order, and the task stage's sum is added to the shared stage's, as before.
        """
        T = len(self.task_names)
        E = cols.size
        credit = np.zeros((E, T))
        if self._shared is not None:
            # person x (tree, column) pairs -> the table row of the person's leaf; summed per entry as a sparse
            # (entries x table rows) product: one pass for all tasks, in pair (= tree) order
            indptr, pair, who = self._path_pairs.expand(cols, person)
            leaf = leaves.ravel()[who * leaves.shape[1] + self._path_pairs.tree[pair]]
            at = self._path_a[pair] + leaf * self._path_b[pair]
            S = sp.csr_matrix((np.ones(at.size), at, indptr), shape=(E, self._path_table.shape[0]))
            credit = S @ self._path_table
        if self._shap is not None:
            credit += self._shap.credits(person, cols, n)
        for t, f in enumerate(self._fusion):
            if f is not None:
                credit[:, t] *= f["w_trees"]
        return credit

    def _top_rules(self, slots: np.ndarray, XU: sp.csr_matrix, tree_slot: np.ndarray, d: xgb.DMatrix
                   ) -> np.ndarray:
        """(n, T, N_RULES) column indices of the matched columns raising each task's log-odds most (-1: none).

        People go in sub-blocks of `RULE_BLOCK` (the per-pair temporaries stay small and cache-warm). A rule
        must raise the log-odds, so only the entries with a positive credit compete: the tree entries (plus, for
        a fused task, the columns whose linear credit makes them positive), in float32 as before (a float32 tie
        can only join values within ~1e-7 of each other). All tasks go through one top-k pass, a row per person
        x task. Ties go to the lower column.
        """
        n, width = slots.shape
        T = len(self.task_names)
        out = np.full((n, T, N_RULES), -1, dtype=np.int32)
        leaves = None
        if self._shared is not None:
            leaves = self._shared.predict(d, pred_leaf=True).reshape(n, -1).astype(np.int64)
        for a in range(0, n, RULE_BLOCK):
            b = min(n, a + RULE_BLOCK)
            m = b - a
            e0, e1 = int(XU.indptr[a]), int(XU.indptr[b])
            person = np.repeat(np.arange(m, dtype=np.int64), np.diff(XU.indptr[a:b + 1]))
            credit = self._tree_credits(person, XU.indices[e0:e1].astype(np.int64),
                                        None if leaves is None else leaves[a:b], m)
            value = credit.T.astype(np.float32, order="C")  # (T, entries)
            col = slots[a:b].reshape(-1)[tree_slot[e0:e1] - a * width]  # the model column of each entry
            rows, values, cols = [], [], []
            for t in range(T):
                if self._fusion[t] is not None:  # linear credits on every matched column: the dense slots
                    dense = self._rule_linear32[t][slots[a:b]].reshape(-1)
                    dense[tree_slot[e0:e1] - a * width] += value[t]
                    at = np.flatnonzero(dense > 0)
                    rows.append(t * m + at // width)
                    values.append(dense[at])
                    cols.append(slots[a:b].reshape(-1)[at])
                else:
                    at = np.flatnonzero(value[t] > 0)
                    rows.append(t * m + person[at])
                    values.append(value[t, at])
                    cols.append(col[at])
            row, col_t = np.concatenate(rows), np.concatenate(cols)
            for j, (r, best) in enumerate(_top_per_row(row, np.concatenate(values), N_RULES)):
                out[a + r % m, r // m, j] = col_t[best]
        return out

    # ------------------------------------------------------------------------------------------ public
    def _score_block(self, frame: pl.DataFrame, rules: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return self._block(self._codes(frame), rules)

    def score(self, frame: pl.DataFrame, *, rules: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (people x tasks) and, if `rules`, the top rule columns (people x tasks x 3, -1 = none).

        Blocks of `BLOCK` people run on `workers` threads (NumPy, SciPy, polars and XGBoost release the GIL).
        """
        n, T = frame.height, len(self.task_names)
        proba = np.empty((n, T))
        top = np.full((n, T, N_RULES), -1, dtype=np.int32) if rules else None
        starts = range(0, n, BLOCK)

        def run(s: int) -> int:
            p, t = self._score_block(frame.slice(s, BLOCK), rules)
            proba[s:s + p.shape[0]] = p
            if top is not None:
                top[s:s + p.shape[0]] = t
            return s

        if self.workers > 1 and len(starts) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(run, starts))
        else:
            for s in starts:
                run(s)
        return proba, top

    def matrix(self, frame: pl.DataFrame) -> sp.csr_matrix:
        """The model matrix (people x columns, binary, float32): the same as ``features.transform(frame)``."""
        return self._matrix(self._slots(self._codes(frame), full=True)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the rows
def completeness(fields: pl.DataFrame) -> pl.Series:
    """Share (0-1) of `CORE_MEASURES` with a reading in the look-back, one value per row of `fields`.

    A measure counts if any of its fields is non-null (fields absent from the frame count as no reading).
    """
    have = [
        pl.any_horizontal([pl.col(f).is_not_null() for f in names if f in fields.columns] or [pl.lit(False)])
        for names in CORE_MEASURES.values()
    ]
    return fields.select(
        (pl.sum_horizontal([h.cast(pl.Int32) for h in have]) / len(CORE_MEASURES)).cast(pl.Float64)
        .alias("completeness")
    ).to_series()


def _timestamp(scored_at: datetime | None) -> datetime:
    """UTC, without a zone (the `risk.scored_at` column is a plain timestamp, the session zone is UTC)."""
    if scored_at is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if scored_at.tzinfo is not None:
        return scored_at.astimezone(UTC).replace(tzinfo=None)
    return scored_at


def score_frame(
    fields: pl.DataFrame,
    features: Any,
    model: Any,
    *,
    as_of: date,
    model_name: str,
    model_version: str,
    scored_at: datetime | None = None,
    horizon_years: float = DEFAULT_HORIZON_YEARS,
    rules: bool = True,
    chunk_size: int = 200_000,
    n_jobs: int | None = None,
    progress: Progress | None = None,
    scorer: RiskScorer | None = None,
) -> pl.DataFrame:
    """The `risk` rows of the people in `fields` (a `build_fields` frame): one per person x task.

    Args:
        fields: `person_id`, `clinic_id` and any of the catalog fields (absent fields are missing).
        features, model: the fitted `RiskFeatures` and `SMTGBDTClassifier` (the registered pyfunc's
            ``unwrap_python_model().features`` / ``.model``).
        as_of, model_name, model_version: written into every row.
        scored_at: the scoring timestamp (default: now, UTC); the only value that differs between reruns.
        horizon_years: the model's horizon, for the band cut-offs (`chronic.care.bands`).
        rules: False leaves rule_1..rule_3 null (the probability-only path).
        chunk_size: people per chunk, the unit of `progress`; a chunk is scored in blocks of `BLOCK` people on
            one thread per core, so the temporaries are bounded by the blocks, not by the chunk.
        n_jobs: XGBoost threads (default: all cores).
        progress: called with (people scored, people) after each chunk.
        scorer: a compiled `RiskScorer` of the same model (saves compiling it again).

    Returns:
        `RISK_COLUMNS`, persons in input order and tasks in model order within a person. `task` and `band` are
        `pl.Enum`, `rule_1..3` `pl.Categorical` (cast to `pl.String` for plain text). `percentile` is
        100 x (people of the same clinic and task with a probability at or below this one) / (people of the
        clinic): the clinic's riskiest person has 100; people without a clinic are ranked among themselves.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if fields.get_column("person_id").is_duplicated().any():
        raise ValueError("fields has duplicate person_id values")
    scorer = scorer or RiskScorer(features, model, n_jobs=n_jobs)
    n, T = fields.height, len(scorer.task_names)
    proba = np.empty((n, T))
    top = np.full((n, T, N_RULES), -1, dtype=np.int32)
    for s in range(0, n, chunk_size):
        p, t = scorer.score(fields.slice(s, chunk_size), rules=rules)
        proba[s:s + p.shape[0]] = p
        if t is not None:
            top[s:s + p.shape[0]] = t
        if progress is not None:
            progress(min(n, s + chunk_size), n)
    return _risk_frame(fields, scorer, proba, top, as_of=as_of, model_name=model_name, model_version=model_version,
                       scored_at=_timestamp(scored_at), horizon_years=horizon_years)


def _risk_frame(fields: pl.DataFrame, scorer: RiskScorer, proba: np.ndarray, top: np.ndarray, *, as_of: date,
                model_name: str, model_version: str, scored_at: datetime, horizon_years: float) -> pl.DataFrame:
    n, T = proba.shape
    tasks = pl.Enum(list(scorer.task_names))
    bands = pl.Enum(list(BANDS))
    # band codes per task through chronic.care.bands (the one place the cut-offs live)
    band_code = np.empty((n, T), dtype=np.uint32)
    for i, task in enumerate(scorer.task_names):
        b = band(task, pl.Series(proba[:, i]), horizon_years=horizon_years)
        band_code[:, i] = b.cast(bands).to_physical().to_numpy()
    person = pl.Series(np.repeat(np.arange(n, dtype=np.uint32), T))
    names = pl.Series(scorer.rule_names.astype(str), dtype=pl.Categorical)

    def rule(j: int) -> pl.Series:
        idx = pl.Series(top[:, :, j].ravel())
        return names.gather(pl.select(pl.when(idx >= 0).then(idx).cast(pl.UInt32)).to_series())

    frame = pl.DataFrame({
        "person_id": fields.get_column("person_id").gather(person),
        "clinic_id": fields.get_column("clinic_id").gather(person),
        "task": pl.Series(list(scorer.task_names), dtype=tasks).gather(
            pl.Series(np.tile(np.arange(T, dtype=np.uint32), n))),
        "probability": proba.ravel(),
        "band": pl.Series(list(BANDS), dtype=bands).gather(pl.Series(band_code.ravel())),
        "rule_1": rule(0), "rule_2": rule(1), "rule_3": rule(2),
        "completeness": completeness(fields).gather(person),
    })
    group = ("clinic_id", "task")
    return frame.with_columns(
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        (100.0 * pl.col("probability").rank("max").over(group) / pl.len().over(group)).cast(pl.Float64)
        .alias("percentile"),
        pl.lit(model_name, dtype=pl.String).alias("model_name"),
        pl.lit(str(model_version), dtype=pl.String).alias("model_version"),
        pl.lit(scored_at, dtype=pl.Datetime("us")).alias("scored_at"),
    ).select(RISK_COLUMNS)


# ---------------------------------------------------------------------------------------------- archive
@dataclass(frozen=True)
class ScoreSummary:
    """What `score_archive` did."""

    as_of: date
    model_name: str
    model_version: str
    alias: str  # the registry alias the model was loaded by (champion / challenger / the one asked for)
    people: int
    rows: int
    by_band: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> band -> rows
    seconds: float = 0.0
    dask_workers: int = 0  # workers of the Dask cluster it ran on (0: the single-machine path)


def write_risk(con: Any, risk: pl.DataFrame, *, as_of: date) -> int:
    """Replace the `risk` rows of `as_of` with `risk` (all of that date), in one transaction. Returns rows written."""
    from chronic.archive.db import sql

    other = risk.filter(pl.col("as_of") != as_of).height
    if other:
        raise ValueError(f"{other} rows of `risk` are not at as_of {as_of}")
    con.register("risk_new", risk.select(RISK_COLUMNS).to_arrow())
    try:
        con.execute("begin transaction")
        try:
            con.execute(sql("risk_delete"), {"as_of": as_of})
            con.execute(sql("risk_insert"))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.unregister("risk_new")
    return risk.height


def _model_run_params(settings: Any, version: str) -> dict[str, str]:
    """The parameters of the MLflow run that logged the model version ({} if unknown)."""
    import mlflow

    try:
        client = mlflow.MlflowClient()
        run_id = client.get_model_version(settings.model_name, version).run_id
        return dict(client.get_run(run_id).data.params) if run_id else {}
    except mlflow.exceptions.MlflowException:
        return {}


def _horizon(params: dict[str, str]) -> float | None:
    try:
        return float(params["horizon_years"])
    except (KeyError, ValueError, TypeError):
        return None


def score_archive(
    settings: Any,
    *,
    as_of: date,
    alias: str | None = None,
    chunk_size: int = 200_000,
    progress: Progress | None = None,
    scored_at: datetime | None = None,
    n_jobs: int | None = None,
    dask: Any = None,
) -> ScoreSummary:
    """Score everyone in the archive at `as_of` with the registered model and write the `risk` rows of that date.

    With `dask` (a `distributed.Client`), the people are scored clinic by clinic on its workers from the archive's
    Parquet partitions (`chronic.distributed`; exported first), and the rows come back to be written here: the
    same rows as the single-machine path.

    The model is `alias` if given, else `champion`, else `challenger` (`chronic.model.registry`); a LookupError
    says when none is registered, a FileNotFoundError when there is no archive. Bands use the horizon the model
    was trained with (its MLflow run), else `settings.horizon_years`. Rerunning for the same `as_of` replaces
    that date's rows.
    """
    from chronic.archive.db import connect
    from chronic.features import build_fields
    from chronic.model.registry import load_model, resolve_version

    started = time.perf_counter()
    if not settings.db_path.exists():
        raise FileNotFoundError(f"no archive at {settings.db_path}: run `chronic ingest` first")
    used_alias, _ = resolve_version(settings, alias)
    pyfunc, version = load_model(settings, used_alias)
    python_model = pyfunc.unwrap_python_model()
    params = _model_run_params(settings, version)
    horizon = _horizon(params) or settings.horizon_years
    if params.get("mode") == "screen":
        log.warning("model %s version %s was trained in screen mode: its probabilities are 'positive now', while "
                    "the band cut-offs are for onset within %s years", settings.model_name, version, horizon)
    scored_at = _timestamp(scored_at)  # one timestamp for every row, wherever it is computed
    score_args = {"as_of": as_of, "model_name": settings.model_name, "model_version": version,
                  "scored_at": scored_at, "horizon_years": horizon}
    con = connect(settings.db_path)
    try:
        if dask is not None:
            from chronic.distributed.scoring import score_on_dask

            risk = score_on_dask(dask, con, settings, python_model, progress=progress, **score_args)
            people = risk.height // max(1, len(python_model.model.task_names_))
        else:
            fields = build_fields(con, as_of, lookback_days=settings.lookback_days)
            risk = score_frame(fields, python_model.features, python_model.model, chunk_size=chunk_size,
                               n_jobs=n_jobs, progress=progress, **score_args)
            people = fields.height
            del fields
        rows = write_risk(con, risk, as_of=as_of)
    finally:
        con.close()
    counts = risk.group_by("task", "band").len().sort("task", "band")
    by_band = {t: {b: 0 for b in BANDS} for t in python_model.model.task_names_}
    for task, b, k in counts.iter_rows():
        by_band[task][b] = int(k)
    seconds = round(time.perf_counter() - started, 2)
    log.info("scored %d people at %s with %s version %s (@%s) in %.1f s", people, as_of, settings.model_name,
             version, used_alias, seconds)
    return ScoreSummary(as_of=as_of, model_name=settings.model_name, model_version=str(version), alias=used_alias,
                        people=people, rows=rows, by_band=by_band, seconds=seconds,
                        dask_workers=len(dask.scheduler_info().get("workers", {})) if dask is not None else 0)
