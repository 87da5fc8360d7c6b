"""`hdsctl fhir link`: every stored study as an ImagingStudy in FHIR, kept in step."""

from __future__ import annotations

import datetime
import json
import sys

from hdsctl.arguments import add_budget_arguments, bounded_count, budget_of
from hdsctl.errors import EXIT_FAILED, EXIT_OK, BadInput


class LinkUsageError(BadInput):
    pass


def add_arguments(commands) -> None:
    fhir = commands.add_parser("fhir", help="FHIR: link DICOM studies as ImagingStudy resources")
    sub = fhir.add_subparsers(dest="fhir_command", metavar="ACTION", required=True)
    link = sub.add_parser("link", help="write each study's ImagingStudy (one FHIR transaction per study)")
    link.add_argument("--stack", required=True, help="environment, e.g. dev")
    link.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    source = link.add_mutually_exclusive_group(required=True)
    source.add_argument("--study", nargs="+", metavar="UID", help="these studies")
    source.add_argument("--since", type=since_time, metavar="TIME",
                        help="the studies the DICOM change feed names from TIME on (ISO 8601, e.g. "
                             "2026-11-01T00:00:00Z, or a duration back from now: 90m, 24h, 7d)")
    source.add_argument("--from-queue", action="store_true",
                        help="the studies named by the events in the service's subscription queue")
    link.add_argument("--follow", action="store_true", help="with --from-queue: keep reading until Ctrl-C")
    link.add_argument("--subscription", help="with --from-queue: which subscription's queue")
    link.add_argument("--max-tries", type=bounded_count(1, 1000, "tries"), default=5,
                      help="with --from-queue: a message failing this many times goes to <queue>-poison")
    link.add_argument("--url", help="DICOM data-plane URL, overriding the stack's")
    link.add_argument("--fhir-url", help="FHIR service URL, overriding the stack's")
    link.add_argument("--queue-url", help="with --from-queue: the queue service's account URL")
    add_budget_arguments(link, deadline_help="; --follow runs until stopped, waiting out throttling")
    link.add_argument("--dry-run", action="store_true", help="say what would be written; write nothing")
    link.add_argument("--json", action="store_true", help="one JSON report on stdout")
    link.set_defaults(handler=run_link)

    studies = sub.add_parser("studies", help="the ImagingStudy resources in the FHIR service, one line each")
    studies.add_argument("--stack", required=True, help="environment, e.g. dev")
    studies.add_argument("--service", help="the DICOM service whose fhirLink names the FHIR service")
    studies.add_argument("--fhir-url", help="FHIR service URL, overriding the stack's")
    studies.add_argument("--json", action="store_true", help="the resources as a JSON list")
    studies.set_defaults(handler=run_studies)


