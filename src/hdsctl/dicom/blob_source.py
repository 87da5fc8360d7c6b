"""An archive in Azure Blob Storage (or a Data Lake file system: the same blobs) as the upload's
source: `hdsctl dicom upload https://<account>.blob.core.windows.net/<container>[/<prefix>]`.

The container is listed under the prefix; each blob is read by ranged GETs as the upload needs it
(the header for the scan, then streamed into the request or the copy), never copied whole to disk
or memory. Every read is pinned to the ETag the listing gave: a blob written again since then
fails as changed, never sent half old, half new. Signed in as for the other Storage calls (an
Entra token for a Storage host; Azurite's published key on loopback); a SAS in the URL is
refused, since the URL is written into journals and reports.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hdsctl.errors import BadInput

READ_BYTES = 4 << 20  # one ranged GET reads this much ahead


class BlobSourceRefused(BadInput):
    """A source URL hdsctl will not read from."""


def is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


@dataclass
class BlobRoot:
    url: str  # as given (no query)
    account_url: str
    container: str
    prefix: str
    budget: Any = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)

    @property
    def key_prefix(self) -> str:
        """What the keys of its blobs begin with, in journals and reports."""
        return f"{self.account_url}/{self.container}/{self.prefix}"

    def __str__(self) -> str:
        return self.url

    def client(self):
        """One container client for the listing and every read (Storage clients are thread-safe)."""
        if self._client is None:
            from azure.storage.blob import ContainerClient

            from hdsctl.dataplane import storage_client

            self._client = storage_client(ContainerClient, self.account_url, self.container, budget=self.budget)
        return self._client

    def walk(self):
        """(BlobSource, modified) for each blob under the prefix, in name order (the listing's)."""
        from hdsctl.dataplane import storage_errors
        from hdsctl.dicom.archive import Unusable

        with storage_errors(f"the source container {self.account_url}/{self.container}",
                            "Storage Blob Data Reader"):
            for blob in self.client().list_blobs(name_starts_with=self.prefix or None):
                if blob.name.endswith("/") or (blob.metadata or {}).get("hdi_isfolder") == "true":
                    continue  # a Data Lake folder, not a file
                source = BlobSource(self, blob.name, blob.size, blob.etag)
                if blob.name.lower().endswith(".zip"):
                    yield Unusable(source, "refused-archive", "a .zip in Blob storage is not opened: extract "
                                                              "it into the container, or upload it from a disk")
                    continue
                yield source, blob.last_modified.timestamp()


def parse_root(text: str, trusted_hosts=(), budget=None) -> BlobRoot:
    """`https://<account>.blob.core.windows.net/<container>[/<prefix>]`, or Azurite's path-style
    `http://127.0.0.1:<port>/<account>/<container>[/<prefix>]`."""
    from hdsctl.endpoints import EndpointRefused, check_storage_url, is_loopback

    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise BlobSourceRefused(f"{text.split('?')[0]}?...: give the source URL without a SAS or other query "
                                "(it is written into journals and reports); hdsctl signs in with Entra ID, and "
                                "needs Storage Blob Data Reader on the container")
    segments = [s for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    loopback = is_loopback(host)
    if loopback and segments:
        account_url, segments = f"{parts.scheme}://{parts.netloc}/{segments[0]}", segments[1:]
    else:
        account_url = f"{parts.scheme}://{parts.netloc}".replace(".dfs.", ".blob.")
    if not segments:
        raise BlobSourceRefused(f"{text}: name the container (and a folder in it if you like): "
                                "https://<account>.blob.core.windows.net/<container>/<folder>")
    try:
        check_storage_url(account_url, trusted_hosts)
    except EndpointRefused as err:
        raise BlobSourceRefused(f"{text}: {err}") from None
    if parts.scheme != "https" and not loopback:
        raise BlobSourceRefused(f"{text}: a Storage account is read over https only")
    prefix = "/".join(segments[1:])
    return BlobRoot(text, account_url, segments[0], f"{prefix}/" if prefix else "", budget)


@dataclass(frozen=True)
class BlobSource:
    """One blob of the source, as the walk found it; read as a seekable stream by ranged GETs."""

    root: BlobRoot = field(compare=False, repr=False)
    name: str
    size: int
    etag: str
    member = None  # never a zip member

    @property
    def key(self) -> str:
        return f"{self.root.account_url}/{self.root.container}/{self.name}"

    def open(self):
        return io.BufferedReader(BlobReader(self), buffer_size=READ_BYTES)

    def changed_since(self, size: int, modified: float) -> str | None:
        return None  # every read is pinned to the listing's ETag: a change fails the read itself


class BlobReader(io.RawIOBase):
    def __init__(self, source: BlobSource):
        super().__init__()
        self.source, self.position = source, 0
        self.name = source.key  # readers (pydicom) name the file they read by it
        self.blob = source.root.client().get_blob_client(source.name)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.source.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError

        length = min(len(buffer), self.source.size - self.position)
        if length <= 0:
            return 0
        try:
            data = self.blob.download_blob(offset=self.position, length=length, etag=self.source.etag,
                                           match_condition=MatchConditions.IfNotModified).readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            raise OSError("changed while uploading: the blob was written again or removed since it was "
                          "listed; run again to send it as it is now") from None
        except AzureError as err:
            raise OSError(f"the source blob could not be read: {str(err).splitlines()[0][:200]}") from None
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)
