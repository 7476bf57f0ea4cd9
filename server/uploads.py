"""Uploaded datasets: storing one within the upload quota, the catalogue entry of each, and the
arrays a Trainer reads.

The quota counts what the store keeps: each upload's arrays as .npy bytes, decompressed. An NPZ
of 78 KB can inflate 770-fold (engine/uploads.py caps one at NPZ_MAX_BYTES before allocating), so
counting the file as sent would let a few small requests fill the disk. Listing and deleting
uploads needs to know which sessions use one; that is the SessionManager's (server/sessions.py),
which holds its create lock while it deletes one, so a session cannot start using an upload that
is being deleted.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from engine.cost import format_bytes
from server.errors import ConflictError, SessionError
from server.store import Store

UPLOAD_PREFIX = "upload:"  # dataset.name of a run on an upload: "upload:<id>"


class UploadQuotaError(SessionError):
    """Storing the upload would take the stored uploads past the upload quota."""

    status_code = 507
    code = "upload_quota"


class UploadInUseError(ConflictError):
    """The upload cannot be deleted: sessions train on it."""

    code = "upload_in_use"

    def __init__(self, message: str, session_ids: list[str]) -> None:
        # the problem body carries them as "session_ids", for clients that read them
        super().__init__(message, extensions={"session_ids": session_ids})
        self.session_ids = session_ids


class Uploads:
    """The stored uploads of one server and their quota (--upload-quota)."""

    def __init__(self, store: Store, quota: int) -> None:
        if quota < 1:
            raise ValueError(f"upload_quota: expected a number of bytes >= 1, got {quota}")
        self.store = store
        self.quota = quota
        self._lock = threading.Lock()  # the quota check and the insert, as one step

    def used(self) -> int:
        """Bytes the stored uploads take (decompressed arrays)."""
        return sum(self.store.upload_bytes().values())

    def save(
        self, upload_id: str, filename: str, x: np.ndarray, y: np.ndarray, meta: dict[str, Any]
    ) -> None:
        """Store an upload unless it passes the quota (UploadQuotaError naming it)."""
        size = stored_bytes(x) + stored_bytes(y)
        with self._lock:
            used = self.used()
            if used + size > self.quota:
                raise UploadQuotaError(
                    f"the upload's arrays take {format_bytes(size)} decompressed, and the "
                    f"stored uploads already take {format_bytes(used)} of the "
                    f"{format_bytes(self.quota)} upload quota (--upload-quota); delete an "
                    "upload first (DELETE /api/datasets/uploads/{id})"
                )
            self.store.save_upload(upload_id, filename, x, y, meta)

    def entries(self, users: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Every upload's catalogue entry, newest first; `users` maps an upload id to the ids of
        the sessions training on it."""
        sizes = self.store.upload_bytes()
        return [
            entry(row, sizes.get(row["id"], 0), users.get(row["id"], []))
            for row in self.store.list_uploads()
        ]


def stored_bytes(array: np.ndarray) -> int:
    """Bytes of an array as the store keeps it: its .npy header (at most 128 bytes for the
    shapes an upload has) and its data."""
    return 128 + int(array.nbytes)


def upload_id_of(config: dict[str, Any]) -> str | None:
    """The upload a run configuration document trains on, or None."""
    name = (config.get("dataset") or {}).get("name")
    if isinstance(name, str) and name.startswith(UPLOAD_PREFIX):
        return name[len(UPLOAD_PREFIX) :]
    return None


def entry(row: dict[str, Any], size: int, in_use_by: list[str]) -> dict[str, Any]:
    """The catalogue entry of a `Store.list_uploads` row (docs/api17: GET /api/datasets/uploads)."""
    meta = row.get("meta") or {}
    task = meta.get("task")
    classification = task in ("binary", "multiclass")
    return {
        "id": row["id"],
        "name": UPLOAD_PREFIX + row["id"],
        "filename": meta.get("filename") or row["name"],
        "columns": [str(c) for c in meta.get("input_names") or []],
        "target": meta.get("target_column", meta.get("target")),
        "rows": int(meta.get("rows") or 0),
        "task": "classification" if classification else "regression",
        "classes": int(meta.get("num_classes") or 0) if classification else None,
        "bytes": size,
        "created_at": row["created_at"],
        "in_use_by": sorted(in_use_by),
    }


def load_upload(
    store: Store, upload_id: str
) -> tuple[np.ndarray, np.ndarray, list[str]] | tuple[np.ndarray, np.ndarray]:
    """The arrays of an uploaded dataset, with its column names when it has them (a Trainer's
    `uploads` callable, bound to a store; KeyError for an unknown id)."""
    x, y = store.load_upload(upload_id)
    info = store.get_upload(upload_id)
    names = (info or {}).get("meta", {}).get("input_names")
    if isinstance(names, list):
        return x, y, [str(n) for n in names]
    return x, y
