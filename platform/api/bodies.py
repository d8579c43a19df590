"""The base of every JSON request body model.

Pydantic's lax mode takes JSON `true` for the integer 1 (and `false` for 0): a client that sends
`{"type": true}` or `{"recipient_id": true}` would be understood as something it did not write.
Numbers stay lax otherwise (snowflakes arrive as strings, as on Discord), but a boolean where a
number is expected is refused with Discord's 50035 (`NUMBER_TYPE_COERCE`), in lists too.
Unknown fields are ignored, as Discord does."""

from __future__ import annotations

import enum
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

_SEQUENCES = (list, tuple, set, frozenset)


def _numeric(annotation: Any) -> bool:
    """Whether a value of this (unwrapped) type may be a number, but not a boolean."""
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        return any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and not any(isinstance(v, bool) for v in values)
    return isinstance(annotation, type) and issubclass(annotation, (int, float)) and not issubclass(annotation, bool) \
        and not (issubclass(annotation, enum.Enum) and not issubclass(annotation, int))


def _options(annotation: Any) -> list[Any]:
    """The alternatives of a union (Optional included), each unwrapped from Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _options(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [option for arg in get_args(annotation) for option in _options(arg)]
    return [annotation]


def _refuse_bools(value: Any, annotation: Any) -> None:
    options = _options(annotation)
    if isinstance(value, bool):
        if any(o is bool or o is Any for o in options):
            return
        if any(_numeric(o) for o in options):
            raise PydanticCustomError("int_type", "Input should be a number, not a boolean")
        return
    if isinstance(value, list):
        for option in options:
            if get_origin(option) in _SEQUENCES and get_args(option):
                element = get_args(option)[0]
                for item in value:
                    _refuse_bools(item, element)
                return


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, (bool, list)) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None:
                _refuse_bools(value, field.annotation)
        return value
