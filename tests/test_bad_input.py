"""Bad input of every kind: a message that says what and where, exit 3, never a traceback."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from conftest import STACKS

from hdsctl.audit.arm import grants_privilege
from hdsctl.audit.report import markdown_cell
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK

HEAD = "config:\n  hdsctl:tier: dev\n  hdsctl:location: westeurope\n  hdsctl:naming: {prefix: bad}\n"


def validate(run_cli, tmp_path, text: str | bytes):
    folder = tmp_path / "stacks"
    folder.mkdir(exist_ok=True)
    path = folder / "Pulumi.bad.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return run_cli("--stacks-dir", str(folder), "validate", "--stack", "bad")


BILLION_LAUGHS = "config:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))


@pytest.mark.parametrize(("text", "message"), [
    (HEAD + "  hdsctl:tags:\n    1: numbered\n", "line 6: the key '1' is not text; quote it"),
    (HEAD + "  hdsctl:tags: {owner: a}\n  hdsctl:tags: {owner: b}\n",
     "line 6: the key 'hdsctl:tags' is given twice (lines 5 and 6); keep one"),
    (HEAD + "  deep: " + "[" * 60 + "]" * 60 + "\n", "nested more than 40 levels deep"),
    (BILLION_LAUGHS, "aliases expand this document to more than 100000 values"),
    ("config: [\n", "not valid YAML"),
    (HEAD + "  hdsctl:tags: {owner: a}\n" + "#" * (1 << 20), "larger than 1048576 bytes"),
    ("config:\n  hdsctl:tier: dev\n".encode("utf-16"), "not UTF-8 text"),
    ("config:\n  hdsctl:tier: dev\x00\n", "not valid YAML"),
])
def test_malformed_stack_files_are_named_with_their_line(run_cli, tmp_path, text, message):
    code, out, err = validate(run_cli, tmp_path, text)
    assert code == EXIT_BAD_INPUT
    assert message in err, err
    assert "Pulumi.bad.yaml" in err and "Traceback" not in out + err


def test_an_unquoted_hex_path_read_as_a_number_gets_a_hint(run_cli, tmp_path):
    text = HEAD + "  hdsctl:dicomServices:\n    - name: radiology\n      extendedQueryTags:\n" \
                  "        - {path: 00101010, level: Study}\n"
    code, _, err = validate(run_cli, tmp_path, text)
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:dicomServices[0].extendedQueryTags[0].path" in err
    assert "YAML read this tag path as the number" in err and "quote it" in err


def test_decimal_string_is_a_supported_extended_query_tag_vr(run_cli, tmp_path):
    text = HEAD + "  hdsctl:dicomServices:\n    - name: radiology\n      extendedQueryTags:\n" \
                  "        - {path: SliceThickness, level: Series}\n"
    code, out, err = validate(run_cli, tmp_path, text)
    assert code == EXIT_OK, err
    assert "ok  " in out


@pytest.mark.parametrize("args", [
    ["validate"],
    ["tags", "sync", "--stack", "local", "--poll-interval", "0"],
    ["tags", "sync", "--stack", "local", "--timeout", "-5"],
    ["tags", "plan", "--stack", "local", "--timeout", "soon"],
    ["emulator", "--port", "70000"],
    ["emulator", "--instances-per-second", "0"],
    ["preview", "--stack", "dev", "--frobnicate"],
    ["no-such-command"],
    # Issue 20, findings 15 and 16: each of these ended in a traceback or a wrong hint.
    ["fhir", "link", "--stack", "local", "--since", "99999999d"],
    ["fhir", "link", "--stack", "local", "--from-queue", "--max-tries", "0"],
    ["capacity", "--stack", "local", "--years", "100000"],
    ["events", "tail", "--stack", "local", "--max", "0"],
    ["dicom", "expire", "--stack", "local", "--older-than", "2025y"],
    ["dicom", "upload", ".", "--stack", "local", "--batch-mb", "1e308"],
    ["dicom", "smoke", "--stack", "local", "--deadline", "inf"],
])
def test_usage_errors_exit_3_not_the_drift_code(run_cli, args, capsys):
    with pytest.raises(SystemExit) as ended:
        run_cli(*args)
    assert ended.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_a_change_feed_start_before_1970_is_read_from_1970(monkeypatch):
    """Issue 20, finding 15: --since 0001-01-01 became a 400 (a year the change feed refuses)."""
    from hdsctl.fhir.commands import since_time

    assert since_time("0001-01-01") == "1970-01-01T00:00:00Z"
    assert since_time("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05Z"


def test_an_audit_with_no_stacks_is_an_error(run_cli, tmp_path):
    empty = tmp_path / "stacks"
    empty.mkdir()
    code, _, err = run_cli("--stacks-dir", str(empty), "audit", "matrix")
    assert code == EXIT_BAD_INPUT and "no stacks to compare" in err


def test_json_and_sarif_dash_mean_standard_output(run_cli):
    from conftest import PROGRAM

    code, out, _ = run_cli("--stacks-dir", str(STACKS), "preview", "--stack", "dev", "--program", str(PROGRAM),
                           "--sarif", "-")
    assert code == EXIT_OK and out.lstrip().startswith("{") and '"version": "2.1.0"' in out
    code, _, err = run_cli("--stacks-dir", str(STACKS), "preview", "--stack", "dev", "--program",
                           str(PROGRAM), "--json", "-", "--sarif", "-")
    assert code == EXIT_BAD_INPUT and "cannot both use standard output" in err


def _permission(actions, not_actions=()):
    return SimpleNamespace(actions=list(actions), not_actions=list(not_actions))


@pytest.mark.parametrize(("actions", "not_actions", "privileged"), [
    (["*"], [], True),
    (["*/write"], [], True),
    (["Microsoft.Authorization/*"], [], True),
    (["microsoft.authorization/roleassignments/*"], [], True),
    (["MICROSOFT.AUTHORIZATION/ROLEDEFINITIONS/WRITE"], [], True),
    (["Microsoft.Authorization/*/write"], [], True),
    (["*"], ["Microsoft.Authorization/*"], False),
    (["*/read"], [], False),
    (["Microsoft.HealthcareApis/workspaces/dicomservices/*"], [], False),
    (["Microsoft.Authorization/roleAssignments/read"], [], False),
])
def test_custom_roles_are_privileged_by_azures_wildcard_rules(actions, not_actions, privileged):
    assert grants_privilege([_permission(actions, not_actions)]) is privileged


def test_markdown_cells_cannot_break_the_table():
    cell = markdown_cell("Readers | Admins\nsecond line <img src=x onerror=alert(1)> `code`")
    assert "\n" not in cell and "<img" not in cell
    assert cell.count("|") == cell.count("\\|") == 1
    assert "\\`code\\`" in cell


def test_markdown_audit_report_escapes_directory_names(run_cli, tmp_path, monkeypatch):
    from support.arm_authorization import AuthorizationState, make_handler
    from support.https import HttpsServer
    from support.tokens import jwt
    from test_audit import seed_declared

    from hdsctl.environment.load import load_environment

    env = load_environment(STACKS / "Pulumi.prod.yaml")
    state = AuthorizationState()
    seed_declared(state, env)
    readers = env.spec.principals["radiology-readers"].object_id
    state.names[readers] = "Readers | Admins\n<b>bold</b>"
    with HttpsServer(make_handler(state), tmp_path) as server:
        state.url = server.url
        monkeypatch.setenv("HDSCTL_ARM_TOKEN", jwt(server.url))
        monkeypatch.setenv("HDSCTL_GRAPH_TOKEN", jwt(server.url))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
        code, out, _ = run_cli("--stacks-dir", str(STACKS), "audit", "roles", "--stack", "prod",
                               "--arm-url", server.url, "--graph-url", server.url, "--format", "markdown")
    assert code == EXIT_OK
    row = next(line for line in out.splitlines() if "Readers" in line)
    assert "Readers \\| Admins &lt;b&gt;bold&lt;/b&gt;" in row
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 5  # the name did not add a column
