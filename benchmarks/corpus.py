"""The benchmarks' archive: synthetic CT instances of 512x512x16 bit (about 525 KB each)."""

from __future__ import annotations

from pathlib import Path

from hdsctl.dicom.synthetic import synthetic_study


def ct_corpus(folder: Path, count: int, per_series: int = 25) -> list[Path]:
    """`count` single-frame instances written into `folder`, new UIDs each call."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    while len(files) < count:
        for instance in synthetic_study(instances_per_series=per_series, size=512).instances:
            if instance.frames == 1 and len(files) < count:
                path = folder / f"{len(files):06d}.dcm"
                path.write_bytes(instance.data)
                files.append(path)
    return files


def megabytes(files: list[Path]) -> float:
    return sum(path.stat().st_size for path in files) / 1e6
