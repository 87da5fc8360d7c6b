"""A DICOM service's own Data Lake and its online tiering."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from hdsctl import naming
from hdsctl.environment.fields import (
    Model,
    StorageAccountId,
    StorageAccountName,
    StorageChildName,
    SystemTopicId,
    env,
    promoted,
)


# A Storage queue name (3-63 lowercase letters, digits and single hyphens), short enough that
# `<queue>-poison`, where the service puts what it failed to index, is one too.
def _single_hyphens(name: str) -> str:
    if "--" in name:
        raise ValueError(f"{name!r}: a Storage queue name has no two hyphens in a row")
    return name


IndexingQueueName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,54}[a-z0-9]$"),
                              AfterValidator(_single_hyphens)]
PartitionName = Annotated[str, Field(pattern=rf"^{naming.PARTITION_NAME.pattern}$")]


class StorageTiering(Model):
    """Lifecycle rules on the service's own folder: online tiers only, by last access."""

    cool_after_days: int | None = Field(default=None, ge=1)
    cold_after_days: int | None = Field(default=None, ge=1)
    # Accepted as keys only to refuse them with the reason: the service cannot read archived
    # blobs, and deleting its files breaks its index (retention goes through DELETE: dicom expire).
    archive_after_days: int | None = None
    delete_after_days: int | None = None

    @model_validator(mode="after")
    def _online_tiers_only(self):
        if self.archive_after_days is not None:
            raise ValueError("archiveAfterDays is refused: the DICOM service cannot read archived blobs, so an "
                             "archived file breaks retrieval of its study; use coolAfterDays and coldAfterDays")
        if self.delete_after_days is not None:
            raise ValueError("deleteAfterDays is refused: deleting the service's files behind its back leaves "
                             "its index pointing at nothing; retention is done through the DELETE API "
                             "(hdsctl dicom expire, bounded by retention.minimumYears)")
        if self.cool_after_days is None and self.cold_after_days is None:
            raise ValueError("tiering needs coolAfterDays and/or coldAfterDays")
        if self.cool_after_days and self.cold_after_days and self.cold_after_days <= self.cool_after_days:
            raise ValueError("coldAfterDays must be later than coolAfterDays")
        return self


class IndexingDeadLetter(Model):
    """Where Event Grid writes Blob events it could not deliver to the queue (same account)."""

    container: StorageChildName


class StorageIndexing(Model):
    """Storage indexing (preview): the service indexes DICOM files written straight into its file
    system, from the account's Blob events that an Event Grid system topic on the account
    delivers to a queue in the same account."""

    # Promotion carries that indexing is on and what it covers; the rest names each environment's
    # own Storage objects.
    queue: IndexingQueueName = env("storage-events")
    # Only these data partitions' folders (the service needs dataPartitions); none: all of it.
    partitions: list[PartitionName] = promoted(default_factory=list)
    dead_letter: IndexingDeadLetter | None = env()
    # An account has one system topic: one made outside hdsctl is adopted by its id.
    system_topic_id: SystemTopicId | None = env()


class DicomStorage(Model):
    """The service's files in the hospital's own Data Lake (ADLS Gen2): an existing account by
    id, or one hdsctl creates with the service (`create: true`)."""

    create: bool = False
    # With create: the new account's name (default: st<prefix><env>dcm, cut to 24 characters).
    account_name: StorageAccountName | None = None
    storage_account_id: StorageAccountId | None = None
    file_system_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")] = "dicom"
    tiering: StorageTiering | None = None
    indexing: StorageIndexing | None = None

    @model_validator(mode="after")
    def _new_or_existing(self):
        if self.create and self.storage_account_id:
            raise ValueError("create: true makes a new account; storageAccountId names an existing one: "
                             "give one")
        if not self.create and not self.storage_account_id:
            raise ValueError("give storageAccountId (an existing ADLS Gen2 account) or create: true")
        if not self.create and self.account_name:
            raise ValueError("accountName names the account hdsctl creates (create: true)")
        if self.tiering and not self.create:
            raise ValueError("tiering is applied to an account hdsctl creates (create: true); an existing "
                             "account's lifecycle rules stay with its owners")
        return self
