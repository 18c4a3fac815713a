"""docs/configuration.md against the configuration models, field by field: every key of every section is in that
section's table, and the default the table gives is the one the code applies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import gateway.config as c
from protocols.openadr2b.ven import OpenAdr2bConfig
from protocols.openadr3.adapter import OpenAdr3Config

DOC = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
SECTIONS: dict[str, type[BaseModel]] = {
    "ocpp": c.OcppConfig,
    "ocpp.upstream": c.UpstreamConfig,
    "api": c.ApiConfig,
    "audit": c.AuditConfig,
    "dispatch": c.DispatchConfig,
    "stations": c.StationConfig,
    "ieee2030_5": c.Ieee20305Section,
    "openadr3": OpenAdr3Config,
    "openadr2b": OpenAdr2bConfig,
    "iec61850": c.Iec61850Section,
}
#: Words the tables use for a default that is not a TOML value.
WORDS: dict[str, Any] = {"–": None, "required": "required", "all": [], "discovered": None, "defaults": "defaults"}


def rows(section: str) -> dict[str, str]:
    """key -> the default column, from the first table under the section's heading."""
    chunk = next(part for part in DOC.split("\n## ") if re.match(rf"`\[\[?{re.escape(section)}\]?\]`", part))
    table = chunk.split("\n\n|", 1)[1].split("\n\n", 1)[0]
    found: dict[str, str] = {}
    for keys, default in re.findall(r"^\| ([^|]+) \| ([^|]+) \|", "|" + table, re.M):
        names = re.findall(r"`\[?(?:[\w.]+\.)?(\w+)\]?`", keys)
        values = [v.strip() for v in re.findall(r"`([^`]+)`", default)] or [default.strip()]
        for i, name in enumerate(names):
            found[name] = values[i] if i < len(values) else values[0]
    return found


def documented(value: str) -> Any:
    if value in WORDS:
        return WORDS[value]
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def actual(field: Any) -> Any:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "defaults"
    return value.value if hasattr(value, "value") else value


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_key_is_documented_with_its_default(section: str) -> None:
    table = rows(section)
    model = SECTIONS[section]
    for name, field in model.model_fields.items():
        key = field.alias or name
        if section == "ocpp" and key == "upstream":
            continue  # its own section, below
        if section == "ieee2030_5" and key == "devices":
            assert "[[ieee2030_5.devices]]" in DOC
            continue
        assert key in table, f"[{section}] {key} is not in docs/configuration.md"
        doc_default, code_default = documented(table[key]), actual(field)
        if isinstance(code_default, dict) and code_default and doc_default not in ("required", None):
            continue  # a non-empty mapping (openadr2b resources) is shown as TOML, checked by its own tests
        if isinstance(code_default, float | int) and not isinstance(code_default, bool):
            assert float(doc_default) == float(code_default), f"[{section}] {key}"
        else:
            assert doc_default == code_default, f"[{section}] {key}: doc {doc_default!r}, code {code_default!r}"


def test_top_level_keys_and_device_keys_are_documented() -> None:
    for name in ("data_dir", "certs_dir"):
        assert f"| `{name}` | `{c.GatewayConfig.model_fields[name].default}` |" in DOC
    for name in c.EndDeviceConfig.model_fields:
        assert re.search(rf"^\| [^|]*`{name}`", DOC, re.M), name
    for name in c.RatingsConfig.model_fields:
        assert f"{name} = ..." in DOC
