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
* rules: per task, each person's matched columns are a dense row of slot values (the linear credit of the column
  plus the tree credits - path attribution of the shared stage from a per-leaf table, TreeSHAP of the task stage
  memoised per tree on the person's pattern of that tree's split columns - where trees read the column); the top
  three are three row-wise argmax passes. Ties go to the lower column (atoms before crosses).

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


class _StageShap:
    """TreeSHAP of one single-output task stage, tree by tree, memoised on each tree's input pattern.

    The model's columns are binary (1 or missing), so a tree's TreeSHAP values depend on a person only through
    which of the tree's own split columns (at most 2^depth - 1) the person has: the pattern. Each tree keeps a
    table pattern -> SHAP values of its columns; XGBoost computes a pattern the first time it is seen (a
    one-tree slice's `pred_contribs` over one row per new pattern) and every later person is a table lookup. SHAP values
    add up over trees, so the stage's values are the sums (to float32 rounding: XGBoost accumulates in float32).
    """

    MAX_DIRECT_BITS = 20  # a tree with more split columns keys its table by np.unique instead of a direct array

    def __init__(self, booster: xgb.Booster, width: int) -> None:
        self.booster = booster
        self.width = width
        self.trees: list[dict[str, Any]] = []
        for tree in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]:
            left = np.asarray(tree["left_children"])
            cols = np.unique(np.asarray(tree["split_indices"])[left != -1]).astype(np.int64)
            direct = cols.size <= self.MAX_DIRECT_BITS
            self.trees.append({
                "cols": cols, "bits": (np.int64(1) << np.arange(cols.size, dtype=np.int64)),
                "index": np.full(1 << cols.size, -1, dtype=np.int32) if direct else None,
                "phi": np.zeros((0, cols.size)),
            })
        sizes = [tr["cols"].size for tr in self.trees]
        self._starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
        self._cols = np.concatenate([tr["cols"] for tr in self.trees]) if sizes else np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def _compute(self, k: int, patterns: np.ndarray) -> np.ndarray:
        """SHAP values (patterns x tree columns) of tree `k` for the given patterns."""
        tr = self.trees[k]
        cols = tr["cols"]
        have = (patterns[:, None] & tr["bits"][None, :]) != 0
        r, j = np.nonzero(have)
        X = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, cols[j])), shape=(patterns.size, self.width))
        if tr.get("booster") is None:
            tr["booster"] = self.booster[k:k + 1]  # one tree (pred_contribs takes no iteration range)
        phi = tr["booster"].predict(xgb.DMatrix(X), pred_contribs=True)
        return np.asarray(phi, dtype=np.float64)[:, cols]

    def add(self, pos: np.ndarray, out: np.ndarray) -> None:
        """Add each person's SHAP values into `out` (credits per matched tree-input entry).

        `pos` is people x G columns: 1 + the entry of `out` for a person's matched column, 0 (a discarded entry)
        if the person does not have the column - the SHAP value of a column the person does not have is not
        credited, as in chronic.model.explain.top_rules.
        """
        if not self._cols.size:
            return
        p = pos[:, self._cols]  # (people, every tree's columns side by side)
        have = p != 0
        phi = np.empty(p.shape)
        for k, tr in enumerate(self.trees):
            sl = slice(self._starts[k], self._starts[k] + tr["cols"].size)
            if sl.start == sl.stop:
                continue
            packed = np.packbits(have[:, sl], axis=1, bitorder="little")
            pattern = packed[:, 0].astype(np.int64)
            for byte in range(1, packed.shape[1]):
                pattern |= packed[:, byte].astype(np.int64) << (8 * byte)
            if tr["index"] is not None:
                row = tr["index"][pattern]
                if (row < 0).any():
                    with self._lock:  # blocks may run in threads; the tables only grow
                        row = tr["index"][pattern]
                        new = np.unique(pattern[row < 0])
                        if new.size:
                            first = tr["phi"].shape[0]
                            tr["phi"] = np.concatenate([tr["phi"], self._compute(k, new)])  # before the index
                            tr["index"][new] = np.arange(new.size, dtype=np.int32) + first
                        row = tr["index"][pattern]
                phi[:, sl] = tr["phi"][row]
            else:
                keys, inv = np.unique(pattern, return_inverse=True)
                with self._lock:
                    phi[:, sl] = self._compute(k, keys)[inv.ravel()]
        # trees share columns, so a person x column gets several values: summed by bincount
        out += np.bincount(p.ravel(), weights=phi.ravel(), minlength=out.size)


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
        self._shap = [None if b is None else _StageShap(b, self._width) for b in self._stages]

    def _set_paths(self, pc: Any, T: int) -> None:
        """The shared stage's path credits as flat arrays: node -> its entries (G column, credit per task).

        A credit on an edge only a person *without* the column can take (the missing-value branch of a split
        whose present branch is the other child) is never kept by the explanation, so it is dropped here; the
        rest are checked against the person's columns when scored (an unmatched column's credit is discarded).
        """
        first = pc.credits[0].tocsr()
        for c in pc.credits[1:]:
            c = c.tocsr()
            if not (np.array_equal(c.indptr, first.indptr) and np.array_equal(c.indices, first.indices)):
                raise ValueError("path credits of the shared stage differ in shape between tasks")
        keep = np.ones(first.indices.size, dtype=bool)
        trees = json.loads(self._shared.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
        for start, tree in zip(pc.offsets.tolist(), trees, strict=True):
            left, right = tree["left_children"], tree["right_children"]
            parent, split = tree["parents"], tree["split_indices"]
            cond, default_left = tree["split_conditions"], tree["default_left"]
            for leaf in (i for i, lc in enumerate(left) if lc == -1):
                only_missing: dict[int, bool] = {}  # column -> every edge crediting it is missing-only
                node = leaf
                while parent[node] != -1 and node != 0:
                    up = parent[node]
                    present = left[up] if 1.0 < cond[up] else right[up]  # XGBoost: x < condition goes left
                    missing = left[up] if default_left[up] else right[up]
                    col = split[up]
                    only_missing[col] = only_missing.get(col, True) and node != present and present != missing
                    node = up
                row = start + leaf
                for e in range(first.indptr[row], first.indptr[row + 1]):
                    if only_missing.get(int(first.indices[e]), False):
                        keep[e] = False
        nodes = first.shape[0]
        rows = np.repeat(np.arange(nodes), np.diff(first.indptr))[keep]  # ascending: CSR order
        counts = np.bincount(rows, minlength=nodes)
        self._path_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)  # node -> first entry
        self._path_count = counts.astype(np.int64)
        self._path_col = first.indices[keep].astype(np.int64)  # entry -> G column
        self._path_credit = np.stack([c.tocsr().data[keep] for c in pc.credits])  # (T, entries)
        self._tree_offsets = pc.offsets

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

    def _tree_credits(self, XU: sp.csr_matrix, d: xgb.DMatrix) -> np.ndarray:
        """(T, XU entries): the trees' credit to each matched tree column (path attribution of the shared stage
        plus TreeSHAP of the task stage, times the fusion's tree weight), as chronic.model.explain computes it."""
        n = XU.shape[0]
        T = len(self.task_names)
        E = XU.indices.size
        # person x G column -> 1 + the column's XU entry; 0 (an extra, discarded entry) where the person does not
        # have the column: credits of columns a person does not have are not kept by the explanation
        pos = sp.csr_matrix((np.arange(1, E + 1, dtype=np.int32), XU.indices, XU.indptr), shape=XU.shape).toarray()
        credit = np.zeros((T, E + 1))
        if self._shared is not None:
            leaves = self._shared.predict(d, pred_leaf=True)
            node = (leaves.astype(np.int64).reshape(n, -1) + self._tree_offsets[None, :]).ravel()  # person-major
            count = self._path_count[node]
            first = np.repeat(self._path_start[node] - np.cumsum(count) + count, count)
            at = first + np.arange(first.size)  # every path entry of every person's leaves
            person = np.repeat(np.arange(n), count.reshape(n, -1).sum(axis=1))
            entry = pos[person, self._path_col[at]]
            for t in range(T):
                credit[t] = np.bincount(entry, weights=self._path_credit[t][at], minlength=E + 1)
        for t, shap in enumerate(self._shap):
            if shap is not None:
                shap.add(pos, credit[t])
            f = self._fusion[t]
            if f is not None:
                credit[t] *= f["w_trees"]
        return credit[:, 1:]

    def _top_rules(self, slots: np.ndarray, XU: sp.csr_matrix, tree_slot: np.ndarray, d: xgb.DMatrix
                   ) -> np.ndarray:
        """(n, T, N_RULES) column indices of the matched columns raising each task's log-odds most (-1: none)."""
        n = slots.shape[0]
        T = len(self.task_names)
        out = np.full((n, T, N_RULES), -1, dtype=np.int32)
        credit = self._tree_credits(XU, d)
        rows = np.arange(n)
        for t in range(T):
            # (n, slots): the credit of each matched column, in float32 (half the memory traffic of the widest
            # array here; a float32 tie can only join values within ~1e-7 of each other)
            values = self._rule_linear32[t][slots]
            values.reshape(-1)[tree_slot] += credit[t].astype(np.float32)
            for j in range(N_RULES):
                best = values.argmax(axis=1)  # the first maximum: ties go to the lower column
                v = values[rows, best]
                ok = v > 0
                out[ok, t, j] = slots[ok, best[ok]]
                values[rows, best] = -np.inf
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
