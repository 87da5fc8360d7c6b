"""`hdsctl dicom upload`: its arguments, the run (STOW or the Data Lake path, from folders, zip
archives or a Blob container), `--status` over journals, and `--reshard`."""

from __future__ import annotations

import json
from pathlib import Path

from hdsctl.arguments import add_budget_arguments, bounded_count, budget_of, megabytes, positive_seconds
from hdsctl.dicom.shards import parse_shard
from hdsctl.dicom.target import DicomUsageError, client_for, partition_of, service_of
from hdsctl.errors import EXIT_FAILED, EXIT_OK, Terminated


def add_upload_arguments(sub) -> None:
    upload = sub.add_parser("upload", help="move an archive into the service, resumably")
    upload.add_argument("paths", nargs="*", metavar="PATH",
                        help="files, folders and .zip archives, or a Blob container (https://<account>.blob."
                             "core.windows.net/<container>[/<folder>], with --journal)")
    upload.add_argument("--stack", help="environment, e.g. dev (required to upload)")
    upload.add_argument("--status", nargs="+", metavar="JOURNAL",
                        help="report instead of uploading: merge these journals (paths or patterns; the "
                             "shards of one migration) into one answer; exit 0 only when every file is "
                             "stored. With --stack, files copied but not yet indexed (--via datalake) are "
                             "looked up")
    upload.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    upload.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    upload.add_argument("--concurrency", type=bounded_count(1, 64, "requests in flight"), default=4,
                        help="STOW requests in flight (1-64; default 4)")
    upload.add_argument("--batch-mb", type=megabytes, default=16,
                        help="instances per request up to this many MB, one study each (default 16)")
    upload.add_argument("--journal", type=Path, help="the SQLite journal (default: .hdsctl-upload.sqlite "
                                                     "in the first folder given)")
    upload.add_argument("--upsert", action="store_true", help="replace instances already stored (PUT)")
    upload.add_argument("--convert-implicit", action="store_true",
                        help="send implicit-VR files as explicit VR little endian copies made in memory")
    upload.add_argument("--retry-failed", action="store_true", help="send files the service refused before")
    upload.add_argument("--dry-run", action="store_true", help="scan and plan; send nothing")
    upload.add_argument("--verify", action="store_true",
                        help="confirm with QIDO that what the journal calls stored is on the service, and "
                             "send what is not (done anyway when files are skipped by the journal)")
    upload.add_argument("--shard", type=parse_shard, metavar="I/N",
                        help="take only the studies of shard I of N (0 <= I < N), by a stable hash of the "
                             "StudyInstanceUID; each shard with a journal of its own")
    upload.add_argument("--reshard", nargs="+", metavar="OLD_JOURNAL",
                        help="with --shard and a new --journal: the archive was cut into another number of "
                             "shards before; take from those journals (paths or patterns) what they recorded "
                             "of this shard's studies, so nothing is sent twice")
    upload.add_argument("--partition", help="the data partition to store into (a service with data partitions; "
                                            "default Microsoft.Default)")
    upload.add_argument("--via", choices=("stow", "datalake"), default="stow",
                        help="stow: STOW-RS requests (default); datalake: write the files into the service's "
                             "Data Lake for it to index (needs storage.indexing), then follow them")
    upload.add_argument("--storage-url", help="with --via datalake: the blob service URL, overriding the "
                                              "stack's account (the local platform: blobUrl of its url-file)")
    upload.add_argument("--queue-url", help="with --via datalake: the queue service URL, where <queue>-poison "
                                            "is read (the local platform: queueUrl of its url-file)")
    upload.add_argument("--wait", type=positive_seconds, default=600.0,
                        help="with --via datalake: how long to follow copied files until indexed "
                             "(s, default 600)")
    upload.add_argument("--no-wait", action="store_true",
                        help="with --via datalake: return once copied; a later run follows them")
    add_budget_arguments(upload)
    upload.add_argument("--json", action="store_true", help="one JSON report on stdout, every failure in it")
    upload.set_defaults(handler=run_upload)


