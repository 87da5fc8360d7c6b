"""`hdsctl capacity --measure`: a running service's own figures, as a workload profile.

Studies and instances by modality come from QIDO (StudyDate range, with ModalitiesInStudy and
NumberOfStudyRelatedInstances). Bytes per instance are the uncompressed pixel data of a sample of
each modality's studies (Rows x Columns x samples x bits x frames, from the WADO metadata): the
DICOM API does not report file sizes, and stored files are close to that for uncompressed images
(compressed ones are smaller, so the figure errs on the safe side).
"""

from __future__ import annotations

import datetime

import yaml

from hdsctl.dicom import keys
from hdsctl.dicom.web import dicom_values, first_value

PAGE = 200
SAMPLE_STUDIES = 20  # per modality, for bytes per instance


def _pixel_bytes(instance: dict) -> int:
    def number(tag: str, default: int) -> int:
        return int(first_value(instance, tag, default) or default)

    rows, columns = number(keys.KEYS["Rows"], 0), number(keys.KEYS["Columns"], 0)
    samples, bits = number(keys.KEYS["SamplesPerPixel"], 1), number(keys.KEYS["BitsAllocated"], 8)
    frames = number(keys.KEYS["NumberOfFrames"], 1)
    return rows * columns * samples * max(bits, 8) // 8 * frames


def measure(client, since: datetime.date, until: datetime.date) -> dict:
    """Profile-shaped figures: per modality studies/day, instances/study, bytes/instance."""
    studies: dict[str, list[tuple[str, int]]] = {}  # modality → (study, instances)
    offset = 0
    while True:
        page = client.search("studies", {"StudyDate": f"{since:%Y%m%d}-{until:%Y%m%d}"}, limit=PAGE,
                             offset=offset, includefield=("ModalitiesInStudy", "NumberOfStudyRelatedInstances"))
        for study in page:
            modalities = dicom_values(study, keys.KEYS["ModalitiesInStudy"]) or ["OT"]
            # A study counts once, under its first modality: its bytes are not split.
            studies.setdefault(str(modalities[0]), []).append(
                (str(first_value(study, keys.STUDY_INSTANCE_UID)),
                 int(first_value(study, keys.NUMBER_OF_STUDY_RELATED_INSTANCES, 0) or 0)))
        if len(page) < PAGE:
            break
        offset += len(page)
    days = (until - since).days + 1
    modalities = {}
    for modality, found in sorted(studies.items()):
        sizes = []
        for uid, _ in found[:SAMPLE_STUDIES]:
            sizes += [_pixel_bytes(instance) for instance in client.retrieve_metadata(uid)]
        instances = sum(n for _, n in found)
        modalities[modality] = {
            "studiesPerDay": round(len(found) / days, 3),
            "instancesPerStudy": round(instances / len(found), 2),
            "bytesPerInstance": round(sum(sizes) / len(sizes)) if sizes else 0,
            "source": f"measured: {len(found)} studies, {instances} instances dated {since} to {until}; "
                      f"bytes from the pixel data of {min(len(found), SAMPLE_STUDIES)} studies",
        }
    return {"modalities": modalities}


def run_measure(args, env) -> str:
    from hdsctl.arguments import budget_of
    from hdsctl.dicom.target import client_for, service_of
    from hdsctl.errors import BadInput

    service = service_of(env, args.service)
    try:
        until = datetime.datetime.strptime(args.until, "%Y%m%d").date() if args.until else datetime.date.today()
        since = (datetime.datetime.strptime(args.since, "%Y%m%d").date() if args.since
                 else until - datetime.timedelta(days=364))
    except ValueError:
        raise BadInput("--since and --until take dates as YYYYMMDD") from None
    if since > until:
        raise BadInput(f"--since {since} is after --until {until}")
    with client_for(env, service, args.url, budget_of(args)) as client:
        figures = measure(client, since, until)
    measured = [m for m in figures["modalities"].values() if m["bytesPerInstance"]]
    header = (f"# Workload measured on DICOM service {service.name} of stack {env.name}, studies dated "
              f"{since} to {until}.\n# Feed it to: hdsctl capacity --stack {env.name} --profile <this file>\n")
    if not measured:
        return header + "# No study in that range: nothing to project from.\n"
    figures["modalities"] = {k: v for k, v in figures["modalities"].items() if v["bytesPerInstance"]}
    return header + yaml.safe_dump(figures, sort_keys=False)
