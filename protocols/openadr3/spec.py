"""The OpenADR 3 OpenAPI definitions (3.0.1 and 3.1.0, Apache-2.0, see spec/NOTICE), loaded from the package.

Bodies are checked against the definition's own component schemas, so "follows the OpenAPI definition" is a
property of the code, not of our reading of it. OpenAPI 3.0 schemas are JSON Schema draft 4 plus `nullable`; we
rewrite `nullable` into `anyOf [..., null]` and drop the keywords JSON Schema does not know.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft4Validator


class OpenAdrVersion(StrEnum):
    V3_0_1 = "3.0.1"
    V3_1_0 = "3.1.0"


@cache
def load_spec(version: OpenAdrVersion) -> dict[str, Any]:
    """The OpenAPI document as shipped (read once per process)."""
    text = (
        resources.files("protocols.openadr3")
        .joinpath("spec")
        .joinpath(version.value)
        .joinpath("openadr3.yaml")
        .read_text("utf-8")
    )
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k not in ("nullable", "discriminator", "example")}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _validator(version: OpenAdrVersion, component: str) -> Draft4Validator:
    schemas = load_spec(version)["components"]["schemas"]
    if component not in schemas:
        raise KeyError(f"OpenADR {version}: no component schema {component!r}")
    root = {"components": {"schemas": _to_json_schema(schemas)}, "$ref": f"#/components/schemas/{component}"}
    return Draft4Validator(root)


def validate(version: OpenAdrVersion, component: str, instance: Any) -> list[str]:
    """Problems of `instance` against a component schema, each located by its JSON path ("" = the body)."""
    errors = sorted(
        _validator(version, component).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}" for e in errors]


def request_schema(version: OpenAdrVersion, method: str, path: str) -> str | None:
    """The component named by the definition as the JSON request body of `method path` (a path template)."""
    operation = load_spec(version)["paths"].get(path, {}).get(method.lower(), {})
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    return None if ref is None else str(ref).rsplit("/", 1)[-1]
