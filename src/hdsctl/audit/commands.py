"""`hdsctl audit roles` and `hdsctl audit matrix`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hdsctl.errors import EXIT_FAILED, EXIT_OK, BadInput

SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"


class AuditUsageError(BadInput):
    """The audit was asked for something it cannot do."""


def add_arguments(commands) -> None:
    audit = commands.add_parser("audit", help="role audit: actual against declared")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    roles = sub.add_parser("roles", help="compare the role assignments in Azure with the stack file")
    roles.add_argument("--stack", required=True)
    roles.add_argument("--include-inherited", action="store_true",
                       help="also list assignments inherited from the resource group and above")
    roles.add_argument("--format", choices=("table", "json", "markdown", "html"), default="table")
    roles.add_argument("--output", type=Path, help="write the report here instead of stdout")
    roles.add_argument("--subscription", help=f"subscription id (default: hdsctl:subscriptionId, "
                                              f"then ${SUBSCRIPTION_ENV})")
    roles.add_argument("--arm-url", help="Resource Manager endpoint (default: the stack's armEndpoint)")
    roles.add_argument("--graph-url", default="https://graph.microsoft.com",
                       help="Microsoft Graph endpoint for display names")
    roles.add_argument("--no-names", action="store_true", help="do not ask Microsoft Graph for names")
    roles.set_defaults(handler=run_roles)

    matrix = sub.add_parser("matrix", help="offline: principal x role x scope across environments")
    matrix.add_argument("--stacks", help="comma-separated environments (default: every stack)")
    matrix.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    matrix.set_defaults(handler=run_matrix)


def run_roles(args) -> int:
    from hdsctl.audit import arm, compare, graph, report
    from hdsctl.environment.access import (
        USER_ASSIGNED,
        Scope,
        bindings_by_scope,
        event_bindings,
        event_grants,
        program_bindings,
        program_grants,
        scopes,
        system_topic_id,
    )
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.files import check_outputs

    env_path = stack_file_path(args.stack, args.stacks_dir)
    check_outputs({"--output": args.output}, [env_path], args.stacks_dir)
    env = load_environment(env_path)
    subscription = args.subscription or env.spec.subscription_id or os.environ.get(SUBSCRIPTION_ENV)
    if not subscription:
        raise AuditUsageError(f"no subscription for stack {env.name}: set hdsctl:subscriptionId in "
                              f"{env.source}, pass --subscription, or set ${SUBSCRIPTION_ENV}")
    audited = scopes(env, subscription)
    declared = bindings_by_scope(env)
    topic_id = system_topic_id(env, subscription)
    client = arm.authorization_client(subscription, args.arm_url or env.spec.arm_endpoint)
    try:
        topic_principal = arm.system_topic_principal(client, topic_id) if topic_id else None
        if topic_principal:  # the topic's grants are audited like any declared one
            audited += [scope for scope, _ in event_grants(env, subscription)]
            declared.update(event_bindings(env, subscription, topic_principal))
        undeployed = []  # (where, what): identities whose grants cannot be read yet
        if topic_id and not topic_principal:
            undeployed.append((Scope("events", "event topic", topic_id), "Event Grid system topic identity"))
        for owner in program_grants(env, subscription):
            read = (arm.user_assigned_identity_principal if owner.identity_kind == USER_ASSIGNED
                    else arm.system_topic_principal)
            principal = read(client, owner.identity_id)
            if principal:
                audited += [scope for scope, _ in owner.grants if scope not in audited]
                for scope_name, bindings in program_bindings(owner, principal).items():
                    declared.setdefault(scope_name, []).extend(bindings)
            else:
                undeployed.append((Scope(owner.alias, owner.identity_kind, owner.identity_id), owner.what))
        actual = arm.read_assignments(client, audited)
        definitions = {a.role_definition_id for found in actual.values() for a in found}
        role_info = arm.resolve_roles(client, definitions)
    finally:
        client.close()
    findings = compare.compare(env.name, audited, declared, actual, role_info,
                               include_inherited=args.include_inherited)
    for scope, what in undeployed:  # their own sections, after the scopes read
        audited.append(scope)
        findings.append(compare.identity_missing(env.name, scope.name, scope.id, what))
    names = None if args.no_names else graph.display_names(
        {f.principal_id.lower() for f in findings}, args.graph_url)
    for finding in findings:
        finding.display_name = (names or {}).get(finding.principal_id.lower())
    result = report.AuditReport(env.name, env.spec.tier, subscription, audited, findings,
                                names_resolved=names is not None, include_inherited=args.include_inherited)
    text = report.render(result, args.format)
    if args.output and str(args.output) != "-":
        from hdsctl.files import write_atomic

        write_atomic(args.output, text + "\n")
        print(f"wrote the {args.format} report to {args.output} "
              f"({'clean' if result.clean else 'findings need attention'})", file=sys.stderr)
    else:
        print(text)
    return EXIT_OK if result.clean else EXIT_FAILED


def run_matrix(args) -> int:
    from hdsctl.audit import matrix
    from hdsctl.environment.load import list_stacks, load_environment, stack_file_path

    names = [n.strip() for n in args.stacks.split(",") if n.strip()] if args.stacks else list_stacks(
        args.stacks_dir)
    if not names:
        raise AuditUsageError(f"no stacks to compare: {args.stacks_dir} holds no Pulumi.<env>.yaml files"
                              if not args.stacks else "--stacks names no environment")
    environments = [load_environment(stack_file_path(name, args.stacks_dir)) for name in names]
    print(matrix.render(matrix.build(environments), args.format))
    return EXIT_OK
