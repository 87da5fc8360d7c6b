"""Read the events waiting in a subscription's Storage queue, or its dead letters, decoded.

Peeking leaves the queue as it is (a Storage queue shows at most its first 32 messages that
way); `consume` receives and deletes each message only after it was printed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from hdsctl import naming
from hdsctl.errors import BadInput, HdsctlError
from hdsctl.events import schema

PEEK_LIMIT = 32  # Storage queues show no more than this without receiving


class EventsUsageError(BadInput):
    """The events commands were asked for something the stack does not have."""


class EventsReadFailed(HdsctlError):
    """Storage refused or did not answer; the message says which and what to check."""


def read_guarded(read, what: str, needs: str) -> int:
    """Run a read; Storage's errors become one clear message (no traceback)."""
    from hdsctl.dataplane import storage_errors

    with storage_errors(what, needs, EventsReadFailed):
        return read()


@dataclass
class Event:
    """One delivered event, or a message that is not one (its text kept, flagged)."""

    body: dict | None
    raw: str = ""
    message_id: str | None = None
    dequeue_count: int | None = None
    blob: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        return event_type(self.body or {})

    def line(self) -> str:
        if self.body is None:
            return f"(not an event) message {self.message_id}: {self.raw[:120]!r}"
        body, data = self.body, self.body.get("data") or {}
        when = body.get("time") or body.get("eventTime") or "?"
        kind = self.event_type.removeprefix(naming.HEALTH_EVENT_PREFIX)
        if schema.is_dicom_data(data):
            what = (f"seq={data.get(schema.SEQUENCE)} study={data.get(schema.STUDY)} "
                    f"series={data.get(schema.SERIES)} instance={data.get(schema.INSTANCE)} "
                    f"partition={data.get(schema.PARTITION)} host={data.get(schema.HOST)}")
        elif "resourceFhirId" in data:
            what = (f"{data.get('resourceType')}/{data.get('resourceFhirId')} "
                    f"version={data.get('resourceVersionId')} host={data.get('resourceFhirAccount')}")
        else:
            what = f"subject={body.get('subject')}"
        why = self.extra.get("deadLetterReason")
        reason = f"  dead-lettered: {why}" if why else ""
        return f"{when}  {kind}  {what}{reason}"

    def to_json(self) -> dict:
        return {"event": self.body, **({"notAnEvent": self.raw} if self.body is None else {}),
                "messageId": self.message_id, "dequeueCount": self.dequeue_count, "blob": self.blob,
                **self.extra}


def event_type(body: dict) -> str:
    """The type of an event in either schema: CloudEvents (`type`) or Event Grid (`eventType`)."""
    return str(body.get("type") or body.get("eventType") or "")


def message_text(content: str | bytes) -> str:
    return content.decode(errors="replace") if isinstance(content, bytes) else str(content)


def decode_message(content: str | bytes) -> dict | None:
    """Event Grid writes each event's JSON base64-encoded into the queue message."""
    text = message_text(content)
    for candidate in (_unbase64(text), text):
        if candidate is None:
            continue
        try:
            body = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(body, dict):
            return body
    return None


def _unbase64(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class StorageTarget:
    """Where a subscription's queue or dead letters are, and how to authenticate there."""

    account_url: str
    name: str  # queue or container

    def client(self, kind: type, budget=None):
        """A QueueClient or ContainerClient for it, on the one data-plane client shape."""
        from hdsctl.dataplane import storage_client

        return storage_client(kind, self.account_url, self.name, budget=budget)


def account_url(account_name: str, service: str, override: str | None,
                trusted_hosts: tuple[str, ...] | list[str] = ()) -> str:
    """The account URL of a queue or blob service: the stack's, or `override` once the Storage
    token may go there (an Azure Storage host, loopback for Azurite, or a trusted host)."""
    from hdsctl.endpoints import EndpointRefused, check_storage_url

    url = (override or f"https://{account_name}.{service}.core.windows.net").rstrip("/")
    try:
        check_storage_url(url, trusted_hosts)
    except EndpointRefused as err:
        raise EventsUsageError(str(err)) from None
    return url


def read_queue(target: StorageTarget, *, consume: bool, limit: int, emit) -> int:
    """Emit each event (peeked, or received and then deleted); how many were read."""
    from azure.storage.queue import QueueClient

    client = target.client(QueueClient)
    read = 0
    with client:
        if not consume:
            for message in client.peek_messages(max_messages=min(limit, PEEK_LIMIT)):
                emit(_queued(message))
                read += 1
            return read
        while read < limit:
            batch = list(client.receive_messages(max_messages=min(32, limit - read), visibility_timeout=60))
            if not batch:
                return read
            for message in batch:
                emit(_queued(message))
                client.delete_message(message)  # only once it has been written out
                read += 1
    return read


def _queued(message) -> Event:
    return Event(decode_message(message.content), message_text(message.content), message.id,
                 message.dequeue_count)


def read_dead_letters(target: StorageTarget, subscription: str, *, limit: int, emit) -> int:
    """Event Grid writes `<container>/<SUBSCRIPTION NAME UPPERCASE>/<y>/<m>/<d>/<h>/<id>.json`, each
    blob a JSON array of events with the reason they were dead-lettered."""
    from azure.storage.blob import ContainerClient

    client = target.client(ContainerClient)
    read = 0
    with client:
        for blob in client.list_blobs(name_starts_with=f"{subscription.upper()}/"):
            payload = client.download_blob(blob.name).readall()
            try:
                events = json.loads(payload)
            except ValueError:
                emit(Event(None, payload[:200].decode(errors="replace"), blob=blob.name))
                read += 1
                continue
            for body in events if isinstance(events, list) else [events]:
                extra = {key: body.pop(key) for key in ("deadLetterReason", "deliveryAttempts",
                                                        "lastDeliveryOutcome", "lastHttpStatusCode",
                                                        "publishTime", "lastDeliveryAttemptTime")
                         if isinstance(body, dict) and key in body}
                emit(Event(body if isinstance(body, dict) else None, str(body)[:200], blob=blob.name,
                           extra=extra))
                read += 1
                if read >= limit:
                    return read
    return read
