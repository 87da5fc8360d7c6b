"""Capacity and cost of DICOM storage: projection from a workload profile, and measurement."""
