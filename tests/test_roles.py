"""The one table of built-in roles agrees with Microsoft's published list (a fixture copied from
it, not the code's own table), name for name and GUID for GUID: a wrong GUID would grant, audit
or refuse the wrong role everywhere."""

from __future__ import annotations

from conftest import FIXTURES

from hdsctl import roles


def published() -> dict[str, str]:
    rows = [line.split("\t") for line in (FIXTURES / "builtin-roles.tsv").read_text().splitlines()
            if line and not line.startswith("#")]
    return {name: guid for name, guid in rows}


def test_every_role_hdsctl_knows_has_microsofts_guid():
    ours = {role.name: role.guid for role in roles.BUILTIN_ROLES}
    assert ours == published()


def test_roles_are_found_by_name_and_by_guid_as_published():
    for name, guid in published().items():
        assert roles.role_by_name(name.upper()).guid == guid
        assert roles.role_by_guid(guid).name == name
