"""FHIR: the client and the ImagingStudy linker."""
