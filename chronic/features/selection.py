"""Scoring crosses per task, and keeping the top K per task over a stream of candidate blocks.

The statistic is the *productive evidence* of a cross for a task, in nats:

    score = min over parents P of  n * KL( p_hat_P || q_P ),   p_hat_P = (k + m q_P) / (n + m)

with n labelled training people in the cross, k of them positive, q_P the (smoothed) positive rate of a parent
(the base rate for an order-1 cross; the two single bins for a pair; the three pairs for a triple) and m the prior
strength. Why this one:

* ``n * KL(p_hat || q)`` is half the likelihood-ratio (G) statistic of "this cell's rate differs from q", so it is
  evidence, not effect size: it grows with both the lift and the number of people, which is what a feature for a
  model over 100k people needs (a 25-person cell with a high rate is worth less than a 2,000-person one with a
  moderate lift). Under "no difference" it is about chi2(1)/2, so scores are comparable across cell sizes and orders.
* The Beta prior (strength m, mean q_P) shrinks small cells toward their reference, so cells near `min_support`
  cannot win on noise, and a cell with no labelled people scores exactly 0.
* Taking the minimum over the parents keeps only crosses that say something their generalisations do not (a
  "productive" rule): "age 70-75 & any bin of an unrelated field" inherits the age signal and scores ~0 instead of
  flooding the top K with copies of one strong field. Protective and risk crosses score alike (KL is unsigned).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-9


def smoothed_rate(k: np.ndarray, n: np.ndarray, q: np.ndarray, m: float) -> np.ndarray:
    """Posterior mean positive rate with a Beta prior of mean `q` and strength `m` pseudo-people."""
    return (k + m * q) / (n + m)


def evidence(k: np.ndarray, n: np.ndarray, q: np.ndarray, m: float) -> np.ndarray:
    """``n * KL(p_hat || q)`` in nats, p_hat shrunk toward q (0 where n == 0)."""
    q = np.clip(q, EPS, 1 - EPS)
    p = np.clip(smoothed_rate(k, n, q, m), EPS, 1 - EPS)
    kl = p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))
    return n * np.maximum(kl, 0.0)


def productive_score(k: np.ndarray, n: np.ndarray, parent_rates: list[np.ndarray], m: float) -> np.ndarray:
    """Minimum evidence against each parent's rate (arrays broadcast: k, n, each parent rate ~ (rows, tasks))."""
    out = evidence(k, n, parent_rates[0], m)
    for q in parent_rates[1:]:
        np.minimum(out, evidence(k, n, q, m), out=out)
    return out


class TopKPool:
    """The best `k` rows per task over a stream of blocks, ranked by (score desc, id asc).

    Each block is filtered against the current per-task K-th best score (ties kept), so the pool stays small; a
    prune keeps the union of the per-task top K. The result is exactly the global top K per task whatever the block
    order, because a row below the current K-th score can never enter the final top K and ties are settled by id.
    """

    def __init__(self, k: int, n_tasks: int, min_score: float = 0.0, cap: int = 200_000) -> None:
        self.k = k
        self.n_tasks = n_tasks
        self.min_score = min_score
        self.cap = max(cap, 4 * k * n_tasks)
        self._thr = np.full(n_tasks, -np.inf)
        self._blocks: list[dict[str, np.ndarray]] = []
        self._rows = 0

    def admissible(self, score: np.ndarray) -> np.ndarray:
        """Rows of a block (`score` (rows, tasks), -inf where ineligible) that could still enter some task's top K."""
        return ((score > self.min_score) & (score >= self._thr)).any(axis=1)

    def add(self, score: np.ndarray, ids: np.ndarray, payload: dict[str, np.ndarray]) -> None:
        """Add admissible rows: their scores, ids and row-aligned payload arrays."""
        if not ids.size:
            return
        self._blocks.append({**payload, "score": score, "id": ids})
        self._rows += int(ids.size)
        if self._rows > self.cap:
            self._prune()

    def _merged(self) -> dict[str, np.ndarray]:
        if not self._blocks:
            return {}
        if len(self._blocks) == 1:
            return self._blocks[0]
        return {name: np.concatenate([b[name] for b in self._blocks]) for name in self._blocks[0]}

    def _rank(self, pool: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Per task, pool row indices of the top k in rank order."""
        out = []
        for t in range(self.n_tasks):
            s = pool["score"][:, t]
            valid = np.flatnonzero(s > self.min_score)
            order = np.lexsort((pool["id"][valid], -s[valid]))[: self.k]
            out.append(valid[order])
        return out

    def _prune(self) -> None:
        pool = self._merged()
        if not pool:
            return
        ranks = self._rank(pool)
        for t, r in enumerate(ranks):
            if r.size >= self.k:
                self._thr[t] = pool["score"][r[-1], t]
        union = np.unique(np.concatenate(ranks)) if ranks else np.array([], dtype=np.int64)
        self._blocks = [{name: arr[union] for name, arr in pool.items()}] if union.size else []
        self._rows = int(union.size)

    def result(self) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """(pool arrays, per-task ranked row indices into them) after a final prune."""
        self._prune()
        pool = self._merged()
        return pool, (self._rank(pool) if pool else [np.array([], dtype=np.int64)] * self.n_tasks)
