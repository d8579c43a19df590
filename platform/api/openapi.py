"""The OpenAPI description (`/api/v10/openapi.json`), finished with what FastAPI leaves out:

- snowflake bounds as exact integers: FastAPI's OpenAPI model keeps `maximum` as a float, and
  2^63 - 1 as a float is 2^63, one more than the API accepts;
- no 422 (FastAPI's default for invalid input, which is a 400 in Discord's shape here);
- the NUL ban: every JSON string (keys too) is refused with a NUL character (PostgreSQL cannot
  store one, strictjson.py), so each string in a body schema gets a pattern that says so.

The error responses every route may give are attached where the routers are included (app.py,
errors.DOCUMENTED_ERRORS)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ..core.snowflake import MAX_SNOWFLAKE

NO_NUL = "^[^\\u0000]*$"
_REF = "#/components/schemas/{model}"
_BODIES: dict[str, type[BaseModel]] = {}  # models of bodies that routes read themselves


def request_body(model: type[BaseModel], *, multipart: bool = False) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself (the message routes: JSON, or
    Discord's multipart form with `payload_json` and `files[n]`): the body it accepts, described
    by the model it validates with."""
    _BODIES[model.__name__] = model
    ref = {"$ref": _REF.format(model=model.__name__)}
    content: dict[str, Any] = {"application/json": {"schema": ref}}
    if multipart:
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": {
            "payload_json": {"type": "string", "description": f"the JSON body ({model.__name__}) as a string"},
            "files[0]": {"type": "string", "format": "binary"}}}}
    return {"requestBody": {"required": False, "content": content}}


def _add_bodies(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in _BODIES.items():
        found = model.model_json_schema(ref_template=_REF)
        for sub, definition in found.pop("$defs", {}).items():
            components.setdefault(sub, definition)
        components.setdefault(name, found)


def _exact_bounds(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("maximum", "minimum", "exclusiveMaximum", "exclusiveMinimum"):
                value = node.get(key)
                if isinstance(value, float):
                    node[key] = MAX_SNOWFLAKE if value >= float(MAX_SNOWFLAKE) else int(value)
        for value in node.values():
            _exact_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_bounds(value)


def _no_nul(node: Any) -> None:
    """Each plain string schema (not binary, no pattern of its own) and each object's keys get
    the NUL ban."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "pattern" not in node and "format" not in node and "enum" not in node \
                and "const" not in node:
            node["pattern"] = NO_NUL
        if node.get("type") == "object" and "propertyNames" not in node:
            node["propertyNames"] = {"pattern": NO_NUL}
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


def _body_schemas(schema: dict[str, Any]) -> set[str]:
    """The component schemas request bodies use (and those they refer to)."""
    components = schema.get("components", {}).get("schemas", {})
    found: set[str] = set()

    def refs(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    refs(components.get(name))
            for value in node.values():
                refs(value)
        elif isinstance(node, list):
            for value in node:
                refs(value)

    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                refs(operation.get("requestBody"))
    return found


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    _add_bodies(schema)
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)  # FastAPI's default; invalid input is a 400 here
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    _exact_bounds(schema)
    components = schema.get("components", {}).get("schemas", {})
    for name in _body_schemas(schema):
        _no_nul(components.get(name))
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                if isinstance(body, dict) and "$ref" not in body:
                    _no_nul(body)
    return schema


def install(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