def run_upload(args) -> int:
    import sys

    if args.status:
        return _status(args)
    if not args.paths or not args.stack:
        raise DicomUsageError("upload needs PATH... and --stack (or --status JOURNAL... to report)")
    if args.reshard and not (args.shard and args.journal):
        raise DicomUsageError("--reshard takes what an old cut's journals recorded into this shard's new "
                              "journal: give --shard J/M and --journal NEW too")
    from hdsctl.dicom.blob_source import is_url, parse_root

    urls = [p for p in args.paths if is_url(p)]
    journal_path = _journal_path(args, urls)
    wanted = _run_record(args)
    quick = (None if args.dry_run or wanted is None or args.via == "datalake" or args.shard or urls
             else _nothing_to_send(args, journal_path, wanted))
    if quick is not None:
        record, report = quick
        return _print_upload(args, record.stack, record.service, report)

    from hdsctl.dicom.journal import Journal, RunRecord
    from hdsctl.dicom.progress import UploadProgress
    from hdsctl.dicom.upload import Options
    from hdsctl.dicom.upload_report import PENDING
    from hdsctl.environment.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    budget = budget_of(args)
    probe = client_for(env, service, args.url, budget, args.partition)  # checks URL and partition first
    url = probe.service_root
    probe.close()
    target = _data_lake_target(args, env, service) if args.via == "datalake" else None
    bound = target.journal_url(url) if target else url
    journal = Journal(journal_path, bound, args.shard)
    if args.reshard:
        _carry_over(args, journal, bound)
    options = Options(args.concurrency, int(args.batch_mb * (1 << 20)), args.upsert, args.convert_implicit,
                      args.retry_failed, args.dry_run, args.verify, args.shard)
    progress = None if args.json or args.dry_run else UploadProgress(sys.stderr)
    stop_on_sigterm = _stop_on_sigterm()
    try:
        upload = _uploader(args, env, service, budget, target, journal, options, progress)
        sources = [parse_root(p, env.spec.trusted_hosts, budget) if is_url(p) else Path(p) for p in args.paths]
        if not args.dry_run:
            journal.run_started()
        report = upload.run(sources, url)
        if not args.dry_run:
            journal.run_ended(report.count(PENDING),
                              report.stopped or ("no DICOM file under the paths given" if report.found_nothing
                                                 else None))
        report.copied_is_done = args.no_wait
        if wanted is not None and not args.dry_run:
            journal.remember_run(RunRecord(wanted.stack, wanted.service_option, wanted.url_option,
                                           wanted.stack_digest, service.name, url))
    finally:
        stop_on_sigterm()
        journal.close()
    return _print_upload(args, env.name, service.name, report)


def _stop_on_sigterm():
    """SIGTERM (Kubernetes ending a pod: a drain, a preemption, a deleted Job) stops the run as
    Ctrl-C does, within the grace period, instead of ending it unreported. Returns the undo."""
    import signal

    def terminated(*_):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _journal_path(args, urls: list[str]) -> Path:
    """Where the journal is: --journal, or beside the archive (a folder of its own is needed)."""
    from hdsctl.dicom.blob_source import is_url
    from hdsctl.dicom.journal import default_path

    missing = [p for p in args.paths if not is_url(p) and not Path(p).exists()]
    if missing:
        raise DicomUsageError(f"no such file or folder: {', '.join(missing)}")
    if urls and not args.journal:
        raise DicomUsageError(f"{urls[0]} is in Blob storage: give --journal FILE (there is no folder of the "
                              "archive's own to keep it in)")
    return args.journal or default_path([Path(p) for p in args.paths])


def _uploader(args, env, service, budget, target, journal, options, progress):
    """The STOW upload, or the Data Lake path's when it has a target."""
    def dicom():
        return client_for(env, service, args.url, budget, args.partition)

    if target is None:
        from hdsctl.dicom.upload import Upload

        return Upload(dicom, journal, options, progress)
    from hdsctl.dicom.datalake_upload import DataLakeUpload

    return DataLakeUpload(target, dicom, journal, options, progress, budget=budget,
                          wait_seconds=None if args.no_wait else args.wait)


