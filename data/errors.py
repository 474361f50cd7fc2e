"""The one error type users see: a clear, one-line message that names the file and the fix."""

from __future__ import annotations


class VoxsplatError(Exception):
    """Bad input or an unrecoverable condition, reported to the user without a traceback.

    The message should name the offending file or option and say how to fix it, e.g.
    ``"transforms.json: frame 3 has no 'transform_matrix'; every frame needs a 4x4 pose"``.
    """
