"""Pipeline definitions for the stacks present, rendered from jinja2 templates in the package.

Templates use [[ ]] and [% %] so GitHub's and Azure DevOps' own ${{ }} expressions pass through.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdsctl.spec.load import Environment

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


def promotion_chain(environments: list[Environment]) -> list[Stage]:
    """Deployable environments from dev to prod; stacks that point at local emulators are left out."""
    deployable = [env for env in environments if not _uses_local_services(env)]
    ordered = sorted(deployable, key=lambda env: (TIER_ORDER[env.spec.tier], env.name))
    return [Stage(env.name, env.spec.tier, ordered[i + 1].name if i + 1 < len(ordered) else None)
            for i, env in enumerate(ordered)]


def _uses_local_services(env: Environment) -> bool:
    from urllib.parse import urlsplit

    from hdsctl.dicom.client import is_loopback

    return any(service.url and is_loopback(urlsplit(service.url).hostname or "")
               for service in env.spec.dicom_services)


def render_pipelines(provider: str, environments: list[Environment]) -> dict[str, str]:
    from jinja2 import Environment as Jinja
    from jinja2 import PackageLoader, StrictUndefined

    jinja = Jinja(loader=PackageLoader("hdsctl.promotion", "templates"), undefined=StrictUndefined,
                  variable_start_string="[[", variable_end_string="]]",
                  block_start_string="[%", block_end_string="%]",
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    chain = promotion_chain(environments)
    return {path: jinja.get_template(template).render(chain=chain)
            for path, template in FILES[provider].items()}
