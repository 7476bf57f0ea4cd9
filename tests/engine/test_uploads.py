"""Reading uploaded files (engine/uploads.py): CSV with a header row and NPZ with X and y, and the
errors that name the row, the column or the member."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest

from engine import uploads
from engine.config import ConfigError, config_to_dict
from engine.data import DatasetError
from engine.trainer import Trainer
from engine.uploads import load_csv, load_npz

# --------------------------------------------------------------------------- CSV


def test_load_csv_default_target_is_last_column() -> None:
    x, y, names = load_csv(b"a,b,c\n1,2,3\n4,5.5,-6e1\n", None)
    assert names == ["a", "b"]
    assert x.dtype == np.float64 and x.shape == (2, 2)
    np.testing.assert_array_equal(x, [[1, 2], [4, 5.5]])
    np.testing.assert_array_equal(y, [3, -60])


def test_load_csv_named_target_quotes_blank_lines_and_bom() -> None:
    text = '\ufeff"a", b,"c d"\r\n 1 , 2 ,3\r\n\r\n"4",5,6\r\n\r\n'
    x, y, names = load_csv(text.encode("utf-8"), "b")
    assert names == ["a", "c d"]
    np.testing.assert_array_equal(x, [[1, 3], [4, 6]])
    np.testing.assert_array_equal(y, [2, 5])


def test_load_csv_latin1_header_and_unnamed_column() -> None:
    x, y, names = load_csv("température,,y\n1,2,3\n".encode("latin-1"), None)
    assert names == ["température", "column_2"]
    np.testing.assert_array_equal(y, [3])


@pytest.mark.parametrize(
    ("content", "target", "field", "words"),
    [
        (b"", None, "upload", ["empty file"]),
        (b"  \n\n", None, "upload", ["empty file"]),
        (b"a,b\n", None, "upload", ["data rows", "got none"]),
        (b"a,b\n\n\n", None, "upload", ["data rows", "got none"]),
        (b"a\n1\n", None, "upload", ["at least 2 columns", "got 1"]),
        (b"a,a\n1,2\n", None, "upload", ["unique", "'a'"]),
        (b"a,b\n1,2\n3,x\n", None, "upload", ["row 2", "column 'b'", "'x'"]),
        (b"a,b\n1,2\n3,4\n5,6\n,1\n", None, "upload", ["row 4", "column 'a'", "empty cell"]),
        (b"a,b\n1,2\n\n3,4,5\n", None, "upload", ["row 2", "expected 2 cells", "got 3"]),
        (b"a,b,c\n1,2\n", None, "upload", ["row 1", "expected 3 cells", "got 2"]),
        (b"a,b\n1,nan\n", None, "upload", ["row 1", "column 'b'", "finite", "'nan'"]),
        (b"a,b\n1,inf\n", None, "upload", ["row 1", "finite"]),
        (b"a,b\n1,2\n", "z", "dataset.target", ["'a'", "'b'", "got 'z'"]),
        (b'a,b\n1,"2\n', None, "upload", ["row 1"]),
        (b"a,b\n1,\x002\n", None, "upload", ["row 1"]),
    ],
)
def test_load_csv_errors(content: bytes, target: str | None, field: str, words: list[str]) -> None:
    with pytest.raises(DatasetError) as info:
        load_csv(content, target)
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


def test_load_csv_refuses_too_many_columns() -> None:
    header = ",".join(f"c{i}" for i in range(1001))
    with pytest.raises(DatasetError, match="at most 1000 columns, got 1001"):
        load_csv(f"{header}\n".encode(), None)
    load_csv((",".join(f"c{i}" for i in range(1000)) + "\n" + ",".join(["1"] * 1000)).encode())


def test_load_csv_refuses_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "CSV_MAX_ROWS", 3)
    assert uploads.CSV_MAX_ROWS == 3
    load_csv(b"a,b\n1,2\n3,4\n5,6\n")
    with pytest.raises(DatasetError, match="at most 3 data rows"):
        load_csv(b"a,b\n1,2\n3,4\n5,6\n7,8\n")


# --------------------------------------------------------------------------- NPZ


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_load_npz_happy_path() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    got_x, got_y = load_npz(npz_bytes(X=x, y=y))
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    uncompressed = io.BytesIO()
    np.savez(uncompressed, X=x, y=y[:, None].astype(np.float64))
    assert load_npz(uncompressed.getvalue())[1].shape == (6, 1)


def test_load_npz_refuses_object_arrays() -> None:
    x = np.array([[1, "a"], [2, "b"]], dtype=object)
    with pytest.raises(DatasetError, match="numeric array X, got dtype object"):
        load_npz(npz_bytes(X=x, y=np.array([0, 1])))


def test_load_npz_refuses_strings() -> None:
    with pytest.raises(DatasetError, match="numeric array y"):
        load_npz(npz_bytes(X=np.zeros((2, 2)), y=np.array(["a", "b"])))


def test_load_npz_refuses_extra_and_missing_members() -> None:
    with pytest.raises(DatasetError, match=r"only the arrays X and y.*'z.npy'"):
        load_npz(npz_bytes(X=np.zeros((2, 2)), y=np.zeros(2), z=np.zeros(2)))
    with pytest.raises(DatasetError, match="X and y once each"):
        load_npz(npz_bytes(X=np.zeros((2, 2))))


def test_load_npz_refuses_oversized_members() -> None:
    # 65 MiB of zeros deflates to about 64 KiB; the zip directory still declares the full size.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("X.npy", "w", force_zip64=True) as fp:
            np.lib.format.write_array_header_1_0(
                fp, {"descr": "<f8", "fortran_order": False, "shape": (65 * 2**17,)}
            )
            chunk = bytes(2**20)
            for _ in range(65):
                fp.write(chunk)
        with archive.open("y.npy", "w") as fp:
            np.lib.format.write_array(fp, np.zeros(65 * 2**17))
    content = buffer.getvalue()
    assert len(content) < 2**20
    with pytest.raises(DatasetError, match=r"at most 64 MiB .* got 1\d\d\.\d MiB"):
        load_npz(content)


def test_load_npz_refuses_a_header_claiming_more_than_the_member_holds() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        with archive.open("X.npy", "w") as fp:
            np.lib.format.write_array_header_1_0(
                fp, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
            )
            fp.write(bytes(32))
        with archive.open("y.npy", "w") as fp:
            np.lib.format.write_array(fp, np.zeros(2))
    with pytest.raises(DatasetError, match="expected X.npy to hold 16000000000000 bytes"):
        load_npz(buffer.getvalue())


def test_load_npz_refuses_mismatched_and_malformed_arrays() -> None:
    with pytest.raises(DatasetError, match=r"as many rows in y as in X \(3\), got 2"):
        load_npz(npz_bytes(X=np.zeros((3, 2)), y=np.zeros(2)))
    with pytest.raises(DatasetError, match=r"y of shape \(n,\) or \(n, 1\), got \(3, 2\)"):
        load_npz(npz_bytes(X=np.zeros((3, 2)), y=np.zeros((3, 2))))
    with pytest.raises(DatasetError, match="sample axis"):
        load_npz(npz_bytes(X=np.float64(1.0), y=np.zeros(1)))


def test_load_npz_refuses_non_zip_and_broken_members() -> None:
    with pytest.raises(DatasetError, match="expected an .npz"):
        load_npz(b"a,b\n1,2\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.npy", b"not an array")
        archive.writestr("y.npy", struct.pack("<d", 1.0))
    with pytest.raises(DatasetError, match="valid .npy array X") as info:
        load_npz(buffer.getvalue())
    assert info.value.field == "upload"


# --------------------------------------------------------------------------- a run on an upload


def _table(columns: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, columns))
    return x, (x[:, 0] > 0).astype(np.float64), [f"c{j}" for j in range(columns)]


def _upload_run(**extra: object) -> dict[str, object]:
    return {
        "dataset": {"name": "upload:t"},
        "layers": [{"type": "dense", "units": 3}, {"type": "dense", "units": 1}],
        **extra,
    }


def test_a_run_on_a_table_upload_takes_its_columns_and_refuses_features() -> None:
    table = _table(3)
    trainer = Trainer(_upload_run(), uploads=lambda _id: table)
    assert trainer.features == [] and trainer.x_train.shape[1] == 3
    doc = config_to_dict(trainer.config)
    assert "features" not in doc  # not Playground's x1, x2: the columns are the inputs
    assert config_to_dict(Trainer(doc, uploads=lambda _id: table).config) == doc
    with pytest.raises(ConfigError) as refused:
        Trainer(_upload_run(features=["x1", "x2"]), uploads=lambda _id: table)
    assert refused.value.errors[0]["field"] == "features"
    assert "3 columns" in refused.value.errors[0]["message"]


def test_a_two_column_upload_takes_features_only_when_asked() -> None:
    table = _table(2)
    plain = Trainer(_upload_run(), uploads=lambda _id: table)
    assert "features" not in config_to_dict(plain.config)
    chosen = Trainer(_upload_run(features=["x1", "x1*x2"]), uploads=lambda _id: table)
    assert config_to_dict(chosen.config)["features"] == ["x1", "x1*x2"]
    assert chosen.x_train.shape[1] == 2


def test_a_1d_run_states_the_feature_it_uses_so_its_document_rebuilds_it() -> None:
    config = {
        "dataset": {"name": "sine", "samples": 60},
        "layers": [{"type": "dense", "units": 3}, {"type": "dense", "units": 1}],
    }
    doc = config_to_dict(Trainer(config).config)
    assert doc["features"] == ["x1"]
    assert Trainer(doc).features == ["x1"]
