"""`hdsctl diff`, `hdsctl promote` and `hdsctl ci init`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hdsctl.errors import EXIT_FAILED, EXIT_OK, BadInput


class PromotionUsageError(BadInput):
    """Promotion was asked for something it cannot do."""


def add_arguments(commands) -> None:
    diff = commands.add_parser("diff", help="semantic difference of two environments' promotable parts")
    diff.add_argument("env_a")
    diff.add_argument("env_b")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=run_diff)

    promote = commands.add_parser("promote", help="carry promotable parts from one environment to the next")
    promote.add_argument("--from", dest="source", required=True, help="environment to promote from")
    promote.add_argument("--to", dest="target", required=True, help="environment to promote to")
    promote.add_argument("--only",
                         help="comma-separated subset of: services, tags, roles, events (default: all)")
    promote.add_argument("--write", action="store_true",
                         help="rewrite the target stack file (keeps its comments and secure: values)")
    promote.add_argument("--prune", action="store_true",
                         help="also remove tags, bindings and settings the target has and the source lacks "
                              "(never the deployer's own grant)")
    promote.add_argument("--allow-replace", action="store_true",
                         help="promote creation-time settings (dataPartitions) even though that replaces "
                              "the service with a new, empty one")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(handler=run_promote)

    ci = commands.add_parser("ci", help="continuous integration")
    ci_sub = ci.add_subparsers(dest="ci_command", metavar="ACTION", required=True)
    init = ci_sub.add_parser("init", help="render pipeline definitions for the stacks present")
    init.add_argument("--provider", choices=("github", "azure-devops"), required=True)
    init.add_argument("--output", type=Path, default=Path("."), help="repository root to write into")
    init.add_argument("--force", action="store_true",
                      help="overwrite pipeline files even where they were edited since they were rendered")
    init.set_defaults(handler=run_ci_init)


def run_diff(args) -> int:
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.promotion.diff import semantic_diff

    a = load_environment(stack_file_path(args.env_a, args.stacks_dir))
    b = load_environment(stack_file_path(args.env_b, args.stacks_dir))
    changes = semantic_diff(a.spec, b.spec)
    if args.json:
        print(json.dumps({"from": a.name, "to": b.name, "changes": [c.to_json() for c in changes]}, indent=2))
    elif not changes:
        print(f"{a.name} and {b.name} do not differ in promotable parts (services, tags, bindings)")
    else:
        print(f"From {a.name} to {b.name} ({len(changes)} promotable difference(s)):")
        print("\n".join(str(c) for c in changes))
    return EXIT_OK


def run_promote(args) -> int:
    from hdsctl.environment.load import stack_file_path
    from hdsctl.promotion.promote import AREAS, plan_promotion

    areas = AREAS if not args.only else tuple(a.strip() for a in args.only.split(",") if a.strip())
    unknown = sorted(set(areas) - set(AREAS))
    if unknown or not areas:
        raise PromotionUsageError(f"--only takes {', '.join(AREAS)}; got {args.only!r}")
    if args.source == args.target:
        raise PromotionUsageError("--from and --to name the same environment")
    target_path = stack_file_path(args.target, args.stacks_dir)
    promotion = plan_promotion(stack_file_path(args.source, args.stacks_dir), target_path, areas,
                               prune=args.prune, allow_replace=args.allow_replace)
    if args.json:
        print(json.dumps(promotion.to_json(), indent=2))
    else:
        _print(promotion)
    if not promotion.accepted:
        return EXIT_FAILED
    if args.write and promotion.changes:
        from hdsctl.files import write_atomic

        write_atomic(target_path, promotion.text)
        print(f"wrote {target_path}", file=sys.stderr)
    return EXIT_OK


def _print(promotion) -> None:
    head = f"Promotion {promotion.source.name} → {promotion.target.name} ({', '.join(promotion.areas)})"
    if not promotion.changes and not promotion.refusals:
        print(f"{head}: nothing to promote")
    else:
        print(f"{head}: {len(promotion.changes)} change(s)")
        print("\n".join(str(c) for c in promotion.changes))
    sections = (("kept", promotion.kept),
                ("not promoted", promotion.held), ("note", promotion.notes))
    for title, lines in sections:
        for line in lines:
            print(f"  {title}: {line}")
    if promotion.refusals:
        print("REFUSED:")
        print("\n".join(f"  - {reason}" for reason in promotion.refusals))
    if promotion.already:
        print(f"already present in {promotion.target.name} (not introduced by this promotion):")
        print("\n".join(f"  - {problem}" for problem in promotion.already))


def run_ci_init(args) -> int:
    from hdsctl.environment.load import load_environment, stack_files
    from hdsctl.files import check_outputs, write_atomic
    from hdsctl.promotion.ci import PipelineFileEdited, edited_since_rendered, render_pipelines

    environments = [load_environment(path) for path in stack_files(args.stacks_dir)]
    if not environments:
        raise PromotionUsageError(f"no stacks in {args.stacks_dir}")
    rendered = {args.output / relative: text
                for relative, text in render_pipelines(args.provider, environments).items()}
    check_outputs({str(path): path for path in rendered}, [], args.stacks_dir)
    edited = [path for path in rendered
              if path.exists() and edited_since_rendered(path.read_text(encoding="utf-8"))]
    if edited and not args.force:
        raise PipelineFileEdited(
            "these pipeline files were edited since hdsctl rendered them (or were not rendered by it): "
            + ", ".join(map(str, edited)) + "; nothing was written. Move your changes into the templates, "
            "or pass --force to overwrite them")
    for target, text in rendered.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text)
        print(f"wrote {target}")
    return EXIT_OK
