"""Atomic file writes, shared by every stage: a file appears only once it is complete.

Writers fill a hidden temporary file beside the target, then rename it into place (a rename
within one filesystem). A killed writer leaves at most that temporary file, never a truncated
target; :func:`remove_partial_writes` sweeps them once nothing writes any more.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The folder is created if needed. A random suffix keeps concurrent writers of the same file
    (a rerun task on another worker) apart. On an error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_partial_writes(folder: str | os.PathLike[str]) -> None:
    """Delete the temporary files that killed :func:`atomic_path` writers left in ``folder``.

    Call it only once nothing writes there any more: a live writer's file looks the same.
    """
    for path in Path(folder).glob(".*.tmp"):
        path.unlink(missing_ok=True)
