"""`hdsctl dicom smoke`: prove that a deployed DICOM service stores, finds (by its extended
query tags too), returns and deletes images, with a synthetic study that cleans up after itself.

The study is stored with the expiry headers set to an hour, so even a run that is killed
leaves nothing behind on Azure for long; the run deletes it at the end in every case.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field

from hdsctl.dicom import keys
from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import SyntheticStudy, synthetic_study
from hdsctl.dicomtags import TagDefinition
from hdsctl.errors import HdsctlError

EXPIRY_MS = 3_600_000
QIDO_LEVEL = {"Study": "studies", "Series": "series", "Instance": "instances"}
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Step:
    name: str
    status: str
    milliseconds: int
    detail: str = ""


@dataclass
class SmokeReport:
    url: str
    study_uid: str | None = None
    steps: list[Step] = field(default_factory=list)
    cleanup: str = "not needed"

    @property
    def passed(self) -> bool:
        return all(step.status != FAILED for step in self.steps) and not self.cleanup.startswith("FAILED")

    def to_json(self) -> dict:
        return {"url": self.url, "studyInstanceUid": self.study_uid, "passed": self.passed,
                "steps": [asdict(step) for step in self.steps], "cleanup": self.cleanup}


class _Failed(Exception):
    pass


class SmokeRun:
    def __init__(self, client: DicomClient, declared: list[TagDefinition], *, keep: bool = False):
        self.client = client
        self.declared = declared
        self.keep = keep
        self.report = SmokeReport(client.base_url)
        self.study: SyntheticStudy | None = None
        self.stored = False

    def run(self) -> SmokeReport:
        try:
            ready = self._step("read extended query tags", self._ready_tags)
            if ready is None:
                return self.report
            if not self._step("store (STOW-RS)", self._store):
                self._skip_rest("nothing was stored")
                return self.report
            study = self.study
            self._step("search by StudyInstanceUID",
                       lambda: self._find("studies", {"StudyInstanceUID": study.study_uid}))
            self._step("search by PatientID", lambda: self._find("studies", {"PatientID": study.patient_id}))
            self._step("search by StudyDate range",
                       lambda: self._find("studies", {"StudyDate": f"{study.study_date}-{study.study_date}"}))
            for tag in self.declared:
                self._search_by_tag(tag, ready)
            first = study.instances[0]
            self._step("retrieve instance (WADO-RS)", lambda: self._retrieve(first))
            self._step("retrieve metadata", lambda: self._metadata(first))
            for media in ("image/jpeg", "image/png"):
                self._step(f"retrieve rendered {media}", lambda media=media: self._rendered(first, media))
            self._step("retrieve one frame", self._frame)
        finally:
            self._clean_up()
        return self.report

    # -- steps ---------------------------------------------------------------------------

    def _step(self, name: str, action):
        started = time.perf_counter()
        try:
            outcome = action()
            detail, value = (outcome if isinstance(outcome, tuple) else (outcome, True))
            status = PASSED
        except _Skipped as skipped:
            detail, value, status = str(skipped), None, SKIPPED
        except (_Failed, HdsctlError) as err:
            detail, value, status = str(err), None, FAILED
        elapsed = int((time.perf_counter() - started) * 1000)
        self.report.steps.append(Step(name, status, elapsed, str(detail or "")))
        return value

    def _skip_rest(self, why: str) -> None:
        self.report.steps.append(Step("remaining steps", SKIPPED, 0, why))

    def _ready_tags(self):
        observed = {tag.path: tag for tag in self.client.list_tags()}
        ready = {path for path, tag in observed.items() if tag.status == "ready" and tag.query_enabled}
        return f"{len(observed)} on the service, {len(ready)} ready and enabled", ready

    def _store(self):
        self.study = synthetic_study(self.declared)
        self.report.study_uid = self.study.study_uid
        result = self.client.store([i.data for i in self.study.instances], study=self.study.study_uid,
                                   expiry_ms=None if self.keep else EXPIRY_MS)
        self.stored = bool(result.stored)
        if result.failed or len(result.stored) != len(self.study.instances):
            reasons = ", ".join(f"{f.sop_instance_uid[-12:]}: {f.meaning}" for f in result.failed)
            total = len(self.study.instances)
            raise _Failed(f"{result.status}: {len(result.stored)} of {total} stored; {reasons}")
        expiry = "kept (--keep)" if self.keep else "expires in 1 hour if not deleted"
        return f"{len(result.stored)} instances in 2 series, {expiry}", True

    def _find(self, level: str, filters: dict[str, str], key: str = keys.STUDY_INSTANCE_UID,
              wanted: str | None = None):
        wanted = wanted or self.study.study_uid
        # Narrowed by the smoke study's own UID: on a busy service today's date (or a sample
        # value) matches more than a page, and the study need not be on the first one.
        named = {keys.KEYS.get(name, name.upper()) for name in filters}  # the service refuses one given twice
        narrowed = filters if key in named else {**filters, key: wanted}
        found = [(item.get(key) or {}).get("Value", [None])[0] for item in self.client.search(level, narrowed)]
        if wanted not in found:
            raise _Failed(f"{level} matching {filters} did not include {wanted} ({len(found)} found)")
        return "found"

    def _search_by_tag(self, tag: TagDefinition, ready: set[str]) -> None:
        level = QIDO_LEVEL[tag.level]
        key = keys.LEVEL_UIDS[level]
        target = {"studies": self.study.study_uid, "series": self.study.instances[0].series_uid,
                  "instances": self.study.instances[0].sop_uid}[level]
        name = f"search by {tag.keyword or tag.path} ({tag.level})"
        value = self.study.tag_values[tag.path]

        def search():
            try:
                return self._find(level, {tag.path: value}, key, target)
            except HdsctlError as err:
                if tag.path not in ready and getattr(err, "status", None) == 400:
                    raise _Skipped("not ready and enabled on the service, so not searchable yet "
                                   "(answered 400); run hdsctl tags sync") from None
                raise

        self._step(name, search)

    def _retrieve(self, instance):
        import pydicom

        data = self.client.retrieve_instance(self.study.study_uid, instance.series_uid, instance.sop_uid)
        dataset = pydicom.dcmread(io.BytesIO(data))
        if str(dataset.SOPInstanceUID) != instance.sop_uid:
            raise _Failed(f"got SOPInstanceUID {dataset.SOPInstanceUID}, asked for {instance.sop_uid}")
        return f"{len(data)} bytes, parses as DICOM"

    def _metadata(self, instance):
        metadata = self.client.retrieve_metadata(self.study.study_uid, instance.series_uid, instance.sop_uid)
        if len(metadata) != 1:
            raise _Failed(f"expected one dataset, got {len(metadata)}")
        missing = [tag.path for tag in self.declared if tag.path not in metadata[0]]
        if missing:
            raise _Failed(f"metadata lacks the declared tags {', '.join(missing)}")
        return f"{len(metadata[0])} attributes, every declared tag present"

    def _rendered(self, instance, media: str):
        from PIL import Image

        data = self.client.retrieve_rendered(self.study.study_uid, instance.series_uid, instance.sop_uid,
                                             media=media)
        image = Image.open(io.BytesIO(data))
        image.load()
        expected = {"image/jpeg": "JPEG", "image/png": "PNG"}[media]
        if image.format != expected or image.size != (instance.columns, instance.rows):
            raise _Failed(f"got {image.format} {image.size}, expected {expected} "
                          f"{(instance.columns, instance.rows)}")
        return f"{expected} {image.size[0]}x{image.size[1]}"

    def _frame(self):
        instance = self.study.multiframe
        frames = self.client.retrieve_frames(self.study.study_uid, instance.series_uid, instance.sop_uid, [2])
        expected = instance.rows * instance.columns * 2
        if len(frames) != 1 or len(frames[0]) != expected:
            raise _Failed(f"frame 2: got {[len(f) for f in frames]} bytes, expected {expected}")
        return f"frame 2 of {instance.frames}, {expected} bytes"

    def _clean_up(self) -> None:
        if not self.stored or self.study is None:
            return
        if self.keep:
            self.report.cleanup = f"kept study {self.study.study_uid} (--keep)"
            return
        started = time.perf_counter()
        try:
            self.client.delete(self.study.study_uid)
            left = self.client.search("studies", {"StudyInstanceUID": self.study.study_uid})
            if left:
                raise _Failed("the study is still found after DELETE")
        except (_Failed, HdsctlError) as err:
            self.report.cleanup = (f"FAILED: {str(err).splitlines()[0]}; the study expires within an hour "
                                   "by itself")
            return
        elapsed = int((time.perf_counter() - started) * 1000)
        self.report.steps.append(Step("delete study, then search: gone", PASSED, elapsed))
        self.report.cleanup = "deleted"


class _Skipped(Exception):
    pass


def render(report: SmokeReport, heading: str) -> str:
    lines = [heading, f"  study {report.study_uid or '-'} at {report.url}"]
    for step in report.steps:
        mark = {PASSED: "ok  ", FAILED: "FAIL", SKIPPED: "skip"}[step.status]
        lines.append(f"  {mark}  {step.name:<42} {step.milliseconds:>6} ms  {step.detail}")
    lines.append(f"  cleanup: {report.cleanup}")
    lines.append("  PASSED: the service stores, finds, returns and deletes images" if report.passed
                 else "  FAILED: see the steps above")
    return "\n".join(lines)
