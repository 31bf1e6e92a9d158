"""Private files and folders: everything zembed writes that holds secrets
or the user's work (connection files, history, crash logs and reports).

The rule: every folder zembed creates is 0700 and every file 0600 *from
the moment it exists*, whatever the umask.  ``mkdir(parents=True,
mode=0o700)`` does not keep it (the parents it makes get the umask's
mode), and a file written with ``open()`` or ``write_text`` gets 0644 in
a common umask, so nothing in zembed creates a path another way.

Folders that already exist are left as they are: they are the user's.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` and every missing parent, each 0700; return it."""
    target = Path(path)
    missing = []
    level = target
    while not level.is_dir():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:  # another process made it at the same moment, by the same rule
            continue
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask: a umask of 0o700 would leave 0000
    return target


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` with ``O_CREAT``: a file created now is 0600 from the start."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 & ~FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # it existed already, made by something less careful
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a private temporary file in
    the same folder, renamed over it, so a reader never sees half a file."""
    target = Path(path)
    private_dir(target.parent)
    # Ends in .tmp: no reader globbing for *.json ever picks it up.
    # O_EXCL: never follow or reuse an existing file.
    tmp = target.parent / f".{target.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
