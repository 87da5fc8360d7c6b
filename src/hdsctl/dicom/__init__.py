"""The DICOM data plane. Spec slice: hdsctl.environment.dicom (and .storage for its Data Lake).
Client: `client` (the one DICOMweb client on hdsctl.dataplane: tags, STOW, QIDO, WADO, DELETE,
change feed) with `keys`, `multipart` and `web` for what goes on the wire, and `target` for
picking a stack's service. Planners and work: `upload` (archive scan, journal, checks against
the service), `expire` (plan, then apply), `smoke`. Commands: `commands`, `expire_command`.
Extended query tags are their own capability (hdsctl.tags) on the same client."""
