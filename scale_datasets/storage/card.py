"""The dataset card: a short Markdown file next to each data file."""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_text_atomic
from .reader import FileInfo


def card_path(data_file: Path) -> Path:
    return data_file.with_name(f"{data_file.stem}.card.md")


def render_card(info: FileInfo, summary: str, loader: str) -> str:
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
        f"- made with: {', '.join(f'{k} {v}' for k, v in sorted(info.created_with.items()))}",
        "- parameters:",
        "",
        "```json",
        json.dumps(info.params, indent=2, sort_keys=True),
        "```",
        "",
        "## Contents",
        "",
        "| realisation | split | samples | image shape |",
        "|---|---|---|---|",
    ]
    for k, splits in info.realisations.items():
        lines += [
            f"| {k} | {s.name} | {s.size} | {' x '.join(map(str, s.image_shape))} |" for s in splits
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


def write_card(data_file: Path, info: FileInfo, summary: str, loader: str) -> Path:
    out = card_path(data_file)
    write_text_atomic(out, render_card(info, summary, loader))
    return out
