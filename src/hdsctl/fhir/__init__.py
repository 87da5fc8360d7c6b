"""FHIR: the client (on hdsctl.dataplane), the DICOM-to-ImagingStudy mapping, the linker, the
queue consumer for DICOM events (`from_queue`) and `hdsctl fhir link` / `studies`."""
