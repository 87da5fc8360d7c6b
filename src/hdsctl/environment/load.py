"""Read an environment from a stack file (CLI) or from Pulumi config (inside `pulumi up`).

Both paths end in `environment_from_config`, so there is one parser and one set of messages.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hdsctl import naming
from hdsctl.environment.model import CONFIG_KEYS, EnvironmentSpec
from hdsctl.environment.references import check_references
from hdsctl.errors import SpecError, SpecProblem

NAMESPACE = "hdsctl"
STACKS_DIR = Path("stacks")
SECRET_PLACEHOLDER = "[secret]"


@dataclass(frozen=True)
class Environment:
    """A validated spec together with the names derived from it."""

    name: str
    spec: EnvironmentSpec
    source: str

    @property
    def workspace_name(self) -> str:
        return self.spec.workspace.name or naming.default_workspace_name(
            self.spec.naming.prefix, self.name
        )

    @property
    def resource_group_name(self) -> str:
        return self.spec.resource_group.name or naming.default_resource_group_name(
            self.spec.naming.prefix, self.name
        )

    @property
    def events_storage_account_name(self) -> str:
        events = self.spec.events
        return (events and events.storage_account_name) or naming.default_events_storage_account_name(
            self.spec.naming.prefix, self.name)

    def events_account_name(self, account_id: str | None) -> str:
        """The account a queue or dead-letter container of hdsctl:events lives in: the one named
        by id, else the environment's events account."""
        return naming.arm_name(account_id) if account_id else self.events_storage_account_name

    def dicom_storage_account_name(self, service) -> str | None:
        storage = service.storage
        if storage is None:
            return None
        if not storage.create:
            return naming.arm_name(storage.storage_account_id)
        return storage.account_name or naming.default_dicom_storage_account_name(
            self.spec.naming.prefix, self.name, service.name)

    def dicom_url(self, service_name: str) -> str:
        service = next(s for s in self.spec.dicom_services if s.name == service_name)
        return service.url or naming.dicom_url(self.workspace_name, service.name)

    def fhir_url(self, service_name: str) -> str:
        service = next((s for s in self.spec.fhir_services if s.name == service_name), None)
        return (service and service.url) or naming.fhir_url(self.workspace_name, service_name)

    @property
    def resource_tags(self) -> dict[str, str]:
        return {"environment": self.name, "managed-by": "hdsctl", **self.spec.tags}


@dataclass(frozen=True)
class StackFile:
    """A parsed `stacks/Pulumi.<env>.yaml`: every config key, with `secure:` values opaque."""

    path: Path
    config: dict[str, Any]
    secret_keys: frozenset[str]

    @property
    def environment_name(self) -> str:
        return stack_name_of(self.path)

    def namespaced(self) -> dict[str, Any]:
        """The `hdsctl:` keys, without the namespace."""
        prefix = f"{NAMESPACE}:"
        return {k[len(prefix):]: v for k, v in self.config.items() if k.startswith(prefix)}


def stack_name_of(path: Path) -> str:
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))):
        raise SpecError(str(path), [SpecProblem("", "stack files are named Pulumi.<env>.yaml")])
    return checked_stack_name(name[len("Pulumi."):].rsplit(".", 1)[0], str(path))


def checked_stack_name(name: str, source: str) -> str:
    """Every environment name is checked where it enters: a file name, --stack, the engine."""
    problem = naming.stack_name_problem(name)
    if problem:
        raise SpecError(source, [SpecProblem("", problem)])
    return name


def stack_file_path(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    path = stacks_dir / naming.stack_file_name(stack)
    checked_stack_name(stack, str(path))
    return path


def stack_files(stacks_dir: Path = STACKS_DIR) -> list[Path]:
    """Every stack file in the folder, named well or not (validation says which are not)."""
    return sorted(stacks_dir.glob("Pulumi.*.yaml"))


def list_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return [stack_name_of(p) for p in stack_files(stacks_dir)]


def read_stack_file(path: Path) -> StackFile:
    from hdsctl.environment.yaml_text import parse_yaml

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SpecError(source, [SpecProblem("", "no such stack file")]) from None
    except UnicodeDecodeError as err:
        raise SpecError(source, [SpecProblem("", f"not UTF-8 text: {err.reason}")]) from None
    except OSError as err:
        raise SpecError(source, [SpecProblem("", f"cannot read: {err.strerror}")]) from None
    document = parse_yaml(text, source)
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SpecError(source, [SpecProblem("", "a stack file is a mapping with a 'config' key")])
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise SpecError(source, [SpecProblem("config", "must be a mapping of key: value")])
    secret_keys = frozenset(
        key for key, value in config.items()
        if isinstance(value, dict) and set(value) == {"secure"}
    )
    return StackFile(path, config, secret_keys)


def load_environment(path: Path) -> Environment:
    return environment_from_stack_file(read_stack_file(path))


def environment_from_stack_file(stack_file: StackFile) -> Environment:
    path = stack_file.path
    secret_problems = [
        SpecProblem(key, "is a secure: value; the environment spec holds no secrets, so keep "
                         "this value outside the hdsctl: namespace")
        for key in sorted(stack_file.secret_keys) if key.startswith(f"{NAMESPACE}:")
    ]
    if secret_problems:
        raise SpecError(str(path), secret_problems)
    return environment_from_config(stack_file.environment_name, stack_file.namespaced(), str(path))


def environment_from_pulumi_config() -> Environment:
    """Inside a Pulumi program: the same spec, from the engine's config for this stack."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    values = {}
    for key in CONFIG_KEYS:
        raw = config.get(key)
        if raw is not None:
            values[key] = _decode_config_value(raw)
    stack = pulumi.get_stack()
    return environment_from_config(stack, values, str(stack_file_path(stack)))


def _decode_config_value(raw: str) -> Any:
    """The engine hands structured values over as JSON, scalars as plain strings."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, (dict, list)) else raw


def environment_from_config(name: str, values: dict[str, Any], source: str) -> Environment:
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    problems = [
        SpecProblem(f"{NAMESPACE}:{key}", f"unknown key; allowed keys: {', '.join(CONFIG_KEYS)}")
        for key in unknown
    ]
    known = {key: value for key, value in values.items() if key in CONFIG_KEYS}
    try:
        spec = EnvironmentSpec.model_validate(known)
    except ValidationError as err:
        problems += [_problem_from_pydantic(error) for error in err.errors()]
        raise SpecError(source, problems) from None
    problems += check_references(spec)
    if problems:
        raise SpecError(source, problems)
    return Environment(name, spec, source)


def _problem_from_pydantic(error: dict) -> SpecProblem:
    loc = tuple(error["loc"])
    path = _format_path(loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] in {"model_type", "dict_type"}:
        message = f"must be a mapping, got {type(error['input']).__name__}"
    return SpecProblem(path, message)


def _format_path(loc: tuple) -> str:
    if not loc:
        return f"{NAMESPACE}:"
    text = f"{NAMESPACE}:{loc[0]}"
    for part in loc[1:]:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part == "[key]":
            text += " (key)"
        else:
            text += f".{part}"
    return text


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys the model at `loc` accepts, for 'unknown key' messages."""
    annotation: Any = EnvironmentSpec
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int) or _is_mapping(annotation):
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        field = next(
            (f for n, f in annotation.model_fields.items() if (f.alias or n) == part), None
        )
        if field is None:
            return []
        annotation = field.annotation
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (dict, typing.Mapping)


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] down to the type that carries fields."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            non_none = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = non_none[0] if len(non_none) == 1 else annotation
            if len(non_none) != 1:
                return annotation
        else:
            return annotation
