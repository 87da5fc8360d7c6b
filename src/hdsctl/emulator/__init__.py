"""A local stand-in for the DICOM service's extended-query-tag and operation API."""
