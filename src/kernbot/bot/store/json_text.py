"""Event documents serialized once, by pydantic, instead of dumped to dicts and re-encoded.

An ingested event reaches the store as a pydantic model; `model_dump(mode="json")` followed by
the JSON column's own `json.dumps` cost about twice what pydantic's Rust serializer takes to
write the same document. `JsonText` marks a string that already is JSON, and the engine's
`json_serializer` (see `Database`) passes it through untouched; every other value is encoded as
before. Reading is unchanged: the column still holds a JSON document and loads as a dict.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError


class JsonText(str):
    """A string that is already a JSON document (written as-is into a JSON column)."""


def model_json(model: BaseModel) -> JsonText | dict[str, Any]:
    """The model as a JSON document; a dict when pydantic cannot encode it (a lone surrogate
    from kernel bytes decoded with surrogateescape), which `json.dumps` escapes instead."""
    try:
        return JsonText(model.model_dump_json())
    except PydanticSerializationError:
        return model.model_dump(mode="json")


def serialize(value: Any) -> str:
    """The engine's `json_serializer`."""
    if isinstance(value, JsonText):
        return str(value)
    return json.dumps(value)
