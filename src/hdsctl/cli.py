"""The `hdsctl` command line. Imports stay inside the commands so `--help` starts fast."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The command modules import only the standard library at the top; their work is imported
# when a command runs.
from hdsctl.audit import commands as audit_commands
from hdsctl.capacity import commands as capacity_commands
from hdsctl.dicom import commands as dicom_commands
from hdsctl.emulator import commands as emulator_commands
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, HdsctlError, stopped_by
from hdsctl.events import commands as events_commands
from hdsctl.fhir import commands as fhir_commands
from hdsctl.promotion import commands as promotion_commands
from hdsctl.tags import commands as tag_commands


def _show_notices() -> None:
    """hdsctl's own notices (retry waits, deprecations) on stderr, as the user's progress.
    Imported here, not at the top: `--help` does not need logging."""
    import logging

    class StderrHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # sys.stderr as it is now: follows redirection
            print(f"  {record.getMessage()}", file=sys.stderr, flush=True)

    logger = logging.getLogger("hdsctl")
    if not any(getattr(h, "hdsctl_notices", False) for h in logger.handlers):
        handler = StderrHandler(logging.INFO)
        handler.hdsctl_notices = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _show_notices()
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.handler(args)
    except HdsctlError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a path that cannot be written, a port already taken
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as stop:
        print(stopped_by(stop), file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    from hdsctl.arguments import Parser

    parser = Parser(
        prog="hdsctl",
        description="Config-as-code for Azure Health Data Services imaging platforms. "
        "Each environment is a stack file in stacks/.",
    )
    parser.add_argument("--stacks-dir", type=Path, default=Path("stacks"),
                        help="folder of Pulumi.<env>.yaml stack files (default: stacks)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser("validate", help="check stack files against the spec")
    _stack_choice(validate)
    validate.set_defaults(handler=_validate)

    preview = commands.add_parser(
        "preview", help="offline preview: every resource `pulumi up` would register")
    _stack_choice(preview)
    preview.add_argument("--json", metavar="PATH", dest="json_path",
                         help="write the whole plan as JSON to PATH ('-' for stdout)")
    preview.add_argument("--program", type=Path, default=Path("infra") / "__main__.py",
                         help="the Pulumi program to run (default: infra/__main__.py)")
    preview.add_argument("--policy", action="store_true",
                         help="evaluate the policy pack (policies/) over the plan, at the stack's tier")
    preview.add_argument("--sarif", metavar="PATH",
                         help="write policy findings as SARIF 2.1.0 (implies --policy)")
    preview.add_argument("--summary", action="store_true",
                         help="one line per stack (resources, policy verdict) instead of every resource")
    preview.set_defaults(handler=_preview)

    tag_commands.add_arguments(commands)
    emulator_commands.add_arguments(commands)
    dicom_commands.add_arguments(commands)
    events_commands.add_arguments(commands)
    fhir_commands.add_arguments(commands)
    capacity_commands.add_arguments(commands)
    audit_commands.add_arguments(commands)
    promotion_commands.add_arguments(commands)
    return parser


def _stack_choice(command: argparse.ArgumentParser) -> None:
    group = command.add_mutually_exclusive_group(required=True)
    group.add_argument("--stack", help="environment name, e.g. dev (reads stacks/Pulumi.dev.yaml)")
    group.add_argument("--all", action="store_true", help="every stack in the stacks folder")


def _selected_stack_files(args) -> list[Path]:
    """--stack checks its name at once; with --all each file is checked when it is read."""
    from hdsctl.environment.load import stack_file_path, stack_files
    from hdsctl.errors import SpecError, SpecProblem

    if not args.all:
        return [stack_file_path(args.stack, args.stacks_dir)]
    paths = stack_files(args.stacks_dir)
    if not paths:
        raise SpecError(str(args.stacks_dir), [SpecProblem("", "no Pulumi.<env>.yaml files")])
    return paths


def _validate(args) -> int:
    from hdsctl.environment.estate import name_collisions
    from hdsctl.environment.load import load_environment
    from hdsctl.errors import SpecError

    failed, environments = 0, []
    for path in _selected_stack_files(args):
        try:
            env = load_environment(path)
        except SpecError as err:
            print(str(err), file=sys.stderr)
            failed += 1
            continue
        environments.append(env)
        spec = env.spec
        print(f"ok  {path}: {spec.tier} environment '{env.name}', workspace {env.workspace_name}, "
              f"{len(spec.dicom_services)} DICOM, {len(spec.fhir_services)} FHIR, "
              f"{len(spec.role_assignments)} role assignments")
        if spec.trusted_hosts:
            print(f"    trusted hosts (receive the DICOM token): {', '.join(spec.trusted_hosts)}")
    collisions = name_collisions(environments) if args.all else []
    for problem in collisions:
        print(f"{args.stacks_dir}: environments collide: {problem}", file=sys.stderr)
    return EXIT_BAD_INPUT if failed or collisions else EXIT_OK


def _preview(args) -> int:
    from hdsctl.errors import SpecError
    from hdsctl.preview import run_preview
    from hdsctl.render import render_plan

    if not args.program.is_file():
        from hdsctl.errors import SpecProblem

        raise SpecError(str(args.program), [SpecProblem("", "the Pulumi program is not there; run "
                                                            "hdsctl from the repository root")])
    from hdsctl.files import STDOUT, check_outputs

    with_policy = args.policy or bool(args.sarif)
    stack_files = _selected_stack_files(args)
    check_outputs({"--json": args.json_path, "--sarif": args.sarif}, [*stack_files, args.program],
                  args.stacks_dir)
    quiet = STDOUT in (args.json_path, args.sarif)  # standard output carries the document alone
    documents, reports, failed = [], [], 0
    for path in stack_files:
        try:
            plan = run_preview(path, args.program)
        except SpecError as err:
            print(str(err), file=sys.stderr)
            failed += 1
            continue
        document = plan.to_json()
        if not quiet and not args.summary:
            print(render_plan(plan))
            print()
        report = None
        if with_policy:
            from hdsctl.policies.evaluate import evaluate, render

            report = evaluate(plan)
            reports.append(report)
            document["policy"] = report.to_json()
            if not quiet and not args.summary:
                print(render(report))
                print()
        if args.summary and not quiet:
            print(_summary_line(plan, report))
        documents.append(document)
    if args.json_path:
        _write_json(documents if args.all else (documents[0] if documents else None), args.json_path)
    if args.sarif:
        from hdsctl.policies.sarif import write_sarif

        write_sarif(reports, args.sarif)
        if args.sarif != STDOUT:
            print(f"wrote policy findings as SARIF to {args.sarif}", file=sys.stderr)
    if failed:
        return EXIT_BAD_INPUT
    return EXIT_FAILED if any(report.mandatory for report in reports) else EXIT_OK


def _summary_line(plan, report) -> str:
    line = f"{plan.stack:<10} tier {plan.tier:<5} {len(plan.resources):3d} resources"
    if report is not None:
        failing = len(report.mandatory)
        verdict = (f"FAILS {failing} mandatory finding(s)" if failing else "passes every mandatory policy")
        advisory = len(report.violations) - len(report.mandatory)
        line += f"  {verdict}, {advisory} advisory"
    return line + f"   (details: hdsctl preview --stack {plan.stack}{' --policy' if report else ''})"


def _write_json(document, target: str) -> None:
    from hdsctl.files import STDOUT, write_atomic

    text = json.dumps(document, indent=2)
    if target == STDOUT:
        print(text)
    else:
        write_atomic(target, text + "\n")
        print(f"wrote the plan as JSON to {target}")


if __name__ == "__main__":
    sys.exit(main())
