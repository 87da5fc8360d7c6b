"""The DICOM service data plane: extended query tags and operations."""