def _carry_over(args, journal, bound: str) -> None:
    import sys

    from hdsctl.dicom.journal import expand
    from hdsctl.dicom.reshard import carry_over

    try:
        taken, notes = carry_over(journal, args.shard, expand(args.reshard, "--reshard"), bound)
    except BaseException:
        journal.close()
        raise
    print(f"reshard: took {taken} file(s) of shard {args.shard} from {len(args.reshard)} old journal "
          "argument(s)", file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _status(args) -> int:
    from hdsctl.dicom.journal import expand
    from hdsctl.dicom.upload_status import merge, render

    if args.paths:
        raise DicomUsageError("--status reports on journals: give them after --status, and no PATH")
    status = merge(expand(args.status, "--status"))
    if status.waiting and args.stack:
        _confirm_waiting(args, status)
    print(json.dumps(status.to_json(), indent=2) if args.json else render(status))
    return EXIT_OK if status.ok else EXIT_FAILED


def _confirm_waiting(args, status) -> None:
    """With --stack: files the journals record as copied are looked up on the service and in the
    queues, once, as the upload that copied them would."""
    from hdsctl.dataplane import storage_errors
    from hdsctl.dicom.datalake_upload import FOLLOW_ROLES
    from hdsctl.dicom.indexing_follow import IndexingFollower
    from hdsctl.dicom.upload_status import confirm_waiting
    from hdsctl.environment.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    budget = budget_of(args)
    target = _data_lake_target(args, env, service)
    with client_for(env, service, args.url, budget, args.partition) as dicom:
        bound = target.journal_url(dicom.service_root)
        if status.services != {bound}:
            raise DicomUsageError(f"the journals record uploads to {', '.join(sorted(status.services))}, but "
                                  f"--stack {args.stack} resolves to {bound}: give the stack (and --url, "
                                  "--storage-url) the upload was given")
        with storage_errors(f"the queues and dead letters of {target.queue} at {target.queue_url}",
                            FOLLOW_ROLES):
            confirm_waiting(status, IndexingFollower(target, budget), dicom)


def _data_lake_target(args, env, service):
    """Where --via datalake writes: the service's file system and folder, and its indexing queue."""
    from hdsctl import naming
    from hdsctl.dicom.indexing_follow import DataLakeTarget
    from hdsctl.events.tail import account_url

    storage = service.storage
    if storage is None or storage.indexing is None:
        raise DicomUsageError(f"--via datalake writes into the service's Data Lake for it to index: declare "
                              f"storage with indexing for {service.name} in {env.source}")
    partition = partition_of(env, service, args.partition)
    covered = storage.indexing.partitions
    if partition and covered and partition not in covered:
        raise DicomUsageError(f"--partition {partition}: {service.name}'s indexing covers only partitions "
                              f"{', '.join(covered)} (storage.indexing.partitions in {env.source}): files "
                              "written elsewhere would never be indexed")
    folder = naming.dicom_storage_folder(env.workspace_name, service.name)
    folder += f"{partition}/" if partition else ""
    account = env.dicom_storage_account_name(service)
    hosts = env.spec.trusted_hosts
    dead_letter = storage.indexing.dead_letter
    subscription = naming.indexing_subscription_name(service.name, partition if covered else None)
    return DataLakeTarget(account_url(account, "blob", args.storage_url, hosts), storage.file_system_name,
                          folder, storage.indexing.queue, account_url(account, "queue", args.queue_url, hosts),
                          subscription=subscription,
                          dead_letters=dead_letter.container if dead_letter else None)


def _run_record(args):
    """This run's inputs, to compare with the journal's last run; None when the stack file
    cannot be read (the full path says why)."""
    import hashlib

    from hdsctl import naming
    from hdsctl.dicom.journal import RunRecord

    if naming.stack_name_problem(args.stack):
        return None
    try:
        digest = hashlib.sha256((args.stacks_dir / naming.stack_file_name(args.stack)).read_bytes()).hexdigest()
    except OSError:
        return None
    return RunRecord(args.stack, args.service or "", args.url or "", digest, "", "")


def _nothing_to_send(args, journal_path: Path, wanted):
    """A re-run over an archive the journal holds whole, with the same stack file and options:
    answered from the journal, the files' sizes and times, and one QIDO listing per study that
    confirms the service still holds them; without the stack's model, the DICOM library or the
    sending machinery. None when anything is new, changed or missing (the full run decides)."""
    from hdsctl.dicom.journal import quick_rerun
    from hdsctl.dicom.upload_report import UploadReport, already_done

    found = quick_rerun(journal_path, wanted)
    if found is None:
        return None
    record, entries = found
    counts = already_done([Path(p) for p in args.paths], entries)
    if counts is None:
        return None
    stored, not_dicom, special = counts
    if stored and _missing(record.url, args, stored):
        return None
    report = UploadReport(record.url, str(journal_path))
    report.done_before, report.not_dicom, report.special = len(stored), not_dicom, special
    report.verified = len(stored)
    return record, report


def _missing(url: str, args, entries) -> set[str]:
    from hdsctl.dicom.verify import missing_from_service

    with _journaled_url_client(url, args) as client:
        return missing_from_service(client, entries)


def _journaled_url_client(url: str, args):
    """A client for the URL the journal's last run resolved, from the same stack file (its
    digest is unchanged), so the same host rules let it through."""
    from urllib.parse import urlsplit

    from hdsctl.dicom.client import DicomClient, split_partition

    base, partition = split_partition(url)
    return DicomClient(base, trusted_hosts=(urlsplit(base).hostname or "",), budget=budget_of(args),
                       partition=partition)


def _print_upload(args, stack: str, service: str, report) -> int:
    from hdsctl.dicom.upload_report import render

    if args.json:
        print(json.dumps({"stack": stack, "service": service, **report.to_json()}, indent=2))
    else:
        print(render(report))
    planned = args.dry_run and not report.count("failed") and not report.found_nothing
    return EXIT_OK if report.ok or planned else EXIT_FAILED
