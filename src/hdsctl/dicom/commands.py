"""`hdsctl dicom smoke`: the data-plane commands on top of the one DICOMweb client."""

from __future__ import annotations

import json
from pathlib import Path

from hdsctl import naming
from hdsctl.arguments import positive_seconds
from hdsctl.errors import EXIT_FAILED, EXIT_OK, BadInput


class DicomUsageError(BadInput):
    """The data-plane commands were asked for something they cannot do."""


def add_arguments(commands) -> None:
    dicom = commands.add_parser("dicom", help="the DICOM data plane: smoke check, upload, expire")
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

    upload = sub.add_parser("upload", help="move an archive into the service, resumably")
    upload.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files, folders and .zip archives")
    upload.add_argument("--stack", required=True, help="environment, e.g. dev")
    upload.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    upload.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    upload.add_argument("--concurrency", type=_workers, default=4, help="STOW requests in flight (default 4)")
    upload.add_argument("--batch-mb", type=positive_seconds, default=16,
                        help="instances per request up to this many MB, one study each (default 16)")
    upload.add_argument("--journal", type=Path, help="the SQLite journal (default: .hdsctl-upload.sqlite "
                                                     "in the first folder given)")
    upload.add_argument("--upsert", action="store_true", help="replace instances already stored (PUT)")
    upload.add_argument("--convert-implicit", action="store_true",
                        help="send implicit-VR files as explicit VR little endian copies made in memory")
    upload.add_argument("--retry-failed", action="store_true", help="send files the service refused before")
    upload.add_argument("--dry-run", action="store_true", help="scan and plan; send nothing")
    upload.add_argument("--timeout", type=positive_seconds, default=300,
                        help="seconds one request may keep retrying (429, 503, dropped connections)")
    upload.add_argument("--json", action="store_true", help="one JSON report on stdout, every failure in it")
    upload.set_defaults(handler=run_upload)
    add_expire_arguments(sub)


def add_expire_arguments(sub) -> None:
    expire = sub.add_parser("expire", help="list, then delete with --yes, the studies past retention")
    expire.add_argument("--stack", required=True, help="environment, e.g. prod")
    expire.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    expire.add_argument("--older-than", required=True, metavar="AGE", type=_age,
                        help="studies older than this (by StudyDate, else when stored): 10y, 18mo, 400d, "
                             "7y6mo; never less than the service's retention.minimumYears")
    expire.add_argument("--modality", help="only studies with this modality (ModalitiesInStudy), e.g. CR")
    expire.add_argument("--yes", action="store_true", help="delete them (without it, they are only listed)")
    expire.add_argument("--journal", type=Path,
                        help="the SQLite record of deletions (default: hdsctl-expire-<stack>-<service>.sqlite "
                             "here)")
    expire.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    expire.add_argument("--timeout", type=positive_seconds, default=300,
                        help="seconds one request may keep retrying (429, 503, dropped connections)")
    expire.add_argument("--json", action="store_true", help="one JSON report on stdout")
    expire.set_defaults(handler=run_expire)


