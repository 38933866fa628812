"""The dataset card: a short Markdown file next to each data file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import InvalidParameterError
from .atomic import write_text_atomic
from .reader import FileInfo

_LAYOUT_NOTES = {
    "pixels": " (rendered samples stored as uint8)",
    "on-access": " (the source pool and the plan are stored; samples are rendered when read)",
}

log = logging.getLogger(__name__)


def card_path(data_file: Path) -> Path:
    return data_file.with_name(f"{data_file.stem}.card.md")


def render_card(info: FileInfo, summary: str, loader: str, notes: list[str] | None = None) -> str:
    name = Path(info.path).name
    lines = [
        f"# {name}",
        "",
        f"{summary}",
        "",
        "## How it was built",
        f"- preset: `{info.preset}` (version {info.preset_version})",
        f"- source: `{info.source.get('name')}`, images sha256 "
        f"`{info.source.get('sha256', {}).get('images', '?')}`",
        f"- layout: `{info.layout}`" + _LAYOUT_NOTES[info.layout],
        f"- render op: `{info.render['op']}` over the plan column `{info.render['column']}`"
        + (
            f", parameters `{json.dumps(info.render['params'], sort_keys=True)}`"
            if info.render["params"]
            else ""
        ),
        *(f"- {note}" for note in notes or []),
        f"- made with: {', '.join(f'{k} {v}' for k, v in sorted(info.created_with.items()))}",
        "- parameters:",
        "",
        "```json",
        json.dumps(info.params, indent=2, sort_keys=True),
        "```",
        "",
        "## Contents",
        "",
        "| realisation | split | samples | sample |",
        "|---|---|---|---|",
    ]
    for k, splits in info.realisations.items():
        lines += [
            f"| {k} | {s.name} | {s.size} | {s.describe(info.rendered_shape)} |" for s in splits
        ]
    if info.base_shape:
        shape = " x ".join(map(str, info.base_shape))
        lines += ["", f"Base pool under `/base/images`: {shape} {info.base_dtype}."]
    if info.materialised:
        lines += [
            "",
            "Materialised: each split's rendered samples are stored as float32 "
            "`<split>/r<r>/images` (n, C, r, r), with `<split>/index` (N, 2) = (r, row).",
        ]
    if info.shard:
        lines += [
            "",
            f"This is shard {info.shard['index']}/{info.shard['count']}; "
            "join the shards with `scale-datasets merge`.",
        ]
    lines += [
        "",
        f"File size: {info.file_bytes / 1e6:.1f} MB. content_sha256: `{info.content_sha256}`",
        "",
        "## Check and load",
        "```",
        f"scale-datasets verify {name}",
        "```",
        "```python",
        loader.format(path=name),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(
    data_file: Path, info: FileInfo, summary: str, loader: str, notes: list[str] | None = None
) -> Path | None:
    """Write the card beside a published data file; returns its path, or None when it could
    not be written (a full disk, a folder in its place): the data file is complete and
    verified without it, so that is a warning, not a failed build."""
    out = card_path(data_file)
    try:
        write_text_atomic(out, render_card(info, summary, loader, notes))
    except (OSError, InvalidParameterError) as exc:  # a folder in its place, too
        reason = getattr(exc, "strerror", None) or exc
        log.warning("dataset card not written (%s: %s); %s is complete", out, reason, data_file)
        return None
    return out
