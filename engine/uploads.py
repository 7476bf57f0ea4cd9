"""Reading uploaded files: a CSV with a header row, or an NPZ with the arrays X and y.

Both give plain float64 arrays (and a CSV its input column names); engine.data makes a dataset of
them. Nothing is unpickled: an NPZ member that is not a plain numeric array is refused.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile

import numpy as np

from engine.data import DatasetError

CSV_MAX_ROWS = 1_000_000
CSV_MAX_COLUMNS = 1_000
NPZ_MAX_BYTES = 64 * 1024 * 1024
NPZ_MEMBERS = ("X.npy", "y.npy")


# --------------------------------------------------------------------------- CSV


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # never fails; numbers read the same


def load_csv(data: bytes, target: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Parse a numeric CSV with a header row into (X (n, d) float64, y (n,) float64, names).

    `target` names the target column (default: the last one); `names` are the d input columns
    in file order. Errors name the 1-based data row and the column.
    """
    x, y, names, _ = load_csv_table(data, target)
    return x, y, names


def load_csv_table(
    data: bytes, target: str | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """As `load_csv`, plus the name of the target column used (the last one by default)."""
    text = _decode(data)
    if not text.strip():
        raise DatasetError("upload", "expected a CSV file with a header row, got an empty file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        while not any(cell.strip() for cell in header):
            header = next(reader)
    except StopIteration:
        raise DatasetError("upload", "expected a header row, got none") from None
    except csv.Error as exc:
        raise DatasetError(
            "upload", f"expected CSV text, got a parse error in the header: {exc}"
        ) from None
    columns = [cell.strip() or f"column_{j + 1}" for j, cell in enumerate(header)]
    width = len(columns)
    if width > CSV_MAX_COLUMNS:
        raise DatasetError("upload", f"expected at most {CSV_MAX_COLUMNS} columns, got {width}")
    if width < 2:
        raise DatasetError(
            "upload", f"expected at least 2 columns (inputs and a target), got {width}"
        )
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DatasetError("upload", f"expected unique column names, got {duplicates} repeated")
    if target is None:
        target_index = width - 1
    elif target in columns:
        target_index = columns.index(target)
    else:
        raise DatasetError(
            "dataset.target", f"expected one of the columns {columns}, got {target!r}"
        )

    rows: list[list[float]] = []
    row_number = 0
    try:
        for cells in reader:
            if not cells or not any(cell.strip() for cell in cells):
                continue  # blank line
            row_number += 1
            if row_number > CSV_MAX_ROWS:
                raise DatasetError("upload", f"expected at most {CSV_MAX_ROWS} data rows, got more")
            if len(cells) != width:
                raise DatasetError(
                    "upload",
                    f"row {row_number}: expected {width} cells like the header, got {len(cells)}",
                )
            try:
                values = [float(cell) for cell in cells]
            except ValueError:
                values = _parse_row(cells, row_number, columns)
            if not all(math.isfinite(v) for v in values):
                j = next(j for j, v in enumerate(values) if not math.isfinite(v))
                raise DatasetError(
                    "upload",
                    f"row {row_number}, column {columns[j]!r}: expected a finite number, "
                    f"got {cells[j].strip()!r}",
                )
            rows.append(values)
    except csv.Error as exc:
        raise DatasetError(
            "upload", f"row {row_number + 1}: expected CSV text, got a parse error: {exc}"
        ) from None
    if not rows:
        raise DatasetError("upload", "expected data rows below the header, got none")
    table = np.array(rows, dtype=np.float64)  # (n, width)
    y = table[:, target_index].copy()  # (n,)
    x = np.delete(table, target_index, axis=1)  # (n, width - 1)
    names = [c for j, c in enumerate(columns) if j != target_index]
    return x, y, names, columns[target_index]


def _parse_row(cells: list[str], row_number: int, columns: list[str]) -> list[float]:
    """Parse a row known to hold a bad cell, raising DatasetError naming it."""
    values = []
    for j, cell in enumerate(cells):
        try:
            values.append(float(cell))
        except ValueError:
            shown = cell.strip()
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            got = "an empty cell" if not shown else repr(shown)
            raise DatasetError(
                "upload",
                f"row {row_number}, column {columns[j]!r}: expected a number, got {got}",
            ) from None
    return values


# --------------------------------------------------------------------------- NPZ


def load_npz(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read arrays "X" and "y" from .npz bytes, refusing pickles, extra members and zip bombs.

    Sizes and dtypes are checked from the zip directory and the .npy headers before any array
    is allocated; X is returned as (n, ...) and y as (n,) or (n, 1), dtypes as stored.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise DatasetError("upload", "expected an .npz (zip) file, got something else") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        extra = sorted(set(names) - set(NPZ_MEMBERS))
        if extra:
            raise DatasetError(
                "upload", f"expected only the arrays X and y in the .npz, got also {extra}"
            )
        missing = [m for m in NPZ_MEMBERS if m not in names]
        if missing or len(names) != len(set(names)):
            raise DatasetError(
                "upload", f"expected the arrays X and y once each in the .npz, got {names}"
            )
        total = sum(info.file_size for info in infos)
        if total > NPZ_MAX_BYTES:
            raise DatasetError(
                "upload",
                f"expected at most {NPZ_MAX_BYTES // 2**20} MiB of arrays uncompressed, "
                f"got {total / 2**20:.1f} MiB",
            )
        for info in infos:
            if info.flag_bits & 0x1:
                raise DatasetError("upload", f"expected unencrypted members, got {info.filename}")
            _check_npy_header(archive, info)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("X", "y")}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError("upload", f"expected valid .npy arrays X and y, got: {exc}") from None
    x, y = arrays["X"], arrays["y"]
    if x.ndim == 0 or y.ndim == 0:
        raise DatasetError(
            "upload", f"expected arrays with a sample axis, got X {x.shape} and y {y.shape}"
        )
    if len(x) != len(y):
        raise DatasetError("upload", f"expected as many rows in y as in X ({len(x)}), got {len(y)}")
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise DatasetError("upload", f"expected y of shape (n,) or (n, 1), got {y.shape}")
    return x, y


def _check_npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Check one .npy member's header: a numeric dtype and a size matching the zip entry."""
    fmt = np.lib.format
    name = info.filename[:-4]
    try:
        with archive.open(info) as fp:
            version = fmt.read_magic(fp)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = fmt.read_array_header_2_0(fp)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header_size = fp.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise DatasetError("upload", f"expected a valid .npy array {name}, got: {exc}") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise DatasetError("upload", f"expected a numeric array {name}, got dtype {dtype}")
    # The zip entry's declared size caps what decompression can produce; the header must agree,
    # so a header claiming a huge shape cannot make np.load allocate it.
    payload = math.prod(shape) * dtype.itemsize
    if header_size + payload != info.file_size:
        raise DatasetError(
            "upload",
            f"expected {name}.npy to hold {payload} bytes for shape {shape}, "
            f"got {info.file_size - header_size}",
        )
