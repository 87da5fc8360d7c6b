"""Role audit of 3 environments x 5 scopes with 500 assignments per scope, against the local
HTTPS stand-in for Resource Manager (real azure-mgmt-authorization client).

Run from the repository root:  .venv/bin/python benchmarks/audit_roles.py [--runs 3]
Target: one list request per scope and page (atScope(), no subscription-wide list), scopes
read concurrently. Each run audits the three environments again.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the stand-in lives with the tests

from figures import check, figure  # noqa: E402
from support.arm_authorization import AuthorizationState, make_handler  # noqa: E402
from support.https import HttpsServer  # noqa: E402
from support.tokens import jwt  # noqa: E402

from hdsctl import roles  # noqa: E402
from hdsctl.cli import main as hdsctl  # noqa: E402
from hdsctl.environment.access import scopes  # noqa: E402
from hdsctl.environment.load import load_environment  # noqa: E402


def stack_document(env: str, subscription: str) -> dict:
    principals = {f"group-{i}": {"objectId": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{env}-{i}")), "type": "Group"}
                  for i in range(5)}
    services = ["dicom-a", "dicom-b", "fhir-a", "fhir-b"]
    assignments = [{"role": "DICOM Data Reader" if s.startswith("dicom") else "FHIR Data Reader",
                    "principal": f"group-{i}", "scope": s} for i, s in enumerate(services)]
    return {"config": {
        "hdsctl:tier": "prod", "hdsctl:location": "westeurope", "hdsctl:subscriptionId": subscription,
        "hdsctl:naming": {"prefix": "bench"},
        "hdsctl:dicomServices": [{"name": "dicom-a"}, {"name": "dicom-b"}],
        "hdsctl:fhirServices": [{"name": "fhir-a"}, {"name": "fhir-b"}],
        "hdsctl:principals": principals, "hdsctl:roleAssignments": assignments,
    }}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-scope", type=int, default=500)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    stacks = work / "stacks"
    stacks.mkdir()
    state = AuthorizationState(page_size=args.page_size)
    reader = roles.role_by_name("DICOM Data Reader").guid
    environments = ["dev", "staging", "prod"]
    for env in environments:
        subscription = str(uuid.uuid5(uuid.NAMESPACE_DNS, env))
        path = stacks / f"Pulumi.{env}.yaml"
        path.write_text(yaml.safe_dump(stack_document(env, subscription)))
        for scope in scopes(load_environment(path), subscription):
            for number in range(args.per_scope):
                state.assign(scope.id, reader, str(uuid.uuid4()), "Group", subscription,
                             f"{scope.name}-{number}")
    with HttpsServer(make_handler(state), work) as server:
        state.url = server.url
        os.environ["HDSCTL_ARM_TOKEN"] = os.environ["HDSCTL_GRAPH_TOKEN"] = jwt(server.url)
        os.environ["REQUESTS_CA_BUNDLE"] = str(server.cert_path)
        devnull = open(os.devnull, "w")  # noqa: SIM115
        stdout, sys.stdout = sys.stdout, devnull
        walls, lists, totals = [], [], []
        try:
            for _ in range(args.runs):
                before_lists, before_total = len(state.list_requests()), len(state.requests)
                start = time.perf_counter()
                for env in environments:
                    hdsctl(["--stacks-dir", str(stacks), "audit", "roles", "--stack", env, "--format", "json",
                            "--arm-url", server.url, "--no-names"])
                walls.append(time.perf_counter() - start)
                lists.append(len(state.list_requests()) - before_lists)
                totals.append(len(state.requests) - before_total)
        finally:
            sys.stdout = stdout
            devnull.close()
    # atScope() lists what applies at a scope, so a service's list also carries the workspace's
    # assignments: a service scope has twice as many rows, and pages, as the workspace.
    own_pages = -(-args.per_scope // args.page_size)
    service_pages = -(-2 * args.per_scope // args.page_size)
    minimum = len(environments) * (own_pages + 4 * service_pages)
    print(f"3 environments x 5 scopes x {args.per_scope} assignments, pages of {args.page_size}, "
          f"{args.runs} runs")
    print(figure("list requests", lists, "", digits=0))
    print(f"  (minimum: {minimum} = 3 x (workspace {own_pages} pages + 4 services x {service_pages} pages, "
          "each also listing the workspace's rows))")
    print(figure("total requests", totals, "", digits=0))
    print(figure("wall time, 3 environments", walls, "s"))
    print(check("one list request per scope and page", [count == minimum for count in lists]))


if __name__ == "__main__":
    main()
