"""Which file system a path lives on, for the journals: SQLite's write-ahead log needs memory
shared through the file system and so works on local disks only (sqlite.org/wal.html); on an
Azure Files share over SMB it is "database is locked" at the first write. A Job's journals sit
on such a share (ReadWriteMany: pods of different indexes run on different nodes).
"""

from __future__ import annotations

from pathlib import Path

MOUNT_TABLE = Path("/proc/self/mounts")
# Shared over the network: locks may hold, memory shared through the file does not.
NETWORK = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "fuse.glusterfs", "lustre",
           "fuse.sshfs", "9p"}
# Blob storage mounted by blobfuse: no locks at all and writes reach storage when a file is
# closed, so a journal there could be lost or corrupted by a killed pod.
NO_LOCKS = {"fuse.blobfuse", "fuse.blobfuse2"}


def file_system_of(path: Path, mount_table: Path | None = None) -> str:
    """The type of the file system holding `path` (its deepest mount point), or "" when the
    mount table cannot be read (not Linux)."""
    try:
        lines = (mount_table or MOUNT_TABLE).read_text().splitlines()
    except OSError:
        return ""
    target = str(path.resolve())
    best, kind = "", ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = _unescape(fields[1])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, fields[2]
    return kind


def _unescape(field: str) -> str:
    """The mount table writes space, tab, newline and backslash as octal escapes."""
    for escaped, plain in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(escaped, plain)
    return field
