"""`hdsctl dicom smoke`, `upload` and `expire` (its own module): the arguments, and the runs on
top of the one DICOMweb client."""

from __future__ import annotations

import json
from pathlib import Path

from hdsctl.arguments import add_budget_arguments, bounded_count, budget_of
from hdsctl.dicom.expire_command import add_expire_arguments
from hdsctl.dicom.target import client_for, service_of
from hdsctl.dicom.upload_command import add_upload_arguments
from hdsctl.errors import EXIT_FAILED, EXIT_OK


def add_arguments(commands) -> None:
    dicom = commands.add_parser("dicom", help="the DICOM data plane: smoke check, upload, expire")
    sub = dicom.add_subparsers(dest="dicom_command", metavar="ACTION", required=True)
    smoke = sub.add_parser("smoke", help="store, find, retrieve and delete a synthetic study")
    smoke.add_argument("--stack", required=True, help="environment, e.g. dev")
    smoke.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    smoke.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    smoke.add_argument("--keep", action="store_true",
                       help="leave the study on the service (no expiry, no delete)")
    add_budget_arguments(smoke, deadline=600)
    smoke.add_argument("--json", action="store_true", help="one JSON document on stdout")
    smoke.set_defaults(handler=run_smoke)

    add_upload_arguments(sub)
    add_expire_arguments(sub)
    _add_migrate_arguments(sub)


def _add_migrate_arguments(sub) -> None:
    migrate = sub.add_parser("migrate", help="a migration over many machines")
    actions = migrate.add_subparsers(dest="migrate_command", metavar="ACTION", required=True)
    plan = actions.add_parser("plan", help="render the migration as a Kubernetes Indexed Job, a pod per shard")
    plan.add_argument("--stack", required=True, help="environment, e.g. prod")
    plan.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    plan.add_argument("--source", required=True,
                      help="pvc://<claim>/<folder>: the archive on a volume; or a Blob container URL "
                           "(https://<account>.blob.core.windows.net/<container>/<folder>)")
    plan.add_argument("--shards", type=bounded_count(1, 10_000, "shards"), required=True)
    plan.add_argument("--parallelism", type=bounded_count(1, 10_000, "pods"),
                      help="pods at once (default: all)")
    plan.add_argument("--image", required=True, help="a container image with hdsctl installed")
    plan.add_argument("--journal-claim", required=True,
                      help="a PersistentVolumeClaim for the shards' journals")
    plan.add_argument("--client-id", required=True, help="the workload identity's application (client) id")
    plan.add_argument("--principal", help="the stack's alias for that identity: its grants are checked")
    plan.add_argument("--via", choices=("stow", "datalake"), default="stow")
    plan.add_argument("--reshard-from", type=bounded_count(1, 10_000, "shards"), metavar="M",
                      help="the archive was cut into M shards before (journals on the same claim): each pod "
                           "takes over what they recorded of its studies (--reshard)")
    plan.add_argument("--name", default="dicom-migration", help="the Job's name (default dicom-migration)")
    plan.add_argument("--report", action="store_true",
                      help="render instead the Job that merges the shards' journals into one report (apply "
                           "it once the migration's Job is complete: its log is the report, its success the "
                           "verdict)")
    plan.add_argument("--output", type=Path, help="write the manifests here instead of stdout")
    plan.set_defaults(handler=run_migrate_plan)


def run_smoke(args) -> int:
    from hdsctl.dicom.smoke import SmokeRun, render
    from hdsctl.environment.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    declared = [tag.definition() for tag in service.extended_query_tags]
    with client_for(env, service, args.url, budget_of(args)) as client:
        report = SmokeRun(client, declared, keep=args.keep).run()
    if args.json:
        print(json.dumps({"stack": env.name, "service": service.name, **report.to_json()}, indent=2))
    else:
        print(render(report, f"Smoke check of stack '{env.name}', DICOM service '{service.name}'"))
    return EXIT_OK if report.passed else EXIT_FAILED


def run_migrate_plan(args) -> int:
    import sys

    from hdsctl.dicom.migrate import Migration, manifests, parse_source, render
    from hdsctl.environment.load import load_environment, stack_file_path

    path = stack_file_path(args.stack, args.stacks_dir)
    env = load_environment(path)
    service = service_of(env, args.service)
    claim, folder = parse_source(args.source)
    migration = Migration(env.name, path, service.name, args.shards, args.parallelism or args.shards,
                          args.image, claim, folder, args.journal_claim, args.client_id, args.via, args.name,
                          reshard_from=args.reshard_from)
    text = render(manifests(migration, report=args.report))
    if args.output:
        from hdsctl.files import write_atomic

        write_atomic(args.output, text)
    else:
        print(text, end="")
    for line in _grants_needed(env, service, args):
        print(line, file=sys.stderr)
    if claim is None:
        print(f"note: the workers read {args.source}: grant their identity Storage Blob Data Reader on that "
              "container", file=sys.stderr)
    return EXIT_OK


def _grants_needed(env, service, args) -> list[str]:
    """What the workers' identity must hold, and whether the stack declares it."""
    if args.via == "datalake":
        return [f"note: the workers write into {service.name}'s Data Lake: grant their identity Storage "
                "Blob Data Contributor on its file system, Storage Queue Data Message Processor on its poison "
                "queue (a poison queue longer than 32 messages is read by receiving, not peeking) and Storage "
                "Blob Data Reader on its dead-letter container (outside the stack for now), and DICOM Data "
                "Reader on the service to follow the indexing"]
    wanted = (f"- {{role: DICOM Data Owner, principal: {args.principal or '<alias>'}, scope: {service.name}}}")
    if args.principal and any(a.principal == args.principal and a.role.lower() == "dicom data owner"
                              and a.scope in (service.name, "workspace") for a in env.spec.role_assignments):
        return [f"ok: {args.principal} holds DICOM Data Owner on {service.name} in {env.source}"]
    return [f"note: the workers' identity needs DICOM Data Owner on {service.name}: declare it in "
            f"{env.source} under hdsctl:principals and hdsctl:roleAssignments ({wanted}), so pulumi up "
            "grants it and hdsctl audit roles checks it"]
