"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

import pytest

from voxsplat.data.errors import VoxsplatError


def error_message(fn, *args, **kwargs) -> str:
    """The VoxsplatError message `fn(*args, **kwargs)` raises; asserts it is one line."""
    with pytest.raises(VoxsplatError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message
