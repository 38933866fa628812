"""UCR/UEA source: the .ts reader (header checked against data, missing values, bad files named by
file:line), lookup by problem name, the download, and the archive problems the aeon wheel ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scale_datasets.errors import InvalidParameterError, SourceCorruptError, SourceNotFoundError
from scale_datasets.sources import ucr
from scale_datasets.sources.ts import read_ts
from scale_datasets.sources.ucr import (
    UCR_DOWNLOAD_URL,
    UCR_URL_ENV,
    load_ucr,
    packaged_problem_dirs,
)

# keyword -> value; the order is the order written
HEADER = {
    "problemName": "Tiny",
    "timeStamps": "false",
    "missing": "false",
    "univariate": "true",
    "equalLength": "true",
    "seriesLength": "3",
    "classLabel": "true b a",
}
MULTI = {"univariate": "false", "dimensions": "2", "equalLength": "false", "seriesLength": None}


def write_ts(
    path: Path, rows: list[str], data: bool = True, **changes: str | None
) -> tuple[Path, list[str]]:
    """A .ts file: a comment, HEADER with `changes` (None drops a field), @data, rows."""
    fields = {**HEADER, **changes}
    header = [f"@{key} {value}" for key, value in fields.items() if value is not None]
    lines = ["# written by a test", *header, *(["@data"] if data else []), *rows]
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def line_of(lines: list[str], where: int | str) -> int:
    """The 1-based line of row `where` (an index), of the line starting with `where` (a str),
    or the last line ("last")."""
    if where == "last":
        return len(lines)
    if isinstance(where, int):
        return lines.index("@data") + 2 + where
    return next(n for n, line in enumerate(lines, 1) if line.startswith(where))


def write_problem(folder: Path, name: str = "Tiny", test_labels: str = "true a b") -> None:
    """TRAIN (3 series, classes declared b a) and TEST (2 series, declared `test_labels`)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_ts(folder / f"{name}_TRAIN.ts", ["1,2,3:a", "4,5,6:b", "-1,0.5,2e3:a"], problemName=name)
    write_ts(folder / f"{name}_TEST.ts", ["7,8,9:b", "1e-3,2,3:a"], classLabel=test_labels)


def aeon_data_or_skip() -> Path:
    for folder in packaged_problem_dirs():
        if (folder / "GunPoint" / "GunPoint_TRAIN.ts").is_file():
            return folder
    if os.environ.get("CI"):
        pytest.fail("aeon is not installed: .ci/run must `pip install --no-deps aeon`")
    pytest.skip("aeon not installed (pip install --no-deps aeon): no packaged UCR problems")


def first_row(path: Path) -> tuple[list[float], str]:
    """The values of the first channel of the first series in `path`, and its label, as text."""
    lines = path.read_text(encoding="utf-8").splitlines()
    row = lines[[line.strip().lower() for line in lines].index("@data") + 1]
    return [float(v) for v in row.split(":")[0].split(",")], row.rsplit(":", 1)[1]


# --- reading one file --------------------------------------------------------------------------


def test_reads_values_and_labels_in_header_order(tmp_path: Path) -> None:
    path, _ = write_ts(tmp_path / "t.ts", ["1,2,3:a", "-4.5,1e-3,2E+2:b", "0,0,0:a"])
    ts = read_ts(path)
    assert ts.problem_name == "Tiny" and ts.class_names == ("b", "a")
    np.testing.assert_array_equal(ts.labels, [1, 0, 1])  # "b" is declared first
    assert ts.labels.dtype == np.int64
    assert [s.dtype for s in ts.series] == [np.float64] * 3
    np.testing.assert_array_equal(ts.series[1], [[-4.5, 0.001, 200.0]])
    assert ts.channels == 1 and ts.lengths.tolist() == [3, 3, 3]
    assert ts.header["serieslength"] == "3" and ts.line_numbers == (10, 11, 12)
    with pytest.raises(ValueError):
        ts.series[0][0, 0] = 5.0
    with pytest.raises(ValueError):
        ts.labels[0] = 0


