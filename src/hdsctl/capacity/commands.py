"""`hdsctl capacity`: stored bytes per year and tier, and monthly cost, per DICOM service."""

from __future__ import annotations

from pathlib import Path

from hdsctl.arguments import add_budget_arguments, bounded_count
from hdsctl.errors import EXIT_OK

DEFAULT_RETENTION_YEARS = 10


def add_arguments(commands) -> None:
    capacity = commands.add_parser("capacity", help="project DICOM storage and its cost over the years")
    capacity.add_argument("--stack", required=True, help="environment, e.g. prod")
    capacity.add_argument("--profile", type=Path, help="workload profile (YAML; default: a mid-size hospital)")
    capacity.add_argument("--prices", type=Path,
                          help="price table per GB-month and tier (YAML; default: illustrative)")
    capacity.add_argument("--years", type=bounded_count(1, 100, "years"), default=10,
                          help="years to project (1-100; default 10)")
    capacity.add_argument("--format", choices=("table", "json", "html"), default="table")
    capacity.add_argument("--output", type=Path, help="write the report here instead of stdout")
    capacity.add_argument("--measure", action="store_true",
                          help="instead: measure a running service (studies, instances, bytes by modality)")
    capacity.add_argument("--service", help="with --measure: the DICOM service")
    capacity.add_argument("--since", help="with --measure: first StudyDate (YYYYMMDD; default a year ago)")
    capacity.add_argument("--until", help="with --measure: last StudyDate (YYYYMMDD; default today)")
    capacity.add_argument("--url", help="with --measure: data-plane base URL, overriding the stack's")
    add_budget_arguments(capacity, deadline_help="; with --measure")
    capacity.set_defaults(handler=run_capacity)


def workloads(env, profile) -> list:
    """One workload per DICOM service: the profile's figures, the stack's retention and tiering."""
    from hdsctl.capacity.projection import Modality, Workload

    found = []
    for service in env.spec.dicom_services:
        own = profile.services.get(service.name)
        modalities = (own and own.modalities) or profile.modalities
        retention = ((own and own.retention_years) or profile.retention_years
                     or (service.retention.minimum_years if service.retention else DEFAULT_RETENTION_YEARS))
        tiering = service.storage.tiering if service.storage and service.storage.tiering else None
        growth = own.growth_per_year if own and own.growth_per_year is not None else profile.growth_per_year
        updated = own.updated_share if own and own.updated_share is not None else profile.updated_share
        found.append((Workload(
            service.name,
            tuple(Modality(name, m.studies_per_day, m.instances_per_study, m.bytes_per_instance, m.source)
                  for name, m in modalities.items()),
            growth_per_year=growth,
            retention_years=retention,
            updated_share=updated,
            cool_after_days=tiering.cool_after_days if tiering else None,
            cold_after_days=tiering.cold_after_days if tiering else None,
        ), (f"Cool after {tiering.cool_after_days or '-'} d, Cold after {tiering.cold_after_days or '-'} d "
            "(storage.tiering)") if tiering else "none (every file stays Hot)"))
    return found


def run_capacity(args) -> int:
    from hdsctl.environment.load import load_environment, stack_file_path
    from hdsctl.files import check_outputs, write_atomic

    stack_path = stack_file_path(args.stack, args.stacks_dir)
    inputs = [stack_path, *(p for p in (args.profile, args.prices) if p)]
    check_outputs({"--output": args.output}, inputs, args.stacks_dir)  # never over a stack file or an input
    env = load_environment(stack_path)
    if args.measure:
        from hdsctl.capacity.measure import run_measure

        text = run_measure(args, env)
    else:
        text = _projection(args, env)
    if args.output:
        write_atomic(args.output, text + "\n")
    else:
        print(text)
    return EXIT_OK


def _projection(args, env) -> str:
    from hdsctl.capacity.profile import load_prices, load_profile
    from hdsctl.capacity.projection import project
    from hdsctl.capacity.report import CapacityReport, ServiceProjection, render

    profile, profile_source = load_profile(args.profile)
    prices, prices_source = load_prices(args.prices)
    projections = [ServiceProjection(workload, project(workload, args.years, prices.per_gb_month), tiering)
                   for workload, tiering in workloads(env, profile)]
    report = CapacityReport(env.name, profile_source, prices_source, prices.currency, prices.per_gb_month,
                            projections)
    return render(report, args.format)