def _age(text: str):
    import argparse

    from hdsctl.dicom.expire import parse_age

    try:
        return parse_age(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_expire(args) -> int:
    import datetime

    from hdsctl.dicom.expire import ExpiryJournal, ExpiryReport, check_retention, expire, plan
    from hdsctl.files import check_outputs
    from hdsctl.spec.load import load_environment, stack_file_path

    stack_path = stack_file_path(args.stack, args.stacks_dir)
    check_outputs({"--journal": args.journal}, [stack_path], args.stacks_dir)
    env = load_environment(stack_path)
    service = service_of(env, args.service)
    where = f"DICOM service {service.name} of {env.source}"
    minimum = service.retention.minimum_years if service.retention else None
    cutoff = check_retention(args.older_than, minimum, datetime.date.today(), where)  # before any request
    with client_for(env, service, args.url, args.timeout) as client:
        candidates = plan(client, cutoff, args.modality)
        report = ExpiryReport(cutoff.isoformat(), candidates)
        if args.yes and candidates:
            journal_path = args.journal or Path(f"hdsctl-expire-{env.name}-{service.name}.sqlite")
            journal = ExpiryJournal(journal_path, client.base_url)
            try:
                expire(client, candidates, journal, report)
            finally:
                journal.close()
    if args.json:
        print(json.dumps({"stack": env.name, "service": service.name, **report.to_json()}, indent=2))
    else:
        _print_expiry(report, service.name, args.older_than)
    return EXIT_FAILED if report.failed else EXIT_OK


def _print_expiry(report, service: str, age) -> None:
    print(f"Studies of {service} older than {age} (dated before {report.cutoff}): {len(report.candidates)}")
    for candidate in report.candidates:
        uid = candidate.study
        state = ("deleted" if uid in report.deleted else "already gone" if uid in report.gone
                 else f"FAILED: {report.failed[uid]}" if uid in report.failed else "listed")
        print(f"  {candidate.date}  ({candidate.basis:9})  {candidate.modalities or '-':8}  {uid}  {state}")
    if report.listed_only:
        print("Nothing was deleted: run again with --yes to delete these studies through the DELETE API.")
    else:
        print(f"{len(report.deleted)} deleted, {len(report.gone)} already gone, {len(report.failed)} failed")


def _workers(text: str) -> int:
    from hdsctl.arguments import count

    value = count(text)
    if not 1 <= value <= 64:
        import argparse

        raise argparse.ArgumentTypeError(f"{value}: give 1 to 64 requests in flight")
    return value


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


def client_for(env, service, url: str | None, timeout: float, *, per_request: bool = False):
    """`timeout` bounds the whole command, or with `per_request` each request's retries."""
    from hdsctl.dicom.client import DicomClient
    from hdsctl.retry import Budget

    budget = Budget(per_request=timeout) if per_request else Budget.until(timeout)
    return DicomClient(url or env.dicom_url(service.name), trusted_hosts=tuple(env.spec.trusted_hosts),
                       budget=budget, partition=naming.DEFAULT_PARTITION if service.data_partitions else None)


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


def run_upload(args) -> int:
    import sys

    from hdsctl.dicom.journal import default_path

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise DicomUsageError(f"no such file or folder: {', '.join(missing)}")
    journal_path = args.journal or default_path(args.paths)
    wanted = _run_record(args)
    quick = None if args.dry_run or wanted is None else _nothing_to_send(args, journal_path, wanted)
    if quick is not None:
        record, report = quick
        return _print_upload(args, record.stack, record.service, report)

    from hdsctl.dicom.journal import Journal, RunRecord
    from hdsctl.dicom.progress import UploadProgress
    from hdsctl.dicom.upload import Options, Upload
    from hdsctl.spec.load import load_environment, stack_file_path

    env = load_environment(stack_file_path(args.stack, args.stacks_dir))
    service = service_of(env, args.service)
    probe = client_for(env, service, args.url, args.timeout, per_request=True)  # checks the URL first
    url = probe.base_url + (f"/partitions/{probe.partition}" if probe.partition else "")
    probe.close()
    journal = Journal(journal_path, url)
    options = Options(args.concurrency, int(args.batch_mb * (1 << 20)), args.upsert, args.convert_implicit,
                      args.retry_failed, args.dry_run)
    progress = None if args.json or args.dry_run else UploadProgress(sys.stderr)
    try:
        upload = Upload(lambda: client_for(env, service, args.url, args.timeout, per_request=True), journal,
                        options, progress)
        report = upload.run(list(args.paths), url)
        if wanted is not None and not args.dry_run:
            journal.remember_run(RunRecord(wanted.stack, wanted.service_option, wanted.url_option,
                                           wanted.stack_digest, service.name, url))
    finally:
        journal.close()
    return _print_upload(args, env.name, service.name, report)


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
    answered from the journal and the files' sizes and times alone, without the stack's model,
    the DICOM library or the service."""
    from hdsctl.dicom.journal import quick_rerun
    from hdsctl.dicom.upload_report import UploadReport, already_done

    found = quick_rerun(journal_path, wanted)
    if found is None:
        return None
    record, entries = found
    counts = already_done(list(args.paths), entries)
    if counts is None:
        return None
    report = UploadReport(record.url, str(journal_path))
    report.done_before, report.not_dicom = counts
    return record, report


def _print_upload(args, stack: str, service: str, report) -> int:
    from hdsctl.dicom.upload_report import render

    if args.json:
        print(json.dumps({"stack": stack, "service": service, **report.to_json()}, indent=2))
    else:
        print(render(report))
    return EXIT_OK if report.ok or (args.dry_run and not report.count("failed")) else EXIT_FAILED

