"""The dataset catalogue, the guided presets, and dataset uploads (CSV or NPZ): upload, list,
delete. An upload's errors name the form field: `file` for what is wrong with the file, `target`
for a target column it does not have."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Path, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from engine.config import DatasetConfig, FieldError
from engine.data import DATASETS, DatasetError, make_dataset
from engine.presets import all_presets
from engine.uploads import load_csv_table, load_npz
from server.deps import FieldErrors, SessionsDep, errors
from server.errors import TooLargeError
from server.limits import MAX_UPLOAD_BYTES, format_bytes
from server.schemas import DatasetList, PresetList, UploadList, UploadResult
from server.uploads import Uploads

router = APIRouter(tags=["datasets"])

_CHUNK = 1 << 20


# The engine names an upload's problems as a config would ("dataset.target", "upload"); the
# answer names the form fields the client sent.
FORM_FIELDS = {"dataset.target": "target", "upload": "file"}


class UploadTooLargeError(TooLargeError):
    """The uploaded file is larger than MAX_UPLOAD_BYTES."""


@router.get("/datasets", response_model=DatasetList, summary="The built-in datasets and uploads")
def list_datasets(sessions: SessionsDep) -> dict[str, Any]:
    """Name, title, task, input kind, description and tunable parameters of each built-in
    dataset; the stored uploads under "uploads", as GET /api/datasets/uploads lists them."""
    return {
        "datasets": [info.to_dict() for info in DATASETS],
        "uploads": sessions.upload_catalogue()["uploads"],
    }


@router.get("/datasets/uploads", response_model=UploadList, summary="The stored uploads")
def list_uploads(sessions: SessionsDep) -> dict[str, Any]:
    """Each upload with its columns, rows, task, stored size and the sessions training on it;
    the upload quota and how much of it is used (arrays counted decompressed)."""
    return sessions.upload_catalogue()


@router.delete(
    "/datasets/uploads/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an upload",
    responses=errors(404, 409),
)
def delete_upload(
    sessions: SessionsDep,
    upload_id: Annotated[str, Path(min_length=1, max_length=64, description="the upload id")],
) -> Response:
    """404 for an unknown id; 409 (code upload_in_use) while sessions train on it, naming them:
    delete those sessions first."""
    sessions.delete_upload(upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/presets", response_model=PresetList, summary="Ready-made experiments")
def list_presets() -> dict[str, Any]:
    """Each with an explanation, what to watch, what to try, and a run configuration."""
    return {"presets": all_presets()}


@router.post(
    "/datasets/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadResult,
    summary="Upload a CSV (header row, numeric) or an NPZ (arrays X and y) dataset",
    responses=errors(400, 413, 422, 507),
)
async def upload_dataset(
    sessions: SessionsDep,
    file: Annotated[UploadFile, File(description=".csv with a header row, or .npz with X and y")],
    target: Annotated[str | None, Form(description="CSV target column (default: the last)")] = None,
) -> dict[str, Any]:
    """Use the answer's name ("upload:<id>") as dataset.name in a run configuration. 422 names
    the form field (`file` or `target`); 413 past the file size limit; 507 (code upload_quota)
    when the arrays, decompressed, would take the stored uploads past the upload quota."""
    data = bytearray()
    while chunk := await file.read(_CHUNK):
        data.extend(chunk)
        if len(data) > MAX_UPLOAD_BYTES:
            raise UploadTooLargeError(
                f"the uploaded file is larger than the {format_bytes(MAX_UPLOAD_BYTES)} limit"
            )
    return await run_in_threadpool(
        _store_upload, sessions.uploads, bytes(data), file.filename or "", target
    )


def _store_upload(
    uploads: Uploads, data: bytes, filename: str, target: str | None
) -> dict[str, Any]:
    """Parse, check with the engine (classes, shapes) and store an upload within the quota."""
    is_npz = data[:4] == b"PK\x03\x04" or filename.lower().endswith(".npz")
    names: list[str] | None = None
    target_column: str | None = None
    try:
        if is_npz:
            if target is not None:
                raise DatasetError("target", "an .npz's target is its array y: leave target out")
            x, y = load_npz(data)
        else:
            x, y, names, target_column = load_csv_table(data, target)
        upload_id = secrets.token_hex(6)
        arrays = (x, y, names) if names is not None else (x, y)
        dataset = make_dataset(
            DatasetConfig(name=f"upload:{upload_id}"), 0, uploads=lambda _id: arrays
        )
    except DatasetError as exc:
        field = FORM_FIELDS.get(exc.field, exc.field)
        raise FieldErrors([FieldError(field, exc.message)]) from None
    columns = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    meta = {
        "filename": filename,
        "rows": int(len(x)),
        "columns": columns,
        "task": dataset.task,
        "num_classes": int(dataset.num_classes),
        "input_names": list(dataset.input_names),
        "target": target,
        "target_column": target_column,
    }
    uploads.save(upload_id, filename or f"upload-{upload_id}", x, y, meta)
    return {
        "id": upload_id,
        "name": f"upload:{upload_id}",
        "rows": meta["rows"],
        "columns": columns,
        "task": dataset.task,
        "num_classes": meta["num_classes"],
    }