def run_link(args) -> int:
    from hdsctl.dicom.target import client_for, service_of
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.fhir.client import FhirClient
    from hdsctl.fhir.link import Linker, line_of

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    if service.fhir_link is None:
        raise LinkUsageError(f"DICOM service {service.name} of stack {env.name} has no fhirLink: declare "
                             "fhirLink: {fhirService: <name>} on it in the stack file")
    if args.from_queue and args.dry_run:
        raise LinkUsageError("--dry-run reads studies named with --study; a queue's events are consumed")
    fhir_url = args.fhir_url or env.fhir_url(service.fhir_link.fhir_service)
    budget = budget_of(args)
    fhir_client = FhirClient(fhir_url, trusted_hosts=tuple(env.spec.trusted_hosts), budget=budget)
    with client_for(env, service, args.url, budget) as dicom, fhir_client as fhir:
        linker = Linker(dicom, fhir, service.fhir_link.patient_identifier_system, dry_run=args.dry_run)
        emit = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
        if args.from_queue:
            report = _from_queue(args, env, service, linker, emit)
        else:
            studies = args.study if args.study else _changed_studies(dicom, args.since, emit)
            results = []
            for study in studies:
                result = linker.link(study)
                results.append(result)
                emit(line_of(result))
            report = {"results": [r.to_json() for r in results], "failures": [], "poisoned": []}
        report.update(stack=env.name, service=service.name, fhir=fhir_url, transactions=linker.transactions,
                      fhirRequests=fhir.requests)
    ok = not report["failures"] and not any(r["action"] == "skipped" for r in report["results"])
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        counts = {}
        for result in report["results"]:
            counts[result["action"]] = counts.get(result["action"], 0) + 1
        summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing to link"
        print(f"{summary}; {len(report['failures'])} failed, {len(report['poisoned'])} poisoned; "
              f"{linker.transactions} FHIR transaction(s), {fhir.requests} FHIR request(s)", file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def since_time(text: str) -> str:
    """ISO 8601 (UTC when no zone is given), or a duration back from now (90m, 24h, 7d)."""
    import argparse
    import re

    now = datetime.datetime.now(datetime.UTC)
    match = re.fullmatch(r"(\d{1,9})([mhd])", text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        back = datetime.timedelta(**{unit: int(match.group(1))})
        if back > now - EPOCH:
            raise argparse.ArgumentTypeError(f"{text!r} reaches back before 1970: no DICOM service has changes "
                                             "that old; give a shorter duration")
        moment = now - back
    else:
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give an ISO 8601 time (2026-11-01T00:00:00Z) or a "
                                             "duration (90m, 24h, 7d)") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    if moment > now:
        raise argparse.ArgumentTypeError(f"{text!r} is in the future")
    moment = max(moment, EPOCH)  # the change feed starts in 1970 at the earliest
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _changed_studies(dicom, since: str, emit) -> list[str]:
    """Studies in the change feed from `since` on, each once, in the order they first changed."""
    studies: dict[str, None] = {}
    changes = 0
    for entry in dicom.change_feed(since):
        changes += 1
        studies.setdefault(entry["StudyInstanceUid"], None)
    emit(f"change feed since {since}: {changes} change(s) in {len(studies)} stud(y/ies)")
    return list(studies)


def run_studies(args) -> int:
    from hdsctl.dicom.target import service_of
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.fhir.client import FhirClient

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    if service.fhir_link is None and not args.fhir_url:
        raise LinkUsageError(f"DICOM service {service.name} of stack {env.name} has no fhirLink; "
                             "pass --fhir-url")
    url = args.fhir_url or env.fhir_url(service.fhir_link.fhir_service)
    with FhirClient(url, trusted_hosts=tuple(env.spec.trusted_hosts)) as fhir:
        found = fhir.search("ImagingStudy")
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    for study in found:
        identifiers = study.get("identifier") or []
        uid = next((i["value"] for i in identifiers if i.get("system") == "urn:dicom:uid"), "?")
        print(f"ImagingStudy/{study['id']}  {uid}  subject {study.get('subject', {}).get('reference')}  "
              f"{study.get('numberOfSeries', 0)} series, {study.get('numberOfInstances', 0)} instances  "
              f"modality {','.join(m.get('code', '') for m in study.get('modality') or [])}  "
              f"version {study.get('meta', {}).get('versionId')}")
    print(f"{len(found)} ImagingStudy resource(s) in {url}", file=sys.stderr)
    return EXIT_OK


def _from_queue(args, env, service, linker, emit) -> dict:
    import signal
    import threading

    from azure.storage.queue import QueueClient

    from hdsctl import naming
    from hdsctl.events.tail import StorageTarget, account_url, read_guarded
    from hdsctl.fhir.from_queue import link_from_queue

    target = _queue_of(env, service, args.subscription)
    account, queue_name = target
    url = account_url(account, "queue", args.queue_url, env.spec.trusted_hosts)
    budget = budget_of(args)
    hosts = {naming.host_of(naming.dicom_url(env.workspace_name, service.name)),
             naming.host_of(linker.dicom.base_url)}
    stop = threading.Event()
    if args.follow:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: stop.set())
    def consume():
        with StorageTarget(url, queue_name).client(QueueClient, budget) as queue, \
                StorageTarget(url, f"{queue_name}-poison").client(QueueClient, budget) as poison:
            _ensure(poison)
            return link_from_queue(linker, queue, poison, serves=lambda host: host in hosts,
                                   max_tries=args.max_tries, follow=args.follow, emit=emit, stop=stop)

    run = read_guarded(consume, f"queue {queue_name} at {url}", "Storage Queue Data Message Processor (and "
                       "Storage Queue Data Contributor for the poison queue)")
    return {"results": [r.to_json() for r in run.results], "failures": run.failures, "poisoned": run.poisoned,
            "messagesDone": run.messages_done}


def _queue_of(env, service, subscription_name: str | None) -> tuple[str, str]:
    """(account name, queue) of the subscription delivering this service's DICOM events."""
    from hdsctl.events.schema import dicom_routes

    queued = [route for route in dicom_routes(env, service.name, subscription_name) if route.storage_queue]
    if len(queued) != 1:
        names = ", ".join(route.subscription for route in queued) or "none"
        raise LinkUsageError(f"--from-queue needs one subscription delivering {service.name}'s DICOM events "
                             f"to a Storage queue (found: {names}); name it with --subscription")
    queue = queued[0].storage_queue
    return env.events_account_name(queue.account_id), queue.queue


def _ensure(queue) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        queue.create_queue()
    except ResourceExistsError:
        return  # made by an earlier run
