"""The local platform: real engines behind the Azure services' behaviour, on loopback only.
Orthanc stores and serves DICOM behind `dicomweb` (STOW rules, QIDO by extended query tags,
expiry, events) and `server` (framing, faults, the tag API's route table in `tag_api`); Azurite
is the Storage account (queues, dead letters, the Data Lake with `indexer`); `medplum` is FHIR:
Medplum's engine behind a front with Azure's rules. `commands` is `hdsctl emulator`. Nothing
outside this package imports it but the CLI's command registration."""
