"""GET /api/schema: what the page's form needs to know about a run configuration, read-only.

The page takes every default, bound and choice of its set-up form from here (engine.config is
the one place they are defined), and which fields a running session takes through PATCH, so
none of them is typed a second time in the browser.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from engine.config import HyperparameterUpdate, OptimizerConfig, RunConfig
from server.schemas import MAX_NAME_LENGTH

router = APIRouter(tags=["schema"])


class ConfigSchema(BaseModel):
    """The answer of GET /api/schema."""

    config: dict[str, Any] = Field(
        description="JSON Schema of the run configuration (defaults, bounds, choices), "
        "with the defaults pydantic leaves out for fields built by a factory written in"
    )
    hot: dict[str, str] = Field(
        description="each field PATCH /api/sessions/{id} takes -> its path in the config "
        "document, e.g. 'momentum' -> 'optimizer.momentum'"
    )
    name_max_length: int = Field(description="the longest run name the server takes")


def _config_schema() -> dict[str, Any]:
    """RunConfig's JSON Schema, every optional top-level field with its default."""
    schema = RunConfig.model_json_schema()
    for name, field in RunConfig.model_fields.items():
        if field.default_factory is not None:
            default = field.get_default(call_default_factory=True)
            schema["properties"][name]["default"] = to_jsonable_python(default)
    return schema


def _hot_paths() -> dict[str, str]:
    """PATCH field -> config path: the run's own fields first, then the optimizer's (as the
    trainer applies them)."""
    paths: dict[str, str] = {}
    for name in HyperparameterUpdate.model_fields:
        if name in RunConfig.model_fields:
            paths[name] = name
        elif name in OptimizerConfig.model_fields:
            paths[name] = f"optimizer.{name}"
        else:
            raise LookupError(
                f"expected PATCH field {name!r} in RunConfig or OptimizerConfig, got neither"
            )
    return paths


# built once: the models do not change while the server runs
SCHEMA = ConfigSchema(config=_config_schema(), hot=_hot_paths(), name_max_length=MAX_NAME_LENGTH)


@router.get(
    "/schema",
    response_model=ConfigSchema,
    summary="Defaults, bounds and live-changeable fields of a run configuration",
)
def config_schema() -> ConfigSchema:
    """The same document every time; the page reads it once when it loads."""
    return SCHEMA
