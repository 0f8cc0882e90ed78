"""File scoring's old home (:mod:`sentiment.inference.files` now): Ray pickles a class by its
module path, so a pipeline that names ``sentiment.scoring.BatchScorer`` keeps working."""

from __future__ import annotations

from .inference.files import BatchScorer, score_file

__all__ = ["BatchScorer", "score_file"]
