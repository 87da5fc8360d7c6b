"""Storage indexing on the local platform: DICOM files written straight into the service's file
system (an Azurite blob container) become instances of the local service.

Two stand-ins, each doing what Azure does and no more:
- for Event Grid, which Azurite does not have: the container's listing is watched, and every
  new, changed or removed blob becomes a Microsoft.Storage.BlobCreated/BlobDeleted CloudEvent on
  the queue, if the storage-indexing subscription's filter (events.schema.IndexingFilter, the one
  the program declares) admits it;
- for the service's indexer: the queue is read, each event's file stored into the engine through
  the same rules as a STOW (45070: already there is a success); what the service refuses goes to
  `<queue>-poison` with the reason and is not retried (a User error), what the engine cannot do
  now stays on the queue (a Server error, retried). A removed file removes its instance; a file
  written again over one it indexed replaces that instance (the service's file is the new one).

Tests steer it as they steer the service's knobs: `paused` holds the indexer (events queue up,
as when the service is behind), `deny_delivery` makes the topic's deliveries fail with 403 as
when its identity lacks the queue role: Event Grid does not retry a 403 from an Azure resource
and dead-letters the event when the subscription has a dead-letter container.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import logging
import threading
import uuid

from hdsctl.dicom import keys
from hdsctl.dicom.web import ALREADY_STORED, dicom_values, first_value
from hdsctl.emulator.store import ApiError
from hdsctl.events.schema import IndexingFilter, blob_subject, indexing_filter

log = logging.getLogger("hdsctl.emulator.indexer")

CREATED, DELETED = "Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"


class LocalIndexer:
    def __init__(self, connection_string: str, front, *, file_system: str, folder: str, queue: str,
                 admits: IndexingFilter, base_url: str, subscription: str = "", dead_letters: str | None = None,
                 interval: float = 0.3):
        from azure.storage.blob import ContainerClient
        from azure.storage.queue import QueueClient

        self.front, self.file_system, self.folder, self.admits = front, file_system, folder, admits
        self.base_url, self.interval = base_url, interval
        self.container = ContainerClient.from_connection_string(connection_string, file_system)
        self.queue = QueueClient.from_connection_string(connection_string, queue)
        self.poison = QueueClient.from_connection_string(connection_string, f"{queue}-poison")
        self._seen: dict[str, str] = {}  # blob name → etag, as last listed
        self._indexed: dict[str, tuple[str, str, str]] = {}  # blob name → (study, series, instance)
        self.subscription = subscription
        self.dead_letters = (ContainerClient.from_connection_string(connection_string, dead_letters)
                             if dead_letters else None)
        self.paused, self.deny_delivery = threading.Event(), False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LocalIndexer:
        from azure.core.exceptions import ResourceExistsError

        creates = [self.container.create_container, self.queue.create_queue, self.poison.create_queue]
        if self.dead_letters is not None:
            creates.append(self.dead_letters.create_container)
        for create in creates:
            with contextlib.suppress(ResourceExistsError):
                create()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for client in (self.container, self.queue, self.poison, self.dead_letters):
            if client is not None:
                client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._publish_changes()
                if not self.paused.is_set():
                    self._index_queued()
            except Exception as err:  # Azurite or the engine away for a moment: the next round retries
                log.warning("local storage indexing paused: %s", err)

    # -- the Event Grid stand-in ---------------------------------------------------------

    def _publish_changes(self) -> None:
        listed = {blob.name: blob.etag for blob in self.container.list_blobs(name_starts_with=self.folder)}
        for name, etag in listed.items():
            if self._seen.get(name) != etag:
                self._publish(CREATED, name, etag)
        for name in set(self._seen) - set(listed):
            self._publish(DELETED, name)
        self._seen = listed

    def _publish(self, event_type: str, name: str, etag: str | None = None) -> None:
        subject = blob_subject(self.file_system, name)
        if not self.admits.admits(event_type, subject):
            return
        event = {"specversion": "1.0", "type": event_type, "source": f"/local/{self.file_system}",
                 "id": str(uuid.uuid4()), "time": datetime.datetime.now(datetime.UTC).isoformat(),
                 "subject": subject, "data": {"api": "PutBlob" if event_type == CREATED else "DeleteBlob",
                                              "clientRequestId": str(uuid.uuid4()),
                                              "url": f"{self.container.url}/{name}",
                                              **({"eTag": etag.strip('"')} if etag else {})}}
        if self.deny_delivery:
            self._dead_letter(event)
            return
        self.queue.send_message(base64.b64encode(json.dumps(event).encode()).decode())

    def _dead_letter(self, event: dict) -> None:
        """As Event Grid records an event the queue refused with 403 (not retried); dropped
        without a dead-letter container, as Event Grid drops it."""
        if self.dead_letters is None:
            return
        now = datetime.datetime.now(datetime.UTC)
        # The reason Event Grid gives a 403 is not documented; readers go by lastHttpStatusCode.
        record = {**event, "deadLetterReason": "UndeliverableDueToHttpForbidden", "deliveryAttempts": 1,
                  "lastDeliveryOutcome": "Forbidden", "lastHttpStatusCode": 403,
                  "publishTime": event["time"], "lastDeliveryAttemptTime": now.isoformat()}
        name = f"{self.subscription.upper()}/{now.year}/{now.month}/{now.day}/{now.hour}/{uuid.uuid4()}.json"
        self.dead_letters.upload_blob(name, json.dumps([record]).encode())

    # -- the service's indexer -----------------------------------------------------------

    def _index_queued(self) -> None:
        for message in self.queue.receive_messages(max_messages=32, visibility_timeout=30):
            try:
                event = json.loads(base64.b64decode(message.content))
                name = event["subject"].split("/blobs/", 1)[1]
            except (ValueError, KeyError, IndexError, TypeError):
                self._refuse(message, {}, "the message is not a Blob event")
                continue
            if not self.admits.admits(event.get("type", ""), event["subject"]):
                self._refuse(message, event, "the event is not one this service indexes")
                continue
            why = self._created(name) if event["type"] == CREATED else self._deleted(name)
            if why is None:
                self.queue.delete_message(message)
            elif why.startswith("User"):
                self._refuse(message, event, why)
            # a Server error: the message reappears and is tried again

    def _created(self, name: str) -> str | None:
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        try:
            data = self.container.download_blob(name).readall()
        except ResourceNotFoundError:
            return "User: the file is gone"
        except ResourceModifiedError:  # written again while read: this event is tried again
            return "Server: the file changed while it was read"
        # Written again over a file already indexed: the new file replaces the instance.
        method = "PUT" if name in self._indexed else "POST"
        try:
            status, _, payload = self.front.stow(method, self.base_url, None,
                                                 {"Content-Type": "application/dicom"}, data)
        except Exception as err:  # the engine away: the service's Server error, retried
            return f"Server: {err}"
        answer = json.loads(payload or b"{}")
        stored = dicom_values(answer, keys.REFERENCED_SOP_SEQUENCE)
        failed = dicom_values(answer, keys.FAILED_SOP_SEQUENCE)
        reasons = [first_value(item, keys.FAILURE_REASON) for item in failed if isinstance(item, dict)]
        if stored or reasons == [ALREADY_STORED]:
            item = (stored or failed)[0]
            self._indexed[name] = self._uids(data, first_value(item, keys.REFERENCED_SOP_INSTANCE_UID))
            return None
        if status >= 500:
            return f"Server: the engine answered {status}"
        comments = [first_value(item, keys.ERROR_COMMENT) for item in failed if isinstance(item, dict)]
        return f"User: not indexed (FailureReason {reasons[0] if reasons else status}" + (
            f": {comments[0]})" if comments and comments[0] else ")")

    def _uids(self, data: bytes, sop: str) -> tuple[str, str, str]:
        import io

        import pydicom

        header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        return str(header.StudyInstanceUID), str(header.SeriesInstanceUID), sop

    def _deleted(self, name: str) -> str | None:
        indexed = self._indexed.pop(name, None)
        if indexed is None:
            return None  # never indexed from this file: nothing to remove
        study, series, instance = indexed
        with contextlib.suppress(ApiError):  # deleted through DICOMweb already
            self.front.delete(["studies", study, "series", series, "instances", instance])
        return None

    def _refuse(self, message, event: dict, reason: str) -> None:
        record = {"reason": reason, "subject": event.get("subject"), "type": event.get("type"),
                  "data": event.get("data"), "messageId": message.id}
        self.poison.send_message(base64.b64encode(json.dumps(record).encode()).decode())
        self.queue.delete_message(message)


def indexing_of(env, service_name: str) -> dict | None:
    """What LocalIndexer needs from a stack for one DICOM service, when its Data Lake indexes."""
    from hdsctl import naming

    service = next(s for s in env.spec.dicom_services if s.name == service_name)
    storage = service.storage
    if storage is None or storage.indexing is None:
        return None
    return {"file_system": storage.file_system_name,
            "folder": naming.dicom_storage_folder(env.workspace_name, service_name),
            "queue": storage.indexing.queue,
            "admits": indexing_filter(storage.file_system_name, env.workspace_name, service_name,
                                      storage.indexing.partitions),
            # the local stand-in for Event Grid has one subscription for the whole folder
            "subscription": naming.indexing_subscription_name(service_name, None),
            "dead_letters": storage.indexing.dead_letter.container if storage.indexing.dead_letter else None}
