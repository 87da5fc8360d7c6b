"""Link what the events in a Storage queue name: each message is deleted only after FHIR holds
its study's current state; a message that fails N times, or is not a DICOM event of this
service, goes to `<queue>-poison` with the reason.

Events only say which study changed. The linker reads each study's current metadata, so the
messages of one batch are grouped by study and each study is written once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.exceptions import AzureError

from hdsctl import naming
from hdsctl.dicom.errors import DicomApiError, ServiceUnreachable
from hdsctl.dicom.web import is_uid
from hdsctl.events import schema
from hdsctl.events.tail import decode_message, event_type, message_text
from hdsctl.fhir.client import FhirError, FhirUnreachable
from hdsctl.fhir.link import LinkResult, line_of

BATCH = 32
# A queue message is at most 64 KiB; the poison record adds the reason and ids, and the queue
# client encodes it (base64 adds a third), so content over this is kept by reference.
POISON_CONTENT_BYTES = 40_000
RETRY_AFTER_SECONDS = 30  # with --follow: how long a failed message stays hidden before the next try
HIDDEN_SECONDS = 120  # how long a received message stays hidden while this run works on it


@dataclass
class QueueRun:
    results: list[LinkResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    poisoned: list[str] = field(default_factory=list)
    messages_done: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def link_from_queue(linker, queue, poison, *, serves: Callable[[str | None], bool], max_tries: int,
                    follow: bool, emit: Callable[[str], None], stop: threading.Event | None = None,
                    idle_seconds: float = 2.0, retry_after: int = RETRY_AFTER_SECONDS) -> QueueRun:
    """`queue` and `poison` are azure.storage.queue QueueClients; `serves(host)` says whether an
    event's serviceHostName is the DICOM service being linked."""
    run, tried = QueueRun(), set()
    stop = stop or threading.Event()
    while not stop.is_set():
        if not follow:
            # A peek leaves dequeue counts as they are: stop once only this run's failures are left.
            waiting = list(queue.peek_messages(max_messages=BATCH))
            if not waiting or all(m.id in tried for m in waiting):
                return run
        try:
            batch = list(queue.receive_messages(max_messages=BATCH, visibility_timeout=HIDDEN_SECONDS))
        except AzureError as err:
            if not follow:
                raise
            # Following runs for hours: Storage throttling or a passing outage is waited out.
            emit(f"waiting  the queue did not answer ({str(err).splitlines()[0][:160]}); trying again")
            stop.wait(idle_seconds * 5)
            continue
        # Following, a failed message is tried again when it reappears; in one run, only once.
        fresh = batch if follow else [m for m in batch if m.id not in tried]
        fresh_ids = {m.id for m in fresh}
        for message in batch:
            if message.id not in fresh_ids:  # the next run has it
                queue.update_message(message, visibility_timeout=0)
        if not fresh:
            if not follow:
                return run
            stop.wait(idle_seconds)
            continue
        by_study: dict[str, list] = {}
        for message in fresh:
            tried.add(message.id)
            study, why = _study_of(message, serves)
            if study is None:
                _poison(queue, poison, message, why, run, emit)
            elif message.dequeue_count > max_tries:
                _poison(queue, poison, message, f"failed {message.dequeue_count - 1} times", run, emit)
            else:
                by_study.setdefault(study, []).append(message)
        _link_batch(linker, queue, by_study, run, emit, stop, follow, retry_after)
    return run


