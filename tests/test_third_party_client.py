"""A DICOMweb client no one here wrote (dicomweb-client, as used by hospital tooling) against the
local service: it must store, find, return and delete as it would against Azure's."""

from __future__ import annotations

import datetime

import numpy
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

dicomweb_api = pytest.importorskip("dicomweb_client.api")


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


@pytest.fixture
def third_party(local_dicom):
    return dicomweb_api.DICOMwebClient(url=f"{local_dicom.url}/v2")


def test_dicomweb_client_stores_finds_returns_and_deletes(third_party):
    study_uid, series_uid = generate_uid(), generate_uid()
    images = [ct_image(study_uid, series_uid, number) for number in (1, 2)]

    answer = third_party.store_instances(images)  # the STOW answer, as a pydicom Dataset
    stored = {item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence}
    assert stored == {image.SOPInstanceUID for image in images} and "FailedSOPSequence" not in answer

    found = third_party.search_for_studies(search_filters={"PatientID": images[0].PatientID})
    assert [study["0020000D"]["Value"][0] for study in found] == [study_uid]
    instances = third_party.search_for_instances(study_uid, series_uid)
    assert {i["00080018"]["Value"][0] for i in instances} == stored

    returned = third_party.retrieve_instance(study_uid, series_uid, images[1].SOPInstanceUID)
    assert returned.SOPInstanceUID == images[1].SOPInstanceUID
    assert returned.PixelData == images[1].PixelData

    metadata = third_party.retrieve_series_metadata(study_uid, series_uid)
    assert sorted(m["00200013"]["Value"][0] for m in metadata) == [1, 2]
    assert all(m["00100020"]["Value"][0] == images[0].PatientID for m in metadata)

    third_party.delete_study(study_uid)
    assert third_party.search_for_studies(search_filters={"StudyInstanceUID": study_uid}) == []
