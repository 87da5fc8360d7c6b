"""Every file hdsctl writes goes through here: atomically, and never over one of its inputs.

A stack file cut in the middle by a full disk, or a prod stack file replaced by a JSON plan
because a path was mistyped, is a lost review. So a write goes to a temporary file in the same
folder, is flushed and synced, and only then renamed over the target; and the outputs a
command was given are checked against its inputs before it does anything.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from hdsctl.errors import BadInput

STDOUT = "-"


class OutputPathError(BadInput):
    """An output path that would overwrite an input or another output."""


def write_atomic(path: Path | str, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new one, never
    a part. The file keeps its permissions; a new file gets the usual ones (0666 less umask)."""
    path = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # the link stays; its target gets the new content
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        with open(path, "wb") as stream:  # a device or FIFO (/dev/null, /dev/stdout) is written to,
            stream.write(payload)  # never replaced by a regular file
        return
    folder = path.parent if str(path.parent) else Path(".")
    mode = _mode_for(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (not every file system lets a folder be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        # Some file systems refuse fsync on a folder; the rename has happened all the same.
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def check_outputs(outputs: dict[str, str | Path | None], inputs: list[Path],
                  stacks_dir: Path | None = None) -> None:
    """Refuse, before anything runs, an output that would overwrite a stack file or one of the
    command's inputs, and one path given to two outputs. `outputs` maps option → path."""
    protected = {_key(p): p for p in inputs}
    if stacks_dir is not None and stacks_dir.is_dir():
        protected.update({_key(p): p for p in stacks_dir.glob("Pulumi.*.y*ml")})
    seen: dict[str, str] = {}
    for option, value in outputs.items():
        if value is None:
            continue
        if str(value) == STDOUT:
            if STDOUT in seen:
                raise OutputPathError(f"{seen[STDOUT]} - and {option} - cannot both use standard output; "
                                      "give one a file")
            seen[STDOUT] = option
            continue
        key = _key(Path(value))
        if key in protected or Path(value).name.startswith("Pulumi."):
            raise OutputPathError(
                f"{option} {value}: refusing to overwrite a stack file or an input of this command; "
                "choose another output path")
        if key in seen:
            raise OutputPathError(f"{option} and {seen[key]} name the same file {value}; give each its own")
        seen[key] = option


def _key(path: Path) -> str:
    """Two spellings of one file compare equal (relative, `..`, symbolic links)."""
    return os.path.normcase(os.path.realpath(path))
