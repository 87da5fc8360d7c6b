"""`hdsctl tags plan|sync|status`: the reconciler for the DICOM services of one stack."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hdsctl.arguments import add_budget_arguments, budget_of, count, port, positive_seconds
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


def add_emulator_arguments(commands) -> None:
    parser = commands.add_parser("emulator", help="the local DICOM service on loopback")
    parser.add_argument("--engine", choices=("orthanc", "synthetic"), default="orthanc",
                        help="orthanc: Debian's Orthanc stores and serves real DICOM files behind the Azure "
                             "behaviour (default); synthetic: the tag API over generated instances only")
    parser.add_argument("--data", type=Path, help="with --engine orthanc: keep the files in this folder "
                                                  "(default: a temporary one, removed on exit)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8042, help="port (0 picks a free one; default 8042)")
    parser.add_argument("--instances", type=count, default=2000, help="synthetic instances to reindex")
    parser.add_argument("--instances-per-second", type=positive_seconds, default=500.0,
                        help="reindex speed (instances per second, above 0)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", action="store_true",
                        help="with --engine orthanc: also start Azurite (the Azure Storage emulator) and "
                             "deliver "
                             "DicomImageCreated/Deleted events into the queues of the stack's subscriptions")
    parser.add_argument("--fhir", action="store_true",
                        help="also start the local FHIR stand-in (the FHIR R4 rules the linker uses; fhirUrl "
                             "in --url-file)")
    parser.add_argument("--fhir-port", type=port, default=0, help="with --fhir: its port (default: a free one)")
    parser.add_argument("--stack", default="local", help="with --events: whose hdsctl:events to follow "
                                                         "(default: local)")
    parser.add_argument("--service", help="with --events: which DICOM service of the stack this is "
                                          "(default: its first)")
    parser.add_argument("--url-file", type=Path,
                        help="write every local endpoint here as JSON once listening (dicomUrl; with --events "
                             "queueUrl, blobUrl and storageConnectionString)")
    parser.set_defaults(handler=run_emulator)


def run_emulator(args) -> int:
    from hdsctl.endpoints import is_loopback

    if not is_loopback(args.host):
        raise UsageError(f"the emulator has no authentication: bind it to loopback, not {args.host}")
    if args.events and args.engine != "orthanc":
        raise UsageError("--events needs --engine orthanc: events follow what is really stored and deleted")
    routes, dead_letter_container = _event_routes(args) if args.events else (None, None)
    engine = None
    if args.engine == "orthanc":
        from hdsctl.emulator.orthanc import OrthancEngine

        engine = OrthancEngine(args.data)
    storage = fhir = None
    try:
        if routes is not None:
            from hdsctl.emulator.azurite import Azurite

            storage = Azurite().start()
        if args.fhir:
            from hdsctl.emulator.fhir import FhirStandIn

            try:
                fhir = FhirStandIn(args.host, args.fhir_port).start()
            except OSError as err:
                raise UsageError(f"the FHIR stand-in cannot listen on {args.host}:{args.fhir_port}: "
                                 f"{err.strerror}; "
                                 "pick another --fhir-port (0 takes a free one)") from None
        return _serve(args, engine, storage, routes, dead_letter_container, fhir)
    finally:
        for started in (fhir, storage):
            if started is not None:
                started.stop()


def _serve(args, engine, storage, routes, dead_letter_container, fhir) -> int:
    import contextlib
    import signal
    import socket
    import threading

    from hdsctl.emulator.server import Emulator
    from hdsctl.emulator.store import Knobs

    try:
        emulator = Emulator(args.host, args.port, instances=args.instances, seed=args.seed, engine=engine,
                            knobs=Knobs(instances_per_second=args.instances_per_second))
    except socket.gaierror:
        raise UsageError(f"cannot listen on {args.host}: the local service listens on IPv4 loopback; "
                         "use --host 127.0.0.1 (or another 127.x.y.z address)") from None
    except OSError as err:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {err.strerror}; "
                         "pick another --port (0 takes a free one)") from None
    endpoints = {"dicomUrl": emulator.url}
    if fhir is not None:
        endpoints["fhirUrl"] = fhir.url
    if storage is not None:
        from hdsctl.emulator.events import EventPublisher

        emulator.events = EventPublisher(storage.connection_string, routes, emulator.url.split("://", 1)[1],
                                         dead_letter_container)
        endpoints.update(queueUrl=storage.queue_url, blobUrl=storage.blob_url,
                         storageConnectionString=storage.connection_string)
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):  # both stop the engines with the emulator
        signal.signal(signal_number, lambda *_: stop.set())
    emulator.start()
    try:
        what = ("Orthanc-backed DICOM service" if engine else
                f"DICOM tag emulator ({args.instances} synthetic instances)")
        print(f"{what} listening on {emulator.url}; Ctrl-C stops it", flush=True)
        if fhir is not None:
            print(f"FHIR stand-in listening on {fhir.url}", flush=True)
        if storage is not None:
            queues = ", ".join(sorted({r.queue for r in routes})) or "none"
            print(f"events: Azurite queues at {storage.queue_url} (queues: {queues})", flush=True)
        if args.url_file:
            from hdsctl.files import write_atomic

            # Written whole, once everything listens: a reader polling for it never sees half.
            write_atomic(args.url_file, json.dumps(endpoints, indent=2) + "\n")
        while not stop.wait(0.5):
            if engine is not None and not engine.alive():
                print(f"the local DICOM engine (Orthanc) stopped unexpectedly ({engine.stopped_because()}); "
                      "stopping the local service", file=sys.stderr, flush=True)
                return EXIT_FAILED
        return EXIT_OK
    finally:
        emulator.stop()
        if args.url_file:
            with contextlib.suppress(FileNotFoundError):  # its endpoints are gone: so is the file
                Path(args.url_file).unlink()


def _event_routes(args):
    """The stack's subscriptions this local service delivers to queues; notes on the others."""
    from hdsctl.emulator.events import routes_of
    from hdsctl.environment.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    names = [s.name for s in env.spec.dicom_services]
    service = args.service or (names[0] if names else None)
    if service not in names:
        raise UsageError(f"stack {env.name} has no DICOM service {service!r} "
                         f"(services: {', '.join(names) or 'none'})")
    routes, notes = routes_of(env, service)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    events = env.spec.events
    return routes, (events.dead_letter.container if events else "event-dead-letters")
