"""What a coach reads: trials and per-side results built from readings."""

from dorsimeter.session.results import SessionResults

__all__ = ["SessionResults"]
