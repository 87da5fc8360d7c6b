"""The one table of DICOM keys agrees with pydicom's data dictionary, entry by entry."""

from __future__ import annotations

from pydicom.datadict import keyword_for_tag

from hdsctl.dicom import keys


def test_every_key_is_its_keywords_tag_in_pydicoms_dictionary():
    wrong = {keyword: key for keyword, key in keys.KEYS.items() if keyword_for_tag(int(key, 16)) != keyword}
    assert not wrong


def test_every_constant_names_the_attribute_it_holds():
    constants = {name: value for name, value in vars(keys).items() if name.isupper() and isinstance(value, str)}
    assert constants
    for name, key in constants.items():
        assert name.replace("_", "").lower() == keyword_for_tag(int(key, 16)).lower(), name
