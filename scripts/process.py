"""What `voxsplat`'s commands share as processes: a lock on their workspace, SIGTERM taken as
Ctrl-C, and the failures of the machine (a full disk, another rank gone) told in one line."""

from __future__ import annotations

import errno
import signal
from pathlib import Path


def locked(out: Path, main_process: bool = True):
    """`workspace_lock(out)` for the process that owns OUT (torchrun's first; the others share
    its run)."""
    import contextlib
    from voxsplat.recon.workspace import workspace_lock
    return workspace_lock(out) if main_process else contextlib.nullcontext()


def stop_on_sigterm():
    """SIGTERM (`docker stop`, `timeout`, a scheduler) stops a command as Ctrl-C does: its
    message says what to run next, and training saves a checkpoint first (see
    `checkpoint.stop_at_step_end`). Returns the handler it replaced (None off the main thread)."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    return signal.signal(signal.SIGTERM, interrupt)


DISK_ERRORS = {
    errno.ENOSPC: "no space left on the disk; free some, or give --out on another disk",
    errno.EDQUOT: "disk quota exceeded; free some space, or give --out on another disk",
    errno.EROFS: "the file system is read-only; give --out on a writable one",
    errno.EACCES: "permission denied; check its permissions, or give --out where you may write",
    errno.EPERM: "not permitted; check its permissions, or give --out where you may write",
}
"""OSErrors that the machine, not voxsplat, causes: one line (what and where), no traceback."""


def peer_stopped(e: RuntimeError) -> bool:
    """Whether `e` is torch.distributed's report that another rank went away (NCCL's
    DistBackendError, gloo's closed connection), not a failure of this process."""
    text = str(e)
    return (type(e).__name__ == "DistBackendError"
            or any(s in text for s in ("Connection closed by peer", "Connection reset by peer",
                                       "gloo/transport", "NCCL communicator was aborted")))
