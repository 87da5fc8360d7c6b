"""Run as a script with `python -S` (nothing but the standard library and tools/arm-models/site):
checks ARM request bodies against Microsoft's SDK models generated from the ARM REST specs, for
the API versions the program speaks. Reads {"checks": [{"name", "model", "body"}]} on stdin and
prints {"<name>": [problems]}: a property the spec does not know, one it makes read-only, a value
outside its enum, a required one missing.

- azure-mgmt-healthcareapis 3.0.0b1 (2025-04-01-preview, TypeSpec models): `model` is
  "healthcareapis.<Model>", the body is the ARM JSON of a PUT;
- azure-mgmt-eventgrid 10.4.0 (2025-02-15, AutoRest models): `model` is "eventgrid.<Model>",
  the body is a resource's inputs as pulumi-azure-native takes them (flattened: no `properties`
  level, the discriminated destinations' own `properties` flattened too).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "arm-models" / "site"))

MODEL = re.compile(r"_models\.(\w+)")
WRITABLE = {"create", "update"}


def _enum_values(enum_class) -> set[str]:
    return {str(member.value).lower() for member in enum_class}


# -- healthcareapis: TypeSpec models (rest_field with visibility) --------------------------

def _typespec_problems(models, model_class, body: dict, where: str) -> list[str]:
    import enum

    model_class()  # the models work out their fields on first use
    fields = {field._rest_name: (attr, field) for attr, field in model_class._attr_to_rest_field.items()}
    hints = {}
    for klass in reversed(model_class.__mro__):
        hints.update(getattr(klass, "__annotations__", {}))
    problems = []
    for key, value in body.items():
        path = f"{where}.{key}"
        if key not in fields:
            problems.append(f"{path}: not in the {model_class.__name__} model")
            continue
        attr, field = fields[key]
        if field._visibility and not WRITABLE & set(field._visibility):
            problems.append(f"{path}: read-only in the spec")
            continue
        hint = str(hints.get(attr, ""))
        named = [getattr(models, name) for name in MODEL.findall(hint) if hasattr(models, name)]
        for kind in named:
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                if str(value).lower() not in _enum_values(kind):
                    problems.append(f"{path}: {value!r} is not one of {sorted(_enum_values(kind))}")
            elif isinstance(value, dict) and hint.startswith(("typing.Optional[dict", "dict")):
                for item_key, item in value.items():
                    problems += _typespec_problems(models, kind, item, f"{path}[{item_key}]")
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        problems += _typespec_problems(models, kind, item, f"{path}[{index}]")
            elif isinstance(value, dict):
                problems += _typespec_problems(models, kind, value, path)
    return problems


# -- eventgrid: AutoRest models (msrest attribute maps) -------------------------------------

def _autorest_problems(models, model_class, body: dict) -> list[str]:
    from azure.mgmt.eventgrid._serialization import last_restapi_key_transformer

    model = model_class.from_dict(body)
    problems = _required(model, model_class.__name__)
    back = model.as_dict(keep_readonly=False, key_transformer=last_restapi_key_transformer)
    problems += _dropped(body, back, model_class.__name__)
    return problems + _autorest_enums(models, model, model_class.__name__)


def _required(model, where: str) -> list[str]:
    """The spec's required properties (the only constraints these Event Grid models carry; this
    SDK generation leaves checking them to the service)."""
    problems = []
    for attr, rules in type(model)._validation.items():
        if rules.get("required") and not rules.get("constant") and getattr(model, attr, None) is None:
            problems.append(f"{where}.{attr}: required by the spec")
    for attr in type(model)._attribute_map:
        value = getattr(model, attr, None)
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "_attribute_map"):
                problems += _required(item, f"{where}.{attr}")
    return problems


def _dropped(sent, kept, where: str) -> list[str]:
    """What the model did not keep: unknown to the spec, or read-only in it."""
    problems = []
    if isinstance(sent, dict) and isinstance(kept, dict):
        for key, value in sent.items():
            if key not in kept:
                problems.append(f"{where}.{key}: not in the spec (or read-only there)")
            else:
                problems += _dropped(value, kept[key], f"{where}.{key}")
    elif isinstance(sent, list) and isinstance(kept, list):
        for index, (one, other) in enumerate(zip(sent, kept, strict=False)):
            problems += _dropped(one, other, f"{where}[{index}]")
    return problems


def _autorest_enums(models, model, where: str) -> list[str]:
    import enum

    problems = []
    hints = getattr(type(model).__init__, "__annotations__", {})
    for attr in type(model)._attribute_map:
        value = getattr(model, attr, None)
        if value is None:
            continue
        path = f"{where}.{attr}"
        for name in MODEL.findall(str(hints.get(attr, ""))):
            kind = getattr(models, name, None)
            if isinstance(kind, type) and issubclass(kind, enum.Enum) and isinstance(value, str) \
                    and value.lower() not in _enum_values(kind):
                problems.append(f"{path}: {value!r} is not one of {sorted(_enum_values(kind))}")
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "_attribute_map"):
                problems += _autorest_enums(models, item, path)
    return problems


def main() -> int:
    from azure.mgmt.eventgrid import models as eventgrid
    from azure.mgmt.healthcareapis import models as healthcareapis

    packages = {"healthcareapis": healthcareapis, "eventgrid": eventgrid}
    found = {}
    for check in json.load(sys.stdin)["checks"]:
        package, _, name = check["model"].partition(".")
        models = packages[package]
        model_class = getattr(models, name)
        if package == "healthcareapis":
            found[check["name"]] = _typespec_problems(models, model_class, check["body"], name)
        else:
            found[check["name"]] = _autorest_problems(models, model_class, check["body"])
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
