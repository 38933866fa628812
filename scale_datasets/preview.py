"""A picture of a built file: a grid of samples, each captioned with its label and plan value.

Works for every layout: samples are read through `ScaleDataset` (lazily, only the picked ones), so
on-access files are rendered exactly as a training loop would see them. Samples of different
resolutions sit top-left in equal cells, captioned just below, at the same zoom, so their sizes
can be compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InvalidParameterError

CAPTION_PX = 14
GAP_PX = 2  # grey lines between tiles, so black backgrounds do not run together


def _caption(label: int, column: str, value: float) -> str:
    if column == "resolutions":
        return f"{label} r={int(value)}"
    return f"{label} s={value:.2f}"


def _to_pil(sample: np.ndarray, zoom: int) -> Image.Image:
    """A (C, H, W) float sample in [0, 1] (ringing clipped) as a zoomed grey or RGB tile."""
    pixels = np.rint(np.clip(sample, 0.0, 1.0) * 255).astype(np.uint8)
    mode_pixels = pixels[0] if pixels.shape[0] == 1 else pixels[:3].transpose(1, 2, 0)
    tile = Image.fromarray(np.ascontiguousarray(mode_pixels))
    return tile.resize((tile.width * zoom, tile.height * zoom), Image.NEAREST).convert("RGB")


SIGNAL_HEIGHT_PX = 40
SIGNAL_MIN_WIDTH_PX = 96  # short signals still leave room for the caption
_CHANNEL_COLOURS = ((255, 255, 255), (255, 170, 60), (90, 200, 255), (150, 255, 120))


def _signal_to_pil(sample: np.ndarray, zoom: int) -> Image.Image:
    """A (C, n) signal as a line plot, ``zoom`` pixels per sample, each channel scaled to the
    tile by the signal's own range (the values are the source's, not in [0, 1])."""
    channels, n = sample.shape
    width, height = max(SIGNAL_MIN_WIDTH_PX, n * zoom), SIGNAL_HEIGHT_PX
    tile = Image.new("RGB", (width, height), color=(0, 0, 0))
    draw = ImageDraw.Draw(tile)
    lo, hi = float(np.nanmin(sample)), float(np.nanmax(sample))
    span = hi - lo if hi > lo else 1.0
    xs = (np.arange(n) + 0.5) * (width / n)
    for c in range(channels):
        ys = (height - 2) - (sample[c] - lo) / span * (height - 4)
        colour = _CHANNEL_COLOURS[c % len(_CHANNEL_COLOURS)]
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=colour, width=1)
    return tile


def preview_grid(
    path: Path,
    split: str = "train",
    realisation: int = 0,
    count: int = 64,
    zoom: int = 3,
    columns: int = 8,
) -> Image.Image:
    """Samples spread evenly over the range of plan values (smallest first), as one image."""
    from .datasets import ScaleDataset

    if count < 1 or zoom < 1 or columns < 1:
        raise InvalidParameterError("count, zoom and columns must be >= 1")
    dataset = ScaleDataset(path, split=split, realisation=realisation, in_memory=False)
    values = dataset.values
    if len(values) == 0:
        raise InvalidParameterError(f"split: {split!r} of {path} holds no samples")
    order = np.argsort(values, kind="stable")
    picks = np.unique(order[np.linspace(0, len(order) - 1, min(count, len(order))).astype(int)])
    picks = picks[np.argsort(values[picks], kind="stable")]
    items = dataset.__getitems__(picks.tolist())
    signals = items[0][0].ndim == 2  # (C, n): signals are drawn as line plots
    draw_tile = _signal_to_pil if signals else _to_pil
    tiles = [draw_tile(sample.numpy(), zoom) for sample, _ in items]
    if signals:
        columns = min(columns, 4)  # long tiles: fewer per row
    cell_w = max(t.width for t in tiles) + GAP_PX
    cell_h = max(t.height for t in tiles) + CAPTION_PX + GAP_PX
    rows = -(-len(tiles) // columns)
    grid = Image.new("RGB", (columns * cell_w, rows * cell_h), color=(40, 40, 40))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for slot, (tile, (_, label), index) in enumerate(zip(tiles, items, picks, strict=True)):
        x, y = (slot % columns) * cell_w, (slot // columns) * cell_h
        grid.paste(tile, (x, y))
        caption = _caption(label, dataset.plan_column, float(values[index]))
        draw.text((x + 2, y + tile.height + 1), caption, fill=(255, 255, 255), font=font)
    return grid.convert("L") if items[0][0].shape[0] == 1 and not signals else grid
