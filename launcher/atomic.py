"""Files written whole or not at all, and the temporaries a crash leaves behind.

Every bookkeeping file and checkpoint is written to `.<name>.<pid>.tmp` next
to its target and renamed into place, so a reader never sees half a file.
A process killed mid-write (or a full disk) leaves the temporary behind;
the run's owner removes those when it starts. A write that fails for lack of
space removes its temporary at once and says so in one line.

A checkpoint folder (a sharded checkpoint, written by every rank) is written
the same way, as `.<name>.<pid>.tmp/`. Replacing an older folder of the same
name takes two renames: the old one first becomes `.<name>.<pid>.old/`. A
process killed between the two leaves that `.old` folder, complete, and no
`<name>`: the owner's start puts it back.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

TEMPORARY_GLOB = ".*.tmp"
REPLACED_GLOB = ".*.old"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Less than this left on the filesystem after a failed write means it was full
# (torch's writer reports a full disk as a bare RuntimeError).
FULL_BELOW_BYTES = 1 << 20


def temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_text(path: Path, text: str, small: bool = False) -> None:
    """Write `path` whole. A `small` file (a status, a few hundred bytes) is, on a
    full disk, rewritten in place instead: the blocks it already holds suffice,
    and saying how a run ended matters most exactly then."""
    tmp = temporary_path(Path(path))
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if not (small and exc.errno in NO_SPACE and Path(path).is_file()):
            raise
        with open(path, "r+") as file:
            file.write(text)
            file.truncate()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class NoSpace(OSError):
    """A write failed because its filesystem is full (or the quota is used up)."""

    def __init__(self, path: Path) -> None:
        super().__init__(errno.ENOSPC, "No space left on device", str(path))

    def __str__(self) -> str:
        return f"no space left on {mount_point(Path(self.filename))} (writing {self.filename})"


def out_of_space(exc: BaseException, path: Path) -> bool:
    """Whether a failed write of `path` failed because the disk is full."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return True
    try:
        return shutil.disk_usage(Path(path).parent).free < FULL_BELOW_BYTES
    except OSError:
        return False


def mount_point(path: Path) -> Path:
    path = Path(path).absolute()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder `new` at `target`, where an older one may be."""
    if not target.exists():
        os.replace(new, target)
        return
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old)


def remove_folder(path: Path) -> None:
    """Remove a folder so that a kill midway leaves only a temporary, never a damaged
    folder under its own name."""
    doomed = temporary_path(path)
    os.replace(path, doomed)
    shutil.rmtree(doomed)


def remove_stale(folders: Iterable[Path]) -> list[Path]:
    """Remove the temporaries in these folders (and their subfolders), and put back a
    folder that was being replaced; only the run's owner may call this, when nothing of
    the run is writing."""
    removed = []
    for folder in folders:
        for old in sorted(Path(folder).rglob(REPLACED_GLOB)):
            target = old.with_name(old.name[1:].rsplit(".", 2)[0])
            if old.is_dir() and not target.exists():
                os.replace(old, target)  # killed between the two renames: the old one
            elif old.is_dir():
                shutil.rmtree(old)
                removed.append(old)
        for tmp in sorted(Path(folder).rglob(TEMPORARY_GLOB)):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
            elif tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                continue
            removed.append(tmp)
    return removed
