"""Where a file copied into the service's Data Lake stands, from what Azure itself records:
- indexed: the service answers for its instance (QIDO, one listing per study);
- refused: `<queue>-poison` holds its event, with the service's reason when it gives one;
- never delivered: Event Grid dead-lettered its event (the storage-indexing subscription could
  not write to the queue, most often because the account's system topic lacks its role).
Read only: nothing here removes a message, a dead letter or an instance.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from hdsctl import roles
from hdsctl.dicom.journal import FAILED, STORED
from hdsctl.dicom.upload_report import Outcome
from hdsctl.events.schema import blob_subject

# A peek sees a queue's first 32 messages only: a longer poison queue is read by receiving its
# messages, which hides them from other readers for this long (plus a second per 100 messages, so
# a long queue is read in one pass); none is deleted.
PEEK_LIMIT = 32
POISON_HIDE_SECONDS = 5
NO_REASON = ("refused by the service's indexing; its reason is in AHDSDicomDiagnosticLogs "
             "(OperationName index-storage)")


@dataclass(frozen=True)
class DataLakeTarget:
    account_url: str
    file_system: str
    folder: str  # AHDS/<workspace>/dicom/<service>/[<partition>/]
    queue: str
    queue_url: str  # the account's queue service, where `<queue>-poison` is read
    subscription: str = ""  # the storage-indexing event subscription, whose dead letters are read
    dead_letters: str | None = None  # the container Event Grid dead-letters into, when declared

    def name_of(self, study_uid: str, sop_uid: str) -> str:
        return f"{self.folder}hdsctl-upload/{study_uid}/{sop_uid}.dcm"

    def journal_url(self, service_root: str) -> str:
        """What the journal is bound to: a STOW journal (bound to the service alone) is refused."""
        return f"{service_root} via datalake {self.account_url}/{self.file_system}"


class IndexingFollower:
    def __init__(self, target: DataLakeTarget, budget=None):
        self.target, self.budget = target, budget
        # event subject → (why, the eTag of the file version the event was for, when it says)
        self._poisoned: dict[str, tuple[str, str | None]] = {}
        self._poison_count: int | None = None
        self._undelivered: dict[str, tuple[str, str | None]] = {}
        self._dead_letters_read: set[str] = set()

    def settle(self, dicom, waiting: dict[str, Outcome], studies: dict[str, str]) -> list[Outcome]:
        """The waiting files (by SOP instance UID) whose fate is known now."""
        settled = self._indexed(dicom, waiting, studies)
        done = {o.sop_uid for o in settled}
        rest = {sop: o for sop, o in waiting.items() if sop not in done and sop in studies}
        if rest:
            by_subject = {blob_subject(self.target.file_system, self.target.name_of(studies[sop], sop)): o
                          for sop, o in rest.items()}
            failures = {subject: why for subject, why in self._failures().items() if subject in by_subject}
            current = self._etags([subject for subject, (_, _, etag) in failures.items() if etag])
            for subject, (reason, detail, etag) in failures.items():
                if etag and current.get(subject) != etag:
                    continue  # about a version of the file written over since (--upsert): not this one's
                outcome = by_subject[subject]
                settled.append(Outcome(outcome.key, FAILED, outcome.sop_uid, reason, detail, outcome.size))
        return settled

    @staticmethod
    def _indexed(dicom, waiting: dict[str, Outcome], studies: dict[str, str]) -> list[Outcome]:
        found = []
        for study in {studies.get(sop) for sop in waiting} - {None}:
            held = dicom.instances_held(study)
            found += [Outcome(o.key, STORED, sop, size=o.size) for sop, o in waiting.items()
                      if sop in held and studies.get(sop) == study]
        return found

    def _failures(self) -> dict[str, tuple[str, str, str | None]]:
        self._read_poison()
        if self.target.dead_letters:
            self._read_dead_letters()
        failures = {subject: ("not-delivered", *found) for subject, found in self._undelivered.items()}
        failures.update({subject: ("not-indexed", *found) for subject, found in self._poisoned.items()})
        return failures

    def _etags(self, subjects: list[str]) -> dict[str, str]:
        """The eTag of each file as it is in the Data Lake now (one read per file named in a failure)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContainerClient

        from hdsctl.dataplane import storage_client

        found = {}
        if not subjects:
            return found
        with storage_client(ContainerClient, self.target.account_url, self.target.file_system,
                            budget=self.budget) as container:
            for subject in subjects:
                try:
                    properties = container.get_blob_client(subject.split("/blobs/", 1)[1]).get_blob_properties()
                except ResourceNotFoundError:
                    continue
                found[subject] = _etag(properties.etag)
        return found

    # -- <queue>-poison ------------------------------------------------------------------

    def _read_poison(self) -> None:
        """Every message of the poison queue, read again only when its count changed; what was
        read before is kept (a poison message is never taken off the queue by the service)."""
        from azure.storage.queue import QueueClient

        from hdsctl.dataplane import storage_client

        with storage_client(QueueClient, self.target.queue_url, f"{self.target.queue}-poison",
                            budget=self.budget) as poison:
            count = poison.get_queue_properties().approximate_message_count
            if count == self._poison_count:
                return
            if (count or 0) <= PEEK_LIMIT:  # a peek sees them all, and a reader role suffices
                messages = poison.peek_messages(max_messages=PEEK_LIMIT)
            else:
                hide = POISON_HIDE_SECONDS + count // 100
                messages = poison.receive_messages(messages_per_page=PEEK_LIMIT, visibility_timeout=hide)
            seen: set[str] = set()
            for message in messages:
                if message.id in seen:  # the pass outlived the hiding: everything is read
                    break
                seen.add(message.id)
                record = decoded(message.content)
                subject = str(record.get("subject") or "")
                if subject:
                    reason = str(record.get("reason") or NO_REASON)[:300]
                    self._poisoned[subject] = (reason, _event_etag(record))
            # Some hidden by another reader (a worker following its shard): read again next time.
            self._poison_count = count if len(seen) >= (count or 0) else None

    # -- Event Grid's dead letters -------------------------------------------------------

    def _read_dead_letters(self) -> None:
        """Event Grid writes what it could not deliver as `<SUBSCRIPTION>/y/m/d/h/<id>.json` (the
        subscription's name in capitals), each a JSON array of events with why it gave up."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContainerClient

        from hdsctl.dataplane import storage_client

        with storage_client(ContainerClient, self.target.account_url, self.target.dead_letters,
                            budget=self.budget) as container:
            try:
                names = [blob.name for blob in
                         container.list_blobs(name_starts_with=f"{self.target.subscription.upper()}/")]
            except ResourceNotFoundError:
                return  # no dead letter yet: Event Grid makes the container's first blob
            for name in names:
                if name in self._dead_letters_read:
                    continue
                try:
                    events = json.loads(container.download_blob(name).readall())
                except ValueError:
                    events = []
                for event in events if isinstance(events, list) else [events]:
                    if isinstance(event, dict) and event.get("subject"):
                        self._undelivered[str(event["subject"])] = (self.undelivered_reason(event),
                                                                    _event_etag(event))
                self._dead_letters_read.add(name)

    def undelivered_reason(self, event: dict) -> str:
        fields = {str(key).lower(): value for key, value in event.items()}
        status = fields.get("lasthttpstatuscode", fields.get("lasthttpcode"))
        outcome = fields.get("lastdeliveryoutcome") or "not delivered"
        why = (f"Event Grid could not deliver its event to the queue {self.target.queue} ({outcome}"
               + (f", HTTP {status}" if status else "")
               + (f"; {fields['deadletterreason']}" if fields.get("deadletterreason") else "") + ")")
        if str(status) in ("401", "403"):
            sender = roles.sender_role(roles.STORAGE_QUEUE)
            why += (f": the Storage account's system topic identity needs {sender.name} ({sender.guid}) on "
                    "the account "
                    "(`hdsctl audit` names the missing grant); once granted, --upsert --retry-failed "
                    "writes the file again for a new event")
        else:
            why += ": once the queue takes events again, --upsert --retry-failed writes the file again"
        return why


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _event_etag(event: dict) -> str | None:
    """A Blob event's data names the eTag of the version written (quoted or not)."""
    data = event.get("data")
    return _etag(str(data.get("eTag") or "")) if isinstance(data, dict) else None


def decoded(content) -> dict:
    """A queue message's JSON: base64-encoded as Event Grid and the service write it, or plain."""
    text = content.decode() if isinstance(content, bytes) else str(content)
    for attempt in (lambda: base64.b64decode(text, validate=True).decode(), lambda: text):
        try:
            value = json.loads(attempt())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        return value if isinstance(value, dict) else {}
    return {}
