"""A picture of a built file: a grid of samples, each captioned with its label and scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import InvalidParameterError
from .storage.reader import open_ours, split_group

CAPTION_PX = 14
GAP_PX = 2  # grey lines between tiles, so black backgrounds do not run together


def preview_grid(
    path: Path,
    split: str = "train",
    realisation: int = 0,
    count: int = 64,
    zoom: int = 3,
    columns: int = 8,
) -> Image.Image:
    """Samples spread evenly over the range of scales (smallest first), as one image."""
    if count < 1 or zoom < 1 or columns < 1:
        raise InvalidParameterError("count, zoom and columns must be >= 1")
    with open_ours(path) as h5:
        group = split_group(h5, realisation, split)
        scales = group["scales"][:]
        order = np.argsort(scales, kind="stable")
        picks = np.unique(order[np.linspace(0, len(order) - 1, min(count, len(order))).astype(int)])
        picks = picks[np.argsort(scales[picks], kind="stable")]
        images = group["images"][np.sort(picks)]
        labels = group["labels"][np.sort(picks)]
    by_index = {int(i): n for n, i in enumerate(np.sort(picks))}
    height, width = images.shape[-2:]
    tile_w, tile_h = width * zoom + GAP_PX, height * zoom + CAPTION_PX + GAP_PX
    rows = -(-len(picks) // columns)
    grid = Image.new("L", (columns * tile_w, rows * tile_h), color=40)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for slot, index in enumerate(picks):
        n = by_index[int(index)]
        pixels = images[n] if images.ndim == 3 else images[n].mean(axis=0).astype(np.uint8)
        tile = Image.fromarray(pixels).resize((width * zoom, height * zoom), Image.NEAREST)
        x, y = (slot % columns) * tile_w, (slot // columns) * tile_h
        grid.paste(tile, (x, y))
        draw.text(
            (x + 2, y + height * zoom + 1),
            f"{labels[n]} s={scales[index]:.2f}",
            fill=255,
            font=font,
        )
    return grid
