"""Evaluate the policy pack offline over a recorded plan, through pulumi-policy's own
analyzer servicer (the code `pulumi preview --policy-pack` talks to), not a copy of it.

`_PolicyAnalyzerServicer` is private to pulumi-policy; requirements.lock pins the version
this was written against.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdsctl.preview import Plan, PlannedResource

PACK_NAME = "hdsctl-guardrails"
PACK_VERSION = "0.1.0"


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # mandatory | advisory
    resource: str | None  # "type::name", None for the whole stack
    message: str
    description: str


@dataclass
class PolicyReport:
    stack: str
    tier: str
    source: str
    violations: list[Violation]

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict:
        return {
            "stack": self.stack, "tier": self.tier, "source": self.source,
            "passed": not self.mandatory,
            "violations": [v.__dict__ for v in self.violations],
        }


def evaluate(plan: Plan, tier: str | None = None) -> PolicyReport:
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from hdsctl.policies.rules import POLICIES, pack_config

    tier = tier or plan.tier
    servicer = _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, POLICIES, EnforcementLevel.MANDATORY)
    levels = {"advisory": analyzer_pb2.ADVISORY, "mandatory": analyzer_pb2.MANDATORY,
              "disabled": analyzer_pb2.DISABLED}
    servicer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        name: analyzer_pb2.PolicyConfig(enforcementLevel=levels[value["enforcementLevel"]])
        for name, value in pack_config(tier).items()
    }), None)

    by_key = {r.key: r for r in plan.resources}

    def properties(resource: PlannedResource) -> struct_pb2.Struct:
        return json_format.ParseDict(resource.inputs, struct_pb2.Struct())

    def options(resource: PlannedResource):
        parent = by_key.get(resource.parent)
        return analyzer_pb2.AnalyzerResourceOptions(
            protect=resource.protect, ignoreChanges=resource.ignore_changes,
            deleteBeforeReplace=resource.delete_before_replace,
            parent=parent.urn if parent else "")

    def urns(keys) -> list[str]:
        return [by_key[k].urn for k in keys if k in by_key]

    diagnostics = []
    for resource in plan.resources:
        if resource.custom:
            request = analyzer_pb2.AnalyzeRequest(type=resource.type, properties=properties(resource),
                                                  urn=resource.urn, name=resource.name,
                                                  options=options(resource))
            for diagnostic in servicer.Analyze(request, None).diagnostics:
                # A resource policy's finding is about the resource analyzed.
                diagnostic.urn = diagnostic.urn or resource.urn
                diagnostics.append(diagnostic)
    stack = analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(
            type=r.type, properties=properties(r), urn=r.urn, name=r.name, options=options(r),
            parent=by_key[r.parent].urn if r.parent in by_key else "",
            dependencies=urns(r.depends_on),
            propertyDependencies={
                prop: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns(keys))
                for prop, keys in r.property_dependencies.items()
            },
        )
        for r in plan.resources
    ])
    diagnostics += servicer.AnalyzeStack(stack, None).diagnostics

    key_by_urn = {r.urn: r.key for r in plan.resources}
    names = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory"}
    violations = [
        Violation(d.policyName, names.get(d.enforcementLevel, "advisory"), key_by_urn.get(d.urn),
                  d.message.removeprefix(f"{d.description}\n"), d.description)
        for d in diagnostics
    ]
    violations.sort(key=lambda v: (v.level != "mandatory", v.resource or "", v.policy))
    return PolicyReport(plan.stack, tier, plan.source, violations)


def render(report: PolicyReport) -> str:
    verdict = "passes every mandatory policy" if not report.mandatory else (
        f"FAILS {len(report.mandatory)} mandatory policy check(s)")
    lines = [f"Policies for stack '{report.stack}' (tier {report.tier}): {verdict}; "
             f"{len(report.violations) - len(report.mandatory)} advisory finding(s)"]
    current = object()
    for violation in report.violations:
        if violation.resource != current:
            current = violation.resource
            lines.append(f"  {violation.resource or 'stack'}")
        lines.append(f"    [{violation.level}] {violation.policy}: {violation.message}")
    return "\n".join(lines)
