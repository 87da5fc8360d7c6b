"""Run as a script in dicomweb-client's own environment (tools/dicomweb-client/site), as a
hospital's tool would run: store two in-memory CT images, search, retrieve, read series
metadata, delete; print what it saw as JSON for the test to judge."""

from __future__ import annotations

import datetime
import json
import sys

import numpy
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_image(study_uid: str, series_uid: str, number: int) -> Dataset:
    """An in-memory CT image, never written to a file: dicomweb-client encodes it itself."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientID, ds.PatientName = f"THIRDPARTY-{study_uid[-8:]}", "Third^Party"
    ds.StudyDate = datetime.date.today().strftime("%Y%m%d")
    ds.Modality, ds.InstanceNumber = "CT", number
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (numpy.arange(256, dtype=numpy.uint16) * number).tobytes()
    return ds


def main(url: str) -> dict:
    client = DICOMwebClient(url=url)
    study_uid, series_uid = generate_uid(), generate_uid()
    images = [ct_image(study_uid, series_uid, number) for number in (1, 2)]
    answer = client.store_instances(images)  # the STOW answer, as a pydicom Dataset
    found = client.search_for_studies(search_filters={"PatientID": images[0].PatientID})
    instances = client.search_for_instances(study_uid, series_uid)
    returned = client.retrieve_instance(study_uid, series_uid, images[1].SOPInstanceUID)
    metadata = client.retrieve_series_metadata(study_uid, series_uid)
    client.delete_study(study_uid)
    return {
        "study": study_uid, "patient": images[0].PatientID, "sent": [i.SOPInstanceUID for i in images],
        "stored": [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence],
        "failed": "FailedSOPSequence" in answer,
        "foundStudies": [study["0020000D"]["Value"][0] for study in found],
        "foundInstances": [item["00080018"]["Value"][0] for item in instances],
        "returned": returned.SOPInstanceUID,
        "samePixels": returned.PixelData == images[1].PixelData,
        "metadataNumbers": sorted(item["00200013"]["Value"][0] for item in metadata),
        "metadataPatients": sorted({item["00100020"]["Value"][0] for item in metadata}),
        "afterDelete": client.search_for_studies(search_filters={"StudyInstanceUID": study_uid}),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
