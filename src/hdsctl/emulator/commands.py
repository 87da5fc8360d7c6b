"""`hdsctl emulator`: the local platform on loopback (Orthanc behind the Azure DICOM service's
behaviour, Azurite for events, Medplum's FHIR engine), started and stopped together."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hdsctl.arguments import count, port, positive_seconds
from hdsctl.errors import EXIT_FAILED, EXIT_OK, BadInput


class UsageError(BadInput):
    """The local platform was asked for something it cannot do."""


def add_arguments(commands) -> None:
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
                             "deliver DicomImageCreated/Deleted events into the queues of the stack's "
                             "subscriptions")
    parser.add_argument("--fhir", action="store_true",
                        help="also start the local FHIR service: Medplum's engine (Node.js, installed by "
                             "scripts/bootstrap) behind a front with Azure's rules (fhirUrl in --url-file)")
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
    routes, dead_letter_container, indexing = _event_routes(args) if args.events else (None, None, None)
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
            fhir = _start_fhir(args)
        return _serve(args, engine, storage, routes, dead_letter_container, fhir, indexing)
    finally:
        for started in (fhir, storage):
            if started is not None:
                started.stop()


def _serve(args, engine, storage, routes, dead_letter_container, fhir, indexing=None) -> int:
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
    emulator.indexer = None
    try:
        _start_indexer(emulator, storage, indexing, endpoints)
        _announce(args, engine, emulator, fhir, storage, routes)
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
        if emulator.indexer is not None:
            emulator.indexer.stop()
        emulator.stop()
        if args.url_file:
            with contextlib.suppress(FileNotFoundError):  # its endpoints are gone: so is the file
                Path(args.url_file).unlink()


def _start_fhir(args):
    """Medplum's FHIR engine behind the front that adds Azure's rules."""
    from hdsctl.emulator.medplum import LocalFhir

    try:
        return LocalFhir(args.host, args.fhir_port).start()
    except OSError as err:
        raise UsageError(f"the local FHIR service cannot listen on {args.host}:{args.fhir_port}: "
                         f"{err.strerror}; pick another --fhir-port (0 takes a free one)") from None


def _announce(args, engine, emulator, fhir, storage, routes) -> None:
    what = ("Orthanc-backed DICOM service" if engine else
            f"DICOM tag emulator ({args.instances} synthetic instances)")
    print(f"{what} listening on {emulator.url}; Ctrl-C stops it", flush=True)
    if fhir is not None:
        print(f"FHIR listening on {fhir.url}", flush=True)
    if storage is not None:
        queues = ", ".join(sorted({r.queue for r in routes})) or "none"
        print(f"events: Azurite queues at {storage.queue_url} (queues: {queues})", flush=True)


def _start_indexer(emulator, storage, indexing: dict | None, endpoints: dict):
    """With a Data Lake that indexes, files written into it are indexed, as in Azure."""
    if indexing is None:
        return None
    from hdsctl.emulator.indexer import LocalIndexer

    emulator.indexer = LocalIndexer(storage.connection_string, emulator.front, base_url=f"{emulator.url}/v2",
                                    **indexing).start()
    endpoints.update(fileSystem=indexing["file_system"], indexingQueue=indexing["queue"])
    print(f"storage indexing: files under {indexing['folder']} in Azurite's {indexing['file_system']} are "
          f"indexed from queue {indexing['queue']}", flush=True)
    return emulator.indexer


def _event_routes(args):
    """The stack's subscriptions this local service delivers to queues, notes on the others, and
    the storage indexing of its Data Lake, if any."""
    from hdsctl.emulator.events import routes_of
    from hdsctl.emulator.indexer import indexing_of
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
    return routes, (events.dead_letter.container if events else "event-dead-letters"), indexing_of(env, service)
