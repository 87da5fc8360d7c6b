"""`hdsctl dicom expire`: list the studies past retention, write them as a plan to review, and
delete exactly a reviewed plan (or, with `--yes`, exactly the list just printed)."""

from __future__ import annotations

import json
from pathlib import Path

from hdsctl.arguments import add_budget_arguments, budget_of
from hdsctl.errors import EXIT_FAILED, EXIT_OK


def add_expire_arguments(sub) -> None:
    expire = sub.add_parser("expire", help="plan, review, then delete the studies past retention")
    expire.add_argument("--stack", required=True, help="environment, e.g. prod")
    expire.add_argument("--service", help="the DICOM service (needed when the stack has several)")
    expire.add_argument("--older-than", metavar="AGE", type=_age,
                        help="studies older than this (by a valid StudyDate, else when stored): 10y, 18mo, "
                             "400d, 7y6mo; never less than the service's retention.minimumYears")
    expire.add_argument("--modality", help="only studies with this modality (ModalitiesInStudy), e.g. CR")
    expire.add_argument("--plan-out", type=Path, metavar="FILE",
                        help="write the list as a plan file to review, for --apply")
    expire.add_argument("--apply", type=Path, metavar="FILE",
                        help="delete exactly the studies of this reviewed plan, each re-checked first")
    expire.add_argument("--yes", action="store_true",
                        help="delete the studies just listed (without a plan file), each re-checked first")
    expire.add_argument("--journal", type=Path,
                        help="the SQLite record of deletions and change-feed checkpoint (default: "
                             "hdsctl-expire-<stack>-<service>.sqlite here)")
    expire.add_argument("--full", action="store_true",
                        help="read the service's change feed from its start, not from the journal's checkpoint")
    expire.add_argument("--url", help="data-plane base URL, overriding the one the spec gives")
    add_budget_arguments(expire)
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

    from hdsctl.dicom.expire import ExpiryReport, carry_out, check_retention, find_candidates
    from hdsctl.dicom.expiry_journal import ExpiryJournal
    from hdsctl.dicom.expiry_plan import ExpiryPlan, check_plan, read_plan
    from hdsctl.dicom.target import DicomUsageError, client_for, service_of
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.files import check_outputs, write_atomic

    if args.apply and (args.older_than or args.modality or args.plan_out or args.yes):
        raise DicomUsageError("--apply carries out the plan file as it is: give no --older-than, --modality, "
                              "--plan-out or --yes with it")
    if not args.apply and args.older_than is None:
        raise DicomUsageError("give --older-than AGE (to list or plan), or --apply PLAN")
    stack_path = stack_file_path(args.stack, args.stacks_dir)
    inputs = [stack_path] + ([args.apply] if args.apply else [])
    check_outputs({"--journal": args.journal, "--plan-out": args.plan_out}, inputs, args.stacks_dir)
    env = load_environment(stack_path)
    service = service_of(env, args.service)
    where = f"DICOM service {service.name} of {env.source}"
    minimum = service.retention.minimum_years if service.retention else None
    today = datetime.date.today()
    plan = read_plan(args.apply) if args.apply else None
    cutoff = plan.cutoff if plan else check_retention(args.older_than, minimum, today, where)  # before requests
    with client_for(env, service, args.url, budget_of(args)) as client:
        url = client.base_url
        if plan is not None:
            check_plan(plan, args.apply, stack=env.name, service=service.name, url=url, minimum_years=minimum,
                       today=today)
        journal_path = args.journal or Path(f"hdsctl-expire-{env.name}-{service.name}.sqlite")
        journal = ExpiryJournal(journal_path, url)
        try:
            if args.full or plan is not None:  # a listing follows it itself
                journal.follow_change_feed(client, full=args.full)
            candidates = plan.candidates if plan else find_candidates(client, journal, cutoff, args.modality)
            report = ExpiryReport(cutoff.isoformat(), candidates)
            if args.plan_out:
                created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
                made = ExpiryPlan(env.name, service.name, url, str(args.older_than), cutoff, minimum,
                                  args.modality, created, candidates)
                write_atomic(args.plan_out, made.to_text())
                report.plan_file = str(args.plan_out)
            if (plan is not None or args.yes) and candidates:
                if not args.json:
                    _print_list(report, service.name, args.apply or args.older_than, acting=True)
                carry_out(client, candidates, cutoff, journal, report)
        finally:
            journal.close()
    if args.json:
        print(json.dumps({"stack": env.name, "service": service.name, **report.to_json()}, indent=2))
    elif report.listed_only:
        _print_list(report, service.name, args.older_than, acting=False)
    else:
        _print_outcome(report)
    return EXIT_FAILED if report.failed else EXIT_OK


def _print_list(report, service: str, source, *, acting: bool) -> None:
    what = f"the plan {source}" if isinstance(source, Path) else f"older than {source}"
    verb = "Deleting" if acting else "Studies of"
    print(f"{verb} {service} {what} (counted from before {report.cutoff}): {len(report.candidates)}")
    for c in report.candidates:
        count = "?" if c.instances is None else c.instances
        print(f"  {c.date}  ({c.basis:9})  {c.modalities or '-':8}  {count:>5} instances  {c.study}")
    if report.plan_file:
        print(f"Plan written to {report.plan_file}: review it, then hdsctl dicom expire --stack ... "
              f"--apply {report.plan_file}")
    if not acting:
        print("Nothing was deleted: write a plan with --plan-out and carry it out with --apply (or --yes to "
              "delete this list now).")


def _print_outcome(report) -> None:
    for uid in report.deleted:
        print(f"  deleted  {uid}")
    for uid, why in report.skipped.items():
        print(f"  skipped  {uid}: {why}")
    for uid, why in report.failed.items():
        print(f"  FAILED   {uid}: {why}")
    print(f"{len(report.deleted)} deleted, {len(report.skipped)} skipped, {len(report.failed)} failed")
