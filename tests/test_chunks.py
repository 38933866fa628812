"""Chunks encoded by the workers must be exactly what HDF5's own filters would store."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.storage import chunks
from scale_datasets.storage.chunks import encode_chunks, fletcher32


def _fletcher32_by_the_book(data: bytes) -> int:
    """HDF5's H5_checksum_fletcher32, transcribed word by word."""
    words, sum1, sum2, i = len(data) // 2, 0, 0, 0
    while words:
        block = min(words, 360)
        words -= block
        for _ in range(block):
            sum1 += (data[i] << 8) | data[i + 1]
            sum2 += sum1
            i += 2
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[i] << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=3000))
def test_fletcher32_matches_hdf5s_algorithm(data: bytes):
    assert fletcher32(data) == _fletcher32_by_the_book(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 1001, b"\xff" * 2000 + b"\x01", b"\xff" * 720, b"\xff\xfe" * 361 + b"\x80"],
    ids=["empty", "zeros", "all-ones-odd", "sums-at-multiples-of-65535", "odd-tail"],
)
def test_edge_sums_fold_like_hdf5(data: bytes):
    """0 stays 0 and a positive multiple of 65535 folds to 65535, as HDF5's folding does."""
    assert fletcher32(data) == _fletcher32_by_the_book(data)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_fletcher32_is_the_same_summed_in_small_blocks(data: bytes):
    """The blockwise dot (blocks of _DOT_WORDS words, 2**20 in use) agrees at any block size."""
    saved = chunks._DOT_WORDS
    try:
        chunks._DOT_WORDS = 7
        assert fletcher32(data) == _fletcher32_by_the_book(data)
    finally:
        chunks._DOT_WORDS = saved


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 700), st.integers(1, 200), st.integers(0, 2**32))
def test_encoded_chunks_read_back_through_hdf5_filters(tmp_path_factory, rows, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    data = (rng.random((rows, 9, 7)) < 0.3) * rng.integers(0, 256, (rows, 9, 7))
    data = data.astype(np.uint8)
    chunk_rows = min(chunk_rows, rows)
    path = Path(tmp_path_factory.mktemp("chunks")) / "c.h5"
    with h5py.File(path, "w") as h5:
        ds = h5.create_dataset(
            "x",
            shape=data.shape,
            dtype=np.uint8,
            chunks=(chunk_rows, 9, 7),
            compression="gzip",
            compression_opts=1,
            fletcher32=True,
        )
        for k, chunk in enumerate(encode_chunks(data, chunk_rows, 1)):
            ds.id.write_direct_chunk((k * chunk_rows, 0, 0), chunk)
    with h5py.File(path, "r") as h5:  # reading checks every chunk's fletcher32
        assert np.array_equal(h5["x"][:], data)
