"""`hdsctl tags plan|sync|status`: the reconciler for the DICOM services of one stack."""

from __future__ import annotations

import json
import sys

from hdsctl.arguments import add_budget_arguments, budget_of, positive_seconds
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_FAILED, EXIT_OK, BadInput, HdsctlError

HEADINGS = {"plan": "Plan", "sync": "Sync", "status": "Status"}


class UsageError(BadInput):
    """The tag commands were asked for something they cannot do."""


def run(args) -> int:
    from hdsctl.environment.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    services = env.spec.dicom_services
    if args.service:
        services = [s for s in services if s.name == args.service]
        if not services:
            names = ", ".join(s.name for s in env.spec.dicom_services) or "none"
            raise UsageError(f"stack {env.name} has no DICOM service {args.service!r} (services: {names})")
    if not services:
        raise UsageError(f"stack {env.name} declares no DICOM services")
    if args.url and len(services) > 1:
        raise UsageError("--url points at one service: name it with --service")

    reports, codes = [], []
    for service in services:
        url = args.url or env.dicom_url(service.name)
        desired = [tag.definition() for tag in service.extended_query_tags]
        report, code = _one_service(args, service.name, url, desired, tuple(env.spec.trusted_hosts))
        reports.append(report)
        codes.append(code)
        if not args.json:
            from hdsctl.tags.report import render

            print(render(report, f"{HEADINGS[args.tags_command]} of stack '{env.name}'"))
    code = _combined(codes)
    if args.json:
        print(json.dumps({"stack": env.name, "command": args.tags_command,
                          "services": [r.to_json() for r in reports], "exitCode": code}, indent=2))
    return code


def _combined(codes: list[int]) -> int:
    for code in (EXIT_BAD_INPUT, EXIT_FAILED, EXIT_DRIFT):
        if code in codes:
            return code
    return EXIT_OK


def _one_service(args, name, url, desired, trusted_hosts):
    from hdsctl.dicom.client import DicomClient
    from hdsctl.tags.apply import PollSchedule, SyncTimeout, read_state, sync
    from hdsctl.tags.plan import TagPlan, plan
    from hdsctl.tags.report import ServiceReport, tag_states

    # --deadline bounds the whole run, --timeout each request's retries. A refused URL (InsecureUrl) or a
    # missing credential is bad input: it propagates.
    client = DicomClient(url, trusted_hosts=trusted_hosts, budget=budget_of(args))
    report = ServiceReport(name, url, desired, [], TagPlan())
    prune, allow_replace = getattr(args, "prune", False), getattr(args, "allow_replace", False)
    try:
        if args.tags_command == "sync":
            try:
                outcome = sync(client, desired, prune=prune, allow_replace=allow_replace,
                               timeout=args.deadline, schedule=PollSchedule(first=args.poll_interval),
                               progress=_progress_printer())
                report.plan, report.taken = outcome.final_plan, outcome.taken
                report.operations = outcome.operations_followed
                report.states = tag_states(desired, outcome.observed, client)
                return report, EXIT_OK if report.converged and not report.failed else EXIT_FAILED
            except SyncTimeout as err:
                report.failure = str(err)
        # plan, status, and a sync that timed out: report what the service holds now
        observed, operations = read_state(client)
        report.plan = plan(desired, observed, operations, prune=prune, allow_replace=allow_replace)
        report.states = tag_states(desired, observed, client)
        if report.failure:
            return report, EXIT_FAILED
        if report.converged:
            return report, EXIT_OK
        if args.tags_command == "status" and any(s.failed for s in report.states):
            return report, EXIT_FAILED
        return report, EXIT_DRIFT
    except HdsctlError as err:
        report.failure = str(err)
        return report, err.exit_code if err.exit_code == EXIT_BAD_INPUT else EXIT_FAILED
    finally:
        client.close()


def _progress_printer():
    """Progress of a reindex on stderr: one updating line on a terminal, steps elsewhere."""
    tty = sys.stderr.isatty()
    last = {}

    def show(state) -> None:
        step = state.percent_complete if tty else state.percent_complete // 25 * 25
        key = (state.id, state.status, step)
        if last.get(state.id) == key:
            return
        last[state.id] = key
        line = f"  reindex {state.id[:8]}… {state.status} {state.percent_complete}%"
        if tty:
            end = "\n" if state.terminal else ""
            print(f"\r{line:<60}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def add_arguments(commands) -> None:
    tags = commands.add_parser("tags", help="extended query tags: plan, sync, status")
    sub = tags.add_subparsers(dest="tags_command", metavar="ACTION", required=True)
    for name, text in (("plan", "what sync would change (exit 2 on drift)"),
                       ("sync", "make the service hold the declared tags, following the reindex"),
                       ("status", "each declared tag's state, errors included")):
        parser = sub.add_parser(name, help=text)
        parser.add_argument("--stack", required=True, help="environment, e.g. dev")
        parser.add_argument("--service", help="only this DICOM service of the stack")
        parser.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
        if name in {"plan", "sync"}:
            parser.add_argument("--prune", action="store_true",
                                help="also remove tags on the service that are not declared")
            parser.add_argument("--allow-replace", action="store_true",
                                help="re-add tags whose vr, level or privateCreator changed (reindexes)")
        add_budget_arguments(parser, deadline=3600 if name == "sync" else 300,
                             deadline_help="; reindexing included" if name == "sync" else "")
        if name == "sync":
            parser.add_argument("--poll-interval", type=positive_seconds, default=1.0,
                                help="first wait between operation polls, growing to 15 s")
        parser.set_defaults(handler=run)
