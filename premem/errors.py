"""`UserError`: a failure caused by the spec or the user's data, not by infrastructure (a job that raises it is
recorded failed and never retried). Here, below everything, so that any module that finds such a fault (a job
kind, a measure, a loader) can say so without importing the job machinery."""
from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A failure caused by the spec or the user's data, not by infrastructure: retrying will not help."""
