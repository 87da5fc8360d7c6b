"""A large file written into the Data Lake as staged blocks that a later run resumes.

Block IDs come from the file's MD5 and the block's place, so a run stopped mid-file (Ctrl-C, a
lost connection, a killed pod) finds the blocks it staged still uncommitted on the blob (Storage
keeps them a week) and sends only the rest; a changed file has other IDs and starts over. Every
block carries its own MD5; the commit carries the whole file's, and never replaces a file at the
name unless asked (--upsert).
"""

from __future__ import annotations

import base64
from typing import BinaryIO

BLOCK_BYTES = 8 << 20  # what one request carries
LARGE_FILE_BYTES = 32 << 20  # larger files are staged in blocks; smaller ones go in one request


class NameTaken(Exception):
    """Another blob was committed at the name while the blocks were staged."""


def block_ids(md5: bytes, size: int) -> list[str]:
    count = max(1, -(-size // BLOCK_BYTES))
    # equal length for every ID of a blob, as Storage requires
    return [base64.b64encode(f"{md5.hex()[:24]}-{index:06d}".encode()).decode() for index in range(count)]


def staged_already(blob) -> dict[str, int]:
    """The uncommitted blocks on the blob (ID → size); none when the blob has none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        _, uncommitted = blob.get_block_list("uncommitted")
    except ResourceNotFoundError:
        return {}
    return {block.id: block.size for block in uncommitted}


def write_in_blocks(blob, stream: BinaryIO, size: int, md5: bytes, *, replace: bool) -> int:
    """Stage what is not staged yet, then commit; returns how many blocks were sent."""
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
    from azure.storage.blob import BlobBlock, ContentSettings

    ids = block_ids(md5, size)
    staged = staged_already(blob)
    sent = 0
    for index, block_id in enumerate(ids):
        length = min(BLOCK_BYTES, size - index * BLOCK_BYTES)
        if staged.get(block_id) == length:
            continue
        stream.seek(index * BLOCK_BYTES)
        blob.stage_block(block_id, stream.read(length), length=length, validate_content=True)
        sent += 1
    condition = {} if replace else {"if_none_match": "*"}
    try:
        blob.commit_block_list([BlobBlock(block_id=block_id) for block_id in ids],
                               content_settings=ContentSettings(content_md5=bytearray(md5)), **condition)
    except (ResourceExistsError, ResourceModifiedError):
        raise NameTaken from None
    return sent
