"""Tiny UCR/UEA .ts files for tests: smooth random series with a class-dependent frequency."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_fake_ucr(
    folder: Path,
    name: str = "GunPoint",
    n_train: int = 30,
    n_test: int = 40,
    length: int = 64,
    channels: int = 1,
    classes: tuple[str, ...] = ("1", "2"),
    seed: int = 0,
) -> Path:
    """``folder/<name>_TRAIN.ts`` and ``_TEST.ts``; returns the folder."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.linspace(0, 1, length, endpoint=False)
    for part, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = [
            f"@problemName {name}",
            "@timeStamps false",
            "@missing false",
            f"@univariate {'true' if channels == 1 else 'false'}",
            *([f"@dimensions {channels}"] if channels > 1 else []),
            "@equalLength true",
            f"@seriesLength {length}",
            f"@classLabel true {' '.join(classes)}",
            "@data",
        ]
        for i in range(n):
            k = i % len(classes)
            rows = [
                np.sin(2 * np.pi * (k + 1 + c) * t + rng.uniform(0, 6)) + rng.normal(0, 0.1, length)
                for c in range(channels)
            ]
            values = ":".join(",".join(f"{v:.6f}" for v in row) for row in rows)
            lines.append(f"{values}:{classes[k]}")
        (folder / f"{name}_{part}.ts").write_text("\n".join(lines) + "\n")
    return folder