def test_header_keywords_are_case_insensitive_and_extras_tolerated(tmp_path: Path) -> None:
    text = (
        "% an ARFF-style comment\n@PROBLEMNAME Tiny\n@TimeStamps FALSE\n@UNIVARIATE True\n"
        "@equallength true\n@SERIESLENGTH 2\n@targetlabel false\n@dimensions 1\n@foo bar baz\n"
        "@ClassLabel TRUE x y\n\n@DATA\r\n1,2:y\r\n\n# a comment between series\n3,4:x\r\n"
    )
    path = tmp_path / "t.ts"
    path.write_text(text)
    ts = read_ts(path)
    assert ts.class_names == ("x", "y") and ts.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(np.stack(ts.series), [[[1, 2]], [[3, 4]]])


def test_multivariate_variable_length(tmp_path: Path) -> None:
    path, _ = write_ts(tmp_path / "t.ts", ["1,2,3:4,5,6:a", "7:8:b"], **MULTI)
    ts = read_ts(path)
    assert ts.channels == 2 and ts.lengths.tolist() == [3, 1]
    np.testing.assert_array_equal(ts.series[0], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(ts.series[1], [[7], [8]])


def test_a_header_without_length_fields_takes_lengths_from_the_data(tmp_path: Path) -> None:
    """ArrowHead's header says nothing about lengths."""
    rows = ["1,2,3:a", "1,2:b"]
    path, _ = write_ts(tmp_path / "t.ts", rows, equalLength=None, seriesLength=None)
    assert read_ts(path).lengths.tolist() == [3, 2]


# (id, header changes, rows, where the fault is: row index | header line prefix | "last", phrase)
CORRUPT = [
    ("no series", {}, [], "@data", "no series after @data"),
    ("label missing", {}, ["1,2,3:a", "1,2,3"], 1, "no class label"),
    ("label empty", {}, ["1,2,3:a", "1,2,3:"], 1, "no class label"),
    ("cut mid-series", {}, ["1,2,3:a", "1,2,3:b", "0.5,-1."], 2, "no class label"),
    ("multivariate cut", MULTI, ["1,2:3,4:a", "1,2:3,4"], 1, "no class label"),
    ("no values", {}, ["1,2,3:a", ":b"], 1, "no values"),
    ("non-numeric", {}, ["1,2,3:a", "1,x2,3:b"], 1, "non-numeric value 'x2' at channel 1, "),
    ("empty value", {}, ["1,,3:a"], 0, "an empty value at channel 1, position 2"),
    ("infinite", {}, ["1,2,3:a", "1,-inf,3:a"], 1, "infinite value"),
    ("unknown label", {}, ["1,2,3:a", "1,2,3:c"], 1, "unknown class label 'c'"),
    ("ragged", MULTI, ["1,2,3:4,5,6:a", "1,2,3:4,5:b"], 1, "channel 2 has 2"),
    ("univariate but 2", {}, ["1,2,3:a", "1,2,3:4,5,6:a"], 1, "@univariate true"),
    ("dimensions", MULTI, ["1,2:3,4:a", "1,2:3,4:5,6:a"], 1, "@dimensions 2"),
    ("channels vary", {**MULTI, "dimensions": None}, ["1:2:a", "1:a"], 1, "first series has 2"),
    ("seriesLength", {}, ["1,2,3:a", "1,2,3,4:b"], 1, "@seriesLength is 3"),
    ("equalLength", {"seriesLength": None}, ["1,2,3:a", "1,2:b"], 1, "@equalLength is true"),
    ("missing @data", {}, ["1,2,3:a"], "1,2,3:a", "before @data"),
    ("header after data", {}, ["1,2,3:a", "@seriesLength 3"], 1, "header line after @data"),
    ("no @classLabel", {"classLabel": None}, ["1,2,3:a"], "@data", "no @classLabel"),
    ("no @problemName", {"problemName": None}, ["1,2,3:a"], "@data", "no @problemName"),
    ("bad boolean", {"univariate": "maybe"}, ["1,2,3:a"], "@univariate", "true or false"),
    ("bad length", {"seriesLength": "-3"}, ["1,2,3:a"], "@seriesLength", "positive integer"),
    ("no labels", {"classLabel": "true"}, ["1,2,3:a"], "@classLabel", "followed by the labels"),
    ("bare @classLabel", {"classLabel": ""}, ["1,2,3:a"], "@classLabel", "followed by the"),
    ("tab separated", {"classLabel": "\ttrue\tb"}, ["1,2,3:a"], 0, "unknown class label 'a'"),
    ("twice", {"classLabel": "true a a"}, ["1,2,3:a"], "@classLabel", "declares a label twice"),
    ("@missing false", {}, ["1,2,3:a", "1,?,3:b"], 1, "the header says @missing false"),
    ("only NaN", {"equalLength": "false"}, ["nan,NaN,NAN:a"], 0, "holds only NaN"),
    ("timeStamps", {"timeStamps": "true"}, ["1,2,3:a"], "@timeStamps", "are not supported"),
    ("regression", {"classLabel": "false"}, ["1,2,3:2.5"], "@classLabel", "only classif"),
    ("target", {"targetLabel": "true"}, ["1,2,3:a"], "@targetLabel", "regression problems"),
]


@pytest.mark.parametrize(
    ("changes", "rows", "where", "phrase"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT]
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, changes: dict, rows: list[str], where: int | str, phrase: str
) -> None:
    data = where != "1,2,3:a"  # the "missing @data" case: its fault is that row
    path, lines = write_ts(tmp_path / "bad.ts", rows, data=data, **changes)
    with pytest.raises(SourceCorruptError) as caught:
        read_ts(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line_of(lines, where)}: "), message
    assert phrase in message and "\n" not in message


def test_a_header_field_given_twice_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "t.ts"
    path.write_text("@problemName A\n@problemName B\n@classLabel true a\n@data\n1:a\n")
    with pytest.raises(SourceCorruptError, match=rf"^{path}:2: .*contradicts line 1"):
        read_ts(path)
    path.write_text(
        "@problemName A\n@missing TRUE\n@Missing true\n@classLabel true a\n@data\n1:a\n"
    )
    assert read_ts(path).problem_name == "A"
    path.write_text("@problemName A\n@classLabel true a\n@classLabel true A\n@data\n1:a\n")
    with pytest.raises(SourceCorruptError, match=rf"^{path}:3: .*contradicts line 2"):
        read_ts(path)


def test_a_file_cut_inside_the_header_or_empty(tmp_path: Path) -> None:
    path, lines = write_ts(tmp_path / "t.ts", [], data=False)
    with pytest.raises(SourceCorruptError, match=rf"^{path}:{len(lines)}: no @data"):
        read_ts(path)
    path.write_text("")
    with pytest.raises(SourceCorruptError, match=rf"^{path}:1: no @data"):
        read_ts(path)


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    path, lines = write_ts(tmp_path / "t.ts", ["1,2,3:a", "1,2,3:b"])
    path.write_bytes(path.read_bytes().replace(b"1,2,3:b", b"1,\xff,3:b"))
    with pytest.raises(SourceCorruptError, match=rf"^{path}:{line_of(lines, 1)}: not UTF-8"):
        read_ts(path)


# --- missing values and NaN padding ------------------------------------------------------------


def test_missing_values_are_refused_unless_filled(tmp_path: Path) -> None:
    rows = ["1,2,3:a", "1,?,3:b"]
    path, lines = write_ts(tmp_path / "t.ts", rows, missing="true")
    with pytest.raises(SourceCorruptError) as caught:
        read_ts(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line_of(lines, 1)}: missing value at channel 1, position 2")
    assert "fill_missing='linear' or 'zero'" in message
    zero = read_ts(path, fill_missing="zero")
    np.testing.assert_array_equal(zero.series[1], [[1, 0, 3]])
    assert zero.n_filled == 1


def test_linear_fill_interpolates_per_channel_and_holds_the_ends(tmp_path: Path) -> None:
    rows = ["?,2,?,?,8,?:?,?,1,NaN,3,?:a"]
    path, _ = write_ts(tmp_path / "t.ts", rows, missing="true", **MULTI)
    ts = read_ts(path, fill_missing="linear")
    np.testing.assert_array_equal(ts.series[0], [[2, 2, 4, 6, 8, 8], [1, 1, 1, 2, 3, 3]])
    assert ts.n_filled == 8


def test_a_channel_without_any_value_cannot_be_filled(tmp_path: Path) -> None:
    path, lines = write_ts(tmp_path / "t.ts", ["1,2:3,4:a", "1,2:?,?:a"], missing="true", **MULTI)
    with pytest.raises(SourceCorruptError, match=rf"^{path}:{line_of(lines, 1)}: channel 2 has"):
        read_ts(path, fill_missing="linear")
    assert read_ts(path, fill_missing="zero").series[1].tolist() == [[1, 2], [0, 0]]


def test_unknown_fill_mode(tmp_path: Path) -> None:
    path, _ = write_ts(tmp_path / "t.ts", ["1,2,3:a"])
    with pytest.raises(InvalidParameterError, match="fill_missing"):
        read_ts(path, fill_missing="mean")
    with pytest.raises(InvalidParameterError, match="fill_missing"):
        load_ucr("Tiny", source_dir=tmp_path, fill_missing="mean")


def test_trailing_nan_is_variable_length_padding(tmp_path: Path) -> None:
    """The archive pads variable-length series with NaN; that padding is not a missing value."""
    rows = ["1,2,NaN,NaN:a", "1,2,3,4:b"]
    path, _ = write_ts(tmp_path / "u.ts", rows, equalLength="false", seriesLength=None)
    assert read_ts(path).lengths.tolist() == [2, 4]
    path, _ = write_ts(tmp_path / "m.ts", ["1,2,NaN:4,5,nan:a", "1:2:b"], **MULTI)
    assert [s.tolist() for s in read_ts(path).series] == [[[1, 2], [4, 5]], [[1], [2]]]


def test_nan_inside_a_series_or_in_one_channel_only_is_missing(tmp_path: Path) -> None:
    rows = ["1,NaN,3,NaN:5,6,7,NaN:b", "1,2,NaN:4,5,6:a"]
    path, lines = write_ts(tmp_path / "t.ts", rows, **MULTI)
    with pytest.raises(SourceCorruptError, match=rf"^{path}:{line_of(lines, 0)}: missing value"):
        read_ts(path)  # the header says @missing false
    path, _ = write_ts(tmp_path / "t.ts", rows, missing="true", **MULTI)
    filled = read_ts(path, fill_missing="linear").series
    assert [s.tolist() for s in filled] == [[[1, 2, 3], [5, 6, 7]], [[1, 2, 2], [4, 5, 6]]]


def test_nan_is_not_padding_in_an_equal_length_file_nor_is_a_trailing_question_mark(
    tmp_path: Path,
) -> None:
    path, _ = write_ts(tmp_path / "t.ts", ["1,2,NaN:a"], missing="true")
    with pytest.raises(SourceCorruptError, match="missing value at channel 1, position 3"):
        read_ts(path)
    path, _ = write_ts(tmp_path / "q.ts", ["1,2,?:a"], missing="true", equalLength="false")
    with pytest.raises(SourceCorruptError, match="missing value at channel 1, position 3"):
        read_ts(path)


# --- round trip --------------------------------------------------------------------------------

LABELS = ("1", "-1", "Walking", "0.0", "b")
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
STYLES = (repr, "{:.17e}".format, "{:.17E}".format, lambda v: repr(v).upper())


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_written_series_read_back_exactly(data: st.DataObject) -> None:
    channels = data.draw(st.integers(1, 3), label="channels")
    count = data.draw(st.integers(1, 6), label="count")
    series, labels, rows = [], [], []
    for _ in range(count):
        length = data.draw(st.integers(1, 9))
        values = np.array(data.draw(st.lists(FINITE, min_size=channels * length, max_size=99)))
        values = values[: channels * length].reshape(channels, length)
        style = data.draw(st.sampled_from(STYLES))
        label = data.draw(st.sampled_from(LABELS))
        series.append(values)
        labels.append(LABELS.index(label))
        rows.append(":".join(",".join(style(float(v)) for v in ch) for ch in values) + f":{label}")
    changes = {
        "univariate": "true" if channels == 1 else "false",
        "equalLength": "false",
        "seriesLength": None,
        "classLabel": "true " + " ".join(LABELS),
    }
    with tempfile.TemporaryDirectory() as folder:
        ts = read_ts(write_ts(Path(folder) / "r.ts", rows, **changes)[0])
    assert ts.labels.tolist() == labels
    for got, want in zip(ts.series, series, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, want)


# --- one problem from two files ----------------------------------------------------------------


def test_source_dir_pools_train_then_test(tmp_path: Path) -> None:
    write_problem(tmp_path)
    src = load_ucr("Tiny", source_dir=tmp_path)
    assert src.name == "Tiny" and (src.n_train, src.n_test) == (3, 2)
    assert src.class_names == ("b", "a")
    # TEST declares "a b", but indices follow TRAIN's declaration
    assert src.labels.tolist() == [1, 0, 1, 0, 1]
    assert src.channels == 1 and src.equal_length and src.lengths.tolist() == [3] * 5
    np.testing.assert_array_equal(src.series[2], [[-1, 0.5, 2000]])
    np.testing.assert_array_equal(src.series[4], [[0.001, 2, 3]])
    assert src.files == (str(tmp_path / "Tiny_TRAIN.ts"), str(tmp_path / "Tiny_TEST.ts"))
    described = json.loads(json.dumps(src.describe()))
    assert described["n_train"] == 3 and described["n_test"] == 2
    assert (described["min_length"], described["max_length"], described["channels"]) == (3, 3, 1)
    assert described["class_names"] == ["b", "a"] and described["fill_missing"] is None
    assert described["sha256"] == {"series": src.series_sha256, "labels": src.labels_sha256}
    assert not src.labels.flags.writeable and not src.series[4].flags.writeable


def test_series_hash_follows_values_and_shapes(tmp_path: Path) -> None:
    write_problem(tmp_path)
    first = load_ucr("Tiny", source_dir=tmp_path)
    assert load_ucr("Tiny", source_dir=tmp_path).series_sha256 == first.series_sha256
    test = tmp_path / "Tiny_TEST.ts"
    test.write_text(test.read_text().replace("7,8,9:b", "7,8,9.000001:b"))
    assert load_ucr("Tiny", source_dir=tmp_path).series_sha256 != first.series_sha256
    # the same values cut into other shapes hash differently
    assert ucr.series_sha256((np.zeros((1, 4)),)) != ucr.series_sha256((np.zeros((2, 2)),))


def test_names_match_case_insensitively(tmp_path: Path) -> None:
    write_problem(tmp_path, name="tiny")
    (tmp_path / "tiny_TEST.ts").rename(tmp_path / "TINY_test.ts")
    src = load_ucr("Tiny", source_dir=tmp_path)
    assert src.files[1] == str(tmp_path / "TINY_test.ts") and src.name == "tiny"


def test_train_and_test_must_agree(tmp_path: Path) -> None:
    write_problem(tmp_path, test_labels="true a b c")
    with pytest.raises(SourceCorruptError, match=rf"^{tmp_path / 'Tiny_TEST.ts'}:1: @classLabel"):
        load_ucr("Tiny", source_dir=tmp_path)
    write_ts(tmp_path / "Tiny_TEST.ts", ["1,2:3,4:a"], **MULTI)
    with pytest.raises(SourceCorruptError, match=r"Tiny_TEST.ts:\d+: 2 channels, but .* has 1"):
        load_ucr("Tiny", source_dir=tmp_path)


def test_source_dir_without_the_files(tmp_path: Path) -> None:
    write_ts(tmp_path / "Tiny_TRAIN.ts", ["1,2,3:a"])
    with pytest.raises(SourceNotFoundError) as caught:
        load_ucr("Tiny", source_dir=tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and "Tiny_TEST.ts" in message and "\n" not in message
    (tmp_path / "Tiny_TEST.ts").mkdir()
    with pytest.raises(SourceNotFoundError, match=r"has Tiny_TEST\.ts as a directory, not a file"):
        load_ucr("Tiny", source_dir=tmp_path)


@pytest.mark.parametrize("name", ["", "../GunPoint", "a/b", "Gun Point", "x.zip"])
def test_problem_names_are_checked(name: str) -> None:
    with pytest.raises(InvalidParameterError, match="problem"):
        load_ucr(name, download=False)


# --- lookup: root, packaged wheels, download ---------------------------------------------------


def test_found_under_the_root_before_the_packaged_copies(tmp_path: Path) -> None:
    write_problem(tmp_path / "UCR" / "GunPoint", name="GunPoint")
    src = load_ucr("gunpoint", root=tmp_path, download=False)
    assert src.n_train == 3 and src.files[0] == str(tmp_path / "UCR/GunPoint/GunPoint_TRAIN.ts")


def test_default_root_is_scale_datasets_home(tmp_path: Path) -> None:
    home = Path(os.environ["SCALE_DATASETS_HOME"])  # set per test by conftest
    write_problem(home / "UCR" / "Tiny")
    assert load_ucr("tiny", download=False).files[0] == str(home / "UCR/Tiny/Tiny_TRAIN.ts")


def test_packaged_copies_are_found_without_importing_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_ucr_wheel"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('importing the wheel')\n")
    write_problem(package / "datasets" / "data" / "Tiny")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(ucr, "PACKAGED_DATA_PACKAGES", ("not_installed_xyz", "fake_ucr_wheel"))
    assert packaged_problem_dirs() == [package / "datasets" / "data"]
    src = load_ucr("TINY", root=tmp_path / "root", download=False)
    assert src.files[0] == str(package / "datasets/data/Tiny/Tiny_TRAIN.ts")
    assert "fake_ucr_wheel" not in sys.modules


def test_the_aeon_wheel_is_not_imported() -> None:
    aeon_data_or_skip()
    code = (
        "import sys; from scale_datasets.sources.ucr import packaged_problem_dirs as p; "
        "print(p()); assert 'aeon' not in sys.modules and 'sktime' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "aeon/datasets/data" in done.stdout


def test_missing_problem_says_where_it_looked_and_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ucr, "PACKAGED_DATA_PACKAGES", ("not_installed_xyz",))
    with pytest.raises(SourceNotFoundError) as caught:
        load_ucr("NoSuchProblem", root=tmp_path, download=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{tmp_path / 'UCR' / 'NoSuchProblem'} (does not exist)" in message
    assert "not_installed_xyz wheels (not installed)" in message
    for fix in ("--source-dir", "pip install --no-deps aeon", "allow the download"):
        assert fix in message


def test_missing_problem_names_the_packaged_folders(tmp_path: Path) -> None:
    data = aeon_data_or_skip()
    with pytest.raises(SourceNotFoundError, match=rf"{data / 'NoSuchProblem'} \(does not exist\)"):
        load_ucr("NoSuchProblem", root=tmp_path, download=False)


def make_zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zipped:
        for name, text in members.items():
            zipped.writestr(name, text)
    return path


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing in for the archive's server (file://), with one problem's texts."""
    served = tmp_path / "served"
    served.mkdir()
    monkeypatch.setenv(UCR_URL_ENV, served.as_uri() + "/{name}.zip")
    write_problem(tmp_path / "texts")
    return served


def texts(tmp_path: Path) -> dict[str, str]:
    return {
        f"Tiny_{s}.ts": (tmp_path / "texts" / f"Tiny_{s}.ts").read_text() for s in ("TRAIN", "TEST")
    }


@pytest.mark.parametrize("inside", ["", "Tiny/"])
def test_download_lands_under_the_root_once(tmp_path: Path, archive: Path, inside: str) -> None:
    members = {inside + name: text for name, text in texts(tmp_path).items()}
    members["../escape.ts"] = members[inside + "Tiny_TRAIN.ts"]  # never written anywhere
    members[inside + "Tiny_TRAIN.arff"] = "@relation x"
    zipped = make_zip(archive / "tiny.zip", members)
    root = tmp_path / "root"
    src = load_ucr("tiny", root=root)
    folder = root / "UCR" / "Tiny"  # the archive's spelling of the name
    assert sorted(p.name for p in folder.iterdir()) == ["Tiny_TEST.ts", "Tiny_TRAIN.ts"]
    assert sorted(p.name for p in (root / "UCR").iterdir()) == ["Tiny"]  # no temporary left
    assert not (tmp_path / "escape.ts").exists() and not (root / "escape.ts").exists()
    assert src.files[0] == str(folder / "Tiny_TRAIN.ts") and (src.n_train, src.n_test) == (3, 2)
    zipped.unlink()  # a second load must not download
    again = load_ucr("Tiny", root=root)
    assert again.series_sha256 == src.series_sha256 and again.files == src.files


def test_download_into_an_existing_partial_folder(tmp_path: Path, archive: Path) -> None:
    make_zip(archive / "Tiny.zip", texts(tmp_path))
    partial = tmp_path / "root" / "UCR" / "Tiny"
    partial.mkdir(parents=True)
    (partial / "Tiny_TRAIN.ts").write_text("cut sho")
    src = load_ucr("Tiny", root=tmp_path / "root")
    assert src.n_train == 3 and (partial / "Tiny_TEST.ts").is_file()


@pytest.mark.parametrize("served", ["nothing", "not a zip", "lacks TEST"])
def test_failed_download_is_source_not_found(tmp_path: Path, archive: Path, served: str) -> None:
    if served == "not a zip":
        (archive / "Tiny.zip").write_bytes(b"<html>502 Bad Gateway</html>")
    if served == "lacks TEST":
        make_zip(archive / "Tiny.zip", {"Tiny_TRAIN.ts": texts(tmp_path)["Tiny_TRAIN.ts"]})
    root = tmp_path / "root"
    with pytest.raises(SourceNotFoundError) as caught:
        load_ucr("Tiny", root=root)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{archive.as_uri()}/Tiny.zip" in message and "looked first in" in message
    assert "--source-dir" in message and "pip install --no-deps aeon" in message
    assert list((root / "UCR").iterdir()) == []  # no half folder, no temporary


def test_download_url_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UCR_URL_ENV, raising=False)
    assert UCR_DOWNLOAD_URL == "https://timeseriesclassification.com/aeon-toolkit/{name}.zip"
    assert ucr._download_url("GunPoint") == UCR_DOWNLOAD_URL.replace("{name}", "GunPoint")
    monkeypatch.setenv(UCR_URL_ENV, "https://mirror.example/ucr/{name}.zip")
    assert ucr._download_url("ArrowHead") == "https://mirror.example/ucr/ArrowHead.zip"


# --- the real archive problems in the aeon wheel -----------------------------------------------


@pytest.mark.parametrize(
    ("problem", "sizes", "length", "train_counts", "test_counts"),
    [
        ("GunPoint", (50, 150), 150, [24, 26], [76, 74]),
        ("ArrowHead", (36, 175), 251, [12, 12, 12], [69, 53, 53]),
    ],
)
def test_real_univariate_problems(
    problem: str, sizes: tuple, length: int, train_counts: list, test_counts: list
) -> None:
    data = aeon_data_or_skip()
    src = load_ucr(problem, download=False)
    folder = data / problem
    assert src.name == problem
    assert src.files == (str(folder / f"{problem}_TRAIN.ts"), str(folder / f"{problem}_TEST.ts"))
    assert (src.n_train, src.n_test) == sizes and src.channels == 1
    assert src.equal_length and set(src.lengths.tolist()) == {length}
    assert np.bincount(src.labels[: src.n_train]).tolist() == train_counts
    assert np.bincount(src.labels[src.n_train :]).tolist() == test_counts
    for index, split in ((0, "TRAIN"), (src.n_train, "TEST")):
        values, label = first_row(folder / f"{problem}_{split}.ts")
        np.testing.assert_array_equal(src.series[index][0], values)
        assert src.class_names[src.labels[index]] == label
    again = load_ucr(problem.lower(), download=False)
    assert (again.series_sha256, again.labels_sha256) == (src.series_sha256, src.labels_sha256)


def test_real_labels_follow_the_header_order() -> None:
    aeon_data_or_skip()
    src = load_ucr("BasicMotions", download=False)
    assert src.class_names == ("Standing", "Running", "Walking", "Badminton")
    assert src.channels == 6 and src.class_names[src.labels[0]] == "Standing"


def test_real_multivariate_variable_length() -> None:
    data = aeon_data_or_skip()
    src = load_ucr("JapaneseVowels", download=False)
    assert (src.n_train, src.n_test, src.channels) == (270, 370, 12)
    assert not src.equal_length and (src.lengths.min(), src.lengths.max()) == (7, 29)
    assert len(src.class_names) == 9
    rows = (data / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts").read_text().split("@data\n")[1]
    first = rows.split("\n")[0].split(":")
    np.testing.assert_array_equal(src.series[0][11], [float(v) for v in first[11].split(",")])
