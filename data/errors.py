"""The one error type users see: a clear, one-line message that names the file and the fix."""

from __future__ import annotations

from typing import Iterable


class VoxsplatError(Exception):
    """Bad input or an unrecoverable condition, reported to the user without a traceback.

    The message should name the offending file or option and say how to fix it, e.g.
    ``"transforms.json: frame 3 has no 'transform_matrix'; every frame needs a 4x4 pose"``.
    """


def shortened_list(items: Iterable[object], shown: int = 5) -> str:
    """The first `shown` items, comma-separated, and how many more: for messages."""
    items = [str(x) for x in items]
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")
