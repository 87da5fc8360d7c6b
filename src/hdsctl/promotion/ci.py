"""Pipeline definitions for the stacks present, rendered from jinja2 templates in the package.

Templates use [[ ]] and [% %] so GitHub's and Azure DevOps' own ${{ }} expressions pass through.
Environment names are checked where they enter (`hdsctl.naming`); the templates still write
them as quoted YAML strings, and hand them to shell steps through environment variables, so a
name never becomes code in a `run:` line or a `${{ }}` expression.

Each rendered file starts with a header holding the hash of the rest, so `ci init` can tell a
file it rendered from one a person has edited since, and leaves the latter alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from hdsctl import naming
from hdsctl.environment.load import Environment
from hdsctl.errors import BadInput

HEADER = re.compile(r"^# hdsctl ci init: rendered, sha256 ([0-9a-f]{64})\n")


class PipelineFileEdited(BadInput):
    """A pipeline file edited since it was rendered."""

TIER_ORDER = {"dev": 0, "test": 1, "prod": 2}
FILES = {
    "github": {
        ".github/workflows/hdsctl-pull-request.yml": "github/pull-request.yml.j2",
        ".github/workflows/hdsctl-deploy.yml": "github/deploy.yml.j2",
        ".github/workflows/hdsctl-role-audit.yml": "github/role-audit.yml.j2",
    },
    "azure-devops": {
        "azure-pipelines.yml": "azure-devops/azure-pipelines.yml.j2",
        "azure-pipelines-role-audit.yml": "azure-devops/role-audit.yml.j2",
    },
}


@dataclass(frozen=True)
class Stage:
    name: str
    tier: str
    next: str | None
    dicom_services: tuple[str, ...] = ()

    @property
    def ident(self) -> str:
        """The name as a job or stage identifier (Azure DevOps allows letters, digits and _)."""
        return self.name.replace("-", "_")

    @property
    def next_ident(self) -> str | None:
        return self.next.replace("-", "_") if self.next else None


def promotion_chain(environments: list[Environment]) -> list[Stage]:
    """Deployable environments from dev to prod; stacks that point at local emulators are left out."""
    deployable = [env for env in environments if not _uses_local_services(env)]
    ordered = sorted(deployable, key=lambda env: (TIER_ORDER[env.spec.tier], env.name))
    return [Stage(env.name, env.spec.tier, ordered[i + 1].name if i + 1 < len(ordered) else None,
                  tuple(service.name for service in env.spec.dicom_services))
            for i, env in enumerate(ordered)]


def _uses_local_services(env: Environment) -> bool:
    from urllib.parse import urlsplit

    from hdsctl.endpoints import is_loopback

    return any(service.url and is_loopback(urlsplit(service.url).hostname or "")
               for service in env.spec.dicom_services)


def render_pipelines(provider: str, environments: list[Environment]) -> dict[str, str]:
    from jinja2 import Environment as Jinja
    from jinja2 import PackageLoader, StrictUndefined

    jinja = Jinja(loader=PackageLoader("hdsctl.promotion", "templates"), undefined=StrictUndefined,
                  variable_start_string="[[", variable_end_string="]]",
                  block_start_string="[%", block_end_string="%]",
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    jinja.filters["yaml"] = _yaml_string
    chain = promotion_chain(environments)
    for stage in chain:  # a second check of what the loader already refused
        problem = naming.stack_name_problem(stage.name)
        if problem:
            raise ValueError(problem)
    return {path: with_header(jinja.get_template(template).render(chain=chain))
            for path, template in FILES[provider].items()}


def _yaml_string(value: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML): nothing in it is syntax."""
    return json.dumps(str(value), ensure_ascii=False)


def with_header(body: str) -> str:
    return f"# hdsctl ci init: rendered, sha256 {_digest(body)}\n{body}"


def edited_since_rendered(text: str) -> bool:
    """True for a file without the header, or whose content no longer matches it."""
    match = HEADER.match(text)
    return not match or match.group(1) != _digest(text[match.end():])


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
