"""The HTTP transport for bodies of many megabytes (DICOM uploads).

requests hands urllib3 a streamed body, and urllib3 reads it and writes it to the socket 16 KB at a
time: for a 263 MB upload that is 16,000 rounds of Python work per direction. A block of 1 MB keeps
memory flat (one block per request in flight) and cuts those rounds 64-fold.
"""

from __future__ import annotations

from typing import Any

UPLOAD_BLOCK_BYTES = 1 << 20


def bulk_transport():
    """azure-core's requests transport, with urllib3 sending bodies in 1 MB blocks."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class BulkAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, blocksize=UPLOAD_BLOCK_BYTES, **kwargs)

        def proxy_manager_for(self, proxy: str, **kwargs: Any):
            return super().proxy_manager_for(proxy, blocksize=UPLOAD_BLOCK_BYTES, **kwargs)

    session = requests.Session()
    # Retries are hdsctl's retry policy's alone (as azure-core's own adapter sets it up).
    adapter = BulkAdapter(max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=True)