def _link_batch(linker, queue, by_study: dict[str, list], run: QueueRun, emit, stop: threading.Event,
                follow: bool, retry_after: int) -> None:
    """Each study once; its messages are deleted once FHIR holds its state, left queued if not."""
    for study in list(by_study):
        messages = by_study.pop(study)
        try:
            result = (_link_waiting(linker, study, queue, messages, by_study, emit, stop, retry_after)
                      if follow else linker.link(study))
        except (FhirError, FhirUnreachable, DicomApiError, ServiceUnreachable) as err:
            run.failures.append(f"{study}: {err}")
            emit(f"failed   {study}: {str(err).splitlines()[0]} (its {len(messages)} message(s) stay queued)")
            for message in messages:
                queue.update_message(message, visibility_timeout=retry_after if follow else 0)
            continue
        run.results.append(result)
        emit(line_of(result))
        for message in messages:  # FHIR holds the study's state: now the events may go
            queue.delete_message(message)
            run.messages_done += 1


def _busy(err: Exception) -> bool:
    """Throttled, a server error, or out of reach: the service will be back; the study is not at fault."""
    if isinstance(err, (FhirUnreachable, ServiceUnreachable)):
        return True
    status = getattr(err, "status", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _link_waiting(linker, study: str, queue, messages: list, waiting: dict[str, list], emit,
                  stop: threading.Event, longest_wait: float):
    """Link a study, waiting out a busy or absent service for as long as it takes (following runs
    for hours: throttling must not poison the events). Meanwhile the study's messages and those
    of the batch still to do stay hidden, so no other reader takes them and their dequeue counts
    do not grow."""
    wait = 1.0
    while True:
        try:
            return linker.link(study)
        except (FhirError, FhirUnreachable, DicomApiError, ServiceUnreachable) as err:
            if not _busy(err) or stop.is_set():
                raise
            emit(f"waiting  {study}: {str(err).splitlines()[0][:200]}; trying again in {wait:.0f} s")
            for hidden in (messages, *waiting.values()):
                _keep_hidden(queue, hidden)
            stop.wait(wait)
            wait = min(wait * 2, longest_wait)


def _keep_hidden(queue, messages: list) -> None:
    """Hide the messages again from now; each update gives a new receipt, kept in the list."""
    messages[:] = [queue.update_message(message, visibility_timeout=HIDDEN_SECONDS) for message in messages]


def _study_of(message, serves) -> tuple[str | None, str]:
    """The study a message names, or why the message is not one this linker can use. Every
    field is checked for its type before it is used: a queue takes any text."""
    body = decode_message(message.content)
    if body is None:
        return None, "not an event (neither base64 JSON nor JSON)"
    kind = event_type(body)
    data = body.get("data")
    if kind not in naming.DICOM_EVENT_TYPES:
        return None, f"not a DICOM image event ({kind[:80] or 'no type'})"
    if not isinstance(data, dict):
        return None, f"a {kind} event whose data is {type(data).__name__}, not an object"
    study, host = data.get(schema.STUDY), data.get(schema.HOST)
    if not isinstance(host, str) or not serves(host):
        return None, f"an event of another DICOM service ({str(host)[:120]})"
    if not is_uid(study):
        return None, f"{schema.STUDY} {str(study)[:80]!r} is not a DICOM UID"
    return study, ""


def _poison(queue, poison, message, reason: str, run: QueueRun, emit) -> None:
    """Copy the message to the poison queue with the reason, then delete it. A message too large
    to copy whole goes by reference (its id and size). If Storage refuses the copy, the message
    stays where it is and the run goes on."""
    text = message_text(message.content)
    record = {"reason": reason, "messageId": message.id, "dequeueCount": message.dequeue_count,
              "poisonedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if len(text.encode()) <= POISON_CONTENT_BYTES:
        record["content"] = text
    else:
        record["contentBytes"] = len(text.encode())
        record["note"] = "too large to copy here: the content is not kept"
    try:
        poison.send_message(json.dumps(record))
        queue.delete_message(message)
    except AzureError as err:
        run.failures.append(f"message {message.id}: could not be poisoned ({str(err).splitlines()[0][:200]})")
        emit(f"failed   message {message.id}: {reason}; the poison queue refused it, so it stays queued")
        return
    run.poisoned.append(f"{message.id}: {reason}")
    emit(f"poison   message {message.id}: {reason}")
