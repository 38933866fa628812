"""`verify`: recompute every digest from the stored rows and compare with the recorded ones.

Reading every chunk also makes HDF5 check each chunk's fletcher32 checksum, so a flipped byte
in pixel data, a lost dataset or a file that is not ours all end in IntegrityError.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py

from ..errors import IntegrityError
from .hashing import DatasetDigest, attributes_digest, dtype_name, file_digest, group_digest
from .reader import open_ours, row_blocks

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyReport:
    path: str
    content_sha256: str
    datasets: int
    bytes_checked: int


def _all_datasets(h5: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, obj: object) -> None:  # returning non-None would stop the walk
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    h5.visititems(visit)
    return found


def _digest_dataset(ds: h5py.Dataset, on_rows: Callable[[int], None]) -> DatasetDigest:
    digest = DatasetDigest(ds.name.lstrip("/"), dtype_name(ds.dtype), tuple(ds.shape))
    for _, rows in row_blocks(ds):
        digest.update(rows)
        on_rows(len(rows))
    return digest


def _check_attributes(path: Path, h5: h5py.File) -> None:
    """The attributes readers rely on: each realisation's id matches its group's name, every
    top-level group keeps its content_sha256, and (files written since attributes are digested)
    nothing else changed: `attributes_digest` against the recorded ``attrs_sha256``."""
    for name in h5:
        group = h5[name]
        if not isinstance(group, h5py.Group):
            continue
        if "content_sha256" not in group.attrs:
            raise IntegrityError(f"{path}: group {name} lost its content_sha256")
        if name.startswith("realisation_"):
            recorded = group.attrs.get("realisation")
            recorded = recorded.item() if hasattr(recorded, "item") else recorded
            if str(recorded) != name[len("realisation_") :]:
                raise IntegrityError(
                    f"{path}: group {name} records realisation {recorded!r}, not its own id"
                )
    if "attrs_sha256" in h5.attrs and h5.attrs["attrs_sha256"] != attributes_digest(h5):
        raise IntegrityError(
            f"{path}: attributes do not match their recorded attrs_sha256 (an attribute such as "
            "the preset, the params, the source record or a group's was changed, added or "
            "removed)"
        )


def verify_file(path: Path | str, progress: Progress | None = None) -> VerifyReport:
    """Check structure, every chunk checksum and every digest; raise IntegrityError if off."""
    path = Path(path)
    with open_ours(path) as h5:
        try:
            expected_names = set(json.loads(h5.attrs["dataset_names"]))
            recorded = str(h5.attrs["content_sha256"])
            params_json = str(h5.attrs["params"])
            source = json.loads(h5.attrs["source"])
            layout_render = (
                {"layout": str(h5.attrs["layout"]), "render": str(h5.attrs["render"])}
                if int(h5.attrs["format_version"]) >= 2
                else None
            )
            if not isinstance(json.loads(h5.attrs["dataset_names"]), list):
                raise ValueError("dataset_names is not a list")
        except (KeyError, ValueError, TypeError) as exc:
            raise IntegrityError(
                f"{path}: required attribute missing or malformed ({exc})"
            ) from exc
        datasets = _all_datasets(h5)
        missing = sorted(expected_names - set(datasets))
        if missing:
            raise IntegrityError(
                f"{path}: missing dataset {missing[0]}"
                + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            )
        extra = sorted(set(datasets) - expected_names)
        if extra:
            raise IntegrityError(f"{path}: unexpected dataset {extra[0]}")
        # Every group is on the way to a recorded dataset: an added (even empty) group is not
        # covered by any digest, and readers list realisations and splits by their groups.
        expected_groups = {
            "/".join(name.split("/")[:k])
            for name in expected_names
            for k in range(1, name.count("/") + 1)
        }
        groups: list[str] = []
        h5.visit(lambda name: groups.append(name) if isinstance(h5[name], h5py.Group) else None)
        stray = sorted(set(groups) - expected_groups)
        if stray:
            raise IntegrityError(f"{path}: unexpected group {stray[0]}")
        total_rows = sum(ds.shape[0] for ds in datasets.values())
        done = 0

        def on_rows(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total_rows)

        entries = []
        checked = 0
        for name in sorted(datasets):
            ds = datasets[name]
            digest = _digest_dataset(ds, on_rows)
            sha = digest.hexdigest()
            if ds.attrs.get("sha256") != sha:
                raise IntegrityError(f"{path}: dataset {name} does not match its recorded sha256")
            checked += ds.size * ds.dtype.itemsize
            entries.append(
                {"name": name, "dtype": digest.dtype, "shape": list(digest.shape), "sha256": sha}
            )
        for group_name in h5:
            group = h5[group_name]
            recorded_group = (
                group.attrs.get("content_sha256") if isinstance(group, h5py.Group) else None
            )
            if recorded_group is not None and recorded_group != group_digest(entries, group_name):
                raise IntegrityError(
                    f"{path}: group {group_name} does not match its recorded content_sha256"
                )
        source_digests = source.get("sha256", {}) if isinstance(source, dict) else {}
        content = file_digest(params_json, source_digests, entries, layout_render)
        if content != recorded:
            raise IntegrityError(
                f"{path}: content_sha256 mismatch: recorded {recorded[:16]}..., "
                f"computed {content[:16]}..."
            )
        _check_attributes(path, h5)
        log.info("verified %s: %d datasets, %d bytes", path, len(entries), checked)
        return VerifyReport(str(path), content, len(entries), checked)
