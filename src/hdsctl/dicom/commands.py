"""`hdsctl dicom smoke`: the data-plane commands on top of the one DICOMweb client."""

from __future__ import annotations

import json

from hdsctl.arguments import positive_seconds
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, HdsctlError

DEFAULT_PARTITION = "Microsoft.Default"


class DicomUsageError(HdsctlError):
    exit_code = EXIT_BAD_INPUT


def add_arguments(commands) -> None:
    dicom = commands.add_parser("dicom", help="the DICOM data plane: smoke check")
    sub = dicom.add_subparsers(dest="dicom_command", metavar="ACTION", required=True)
    smoke = sub.add_parser("smoke", help="store, find, retrieve and delete a synthetic study")
    smoke.add_argument("--stack", required=True, help="environment, e.g. dev")
    smoke.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    smoke.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    smoke.add_argument("--keep", action="store_true",
                       help="leave the study on the service (no expiry, no delete)")
    smoke.add_argument("--timeout", type=positive_seconds, default=300,
                       help="seconds for the whole check, retries included (default 300)")
    smoke.add_argument("--json", action="store_true", help="one JSON document on stdout")
    smoke.set_defaults(handler=run_smoke)


def service_of(env, name: str | None):
    services = env.spec.dicom_services
    if name:
        match = [s for s in services if s.name == name]
        if not match:
            names = ", ".join(s.name for s in services) or "none"
            raise DicomUsageError(f"stack {env.name} has no DICOM service {name!r} (services: {names})")
        return match[0]
    if len(services) != 1:
        raise DicomUsageError(f"stack {env.name} declares {len(services)} DICOM services: "
                              "name one with --service")
    return services[0]


def client_for(env, service, url: str | None, timeout: float):
    from hdsctl.dicom.client import DicomClient
    from hdsctl.retry import Budget

    return DicomClient(url or env.dicom_url(service.name), trusted_hosts=tuple(env.spec.trusted_hosts),
                       budget=Budget.until(timeout),
                       partition=DEFAULT_PARTITION if service.data_partitions else None)


def run_smoke(args) -> int:
    from hdsctl.dicom.smoke import SmokeRun, render
    from hdsctl.spec.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    declared = [tag.definition() for tag in service.extended_query_tags]
    with client_for(env, service, args.url, args.timeout) as client:
        report = SmokeRun(client, declared, keep=args.keep).run()
    if args.json:
        print(json.dumps({"stack": env.name, "service": service.name, **report.to_json()}, indent=2))
    else:
        print(render(report, f"Smoke check of stack '{env.name}', DICOM service '{service.name}'"))
    return EXIT_OK if report.passed else EXIT_FAILED
