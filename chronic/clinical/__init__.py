"""Clinical knowledge as code: published risk scores (and, in their own modules, tasks, labels, snapshot).

Importing this package only defines the score registry: no I/O, no database, no heavy imports. The
other modules (``snapshot``, ``tasks``, ``labels``) are imported by whoever uses them.
"""

from chronic.clinical.scores import SCORES, ScoreSpec, score

__all__ = ["SCORES", "ScoreSpec", "score"]
