"""Stations reporting equal capabilities share one model (memory per idle station), bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.model import OcppVersion, StationCapabilities
from protocols.ocpp import capabilities

MODES = ["FreqDroop", "VoltVar", "LimitMaxDischarge", "Gradients"]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    capabilities._SHARED.clear()
    yield
    capabilities._SHARED.clear()


def _read(modes: list[str], max_w: str) -> StationCapabilities:
    values = {
        ("DCDERCtrlr", "Enabled"): "true",
        ("DCDERCtrlr", "ModesSupported"): ",".join(modes),
        ("DCDERCtrlr", "MaxW"): max_w,
    }
    return capabilities.capabilities_v2(OcppVersion.V21, values)


@given(st.lists(st.sampled_from(MODES), unique=True), st.sampled_from(["7400", "11000"]))
def test_equal_capabilities_come_back_as_one_object_and_unequal_ones_stay_apart(modes: list[str], max_w: str) -> None:
    capabilities._SHARED.clear()
    first = capabilities.shared(_read(modes, max_w))
    again = capabilities.shared(_read(list(reversed(modes)), max_w))  # equal set, separately built
    assert again is first
    other = capabilities.shared(_read(modes, "22000"))
    assert other != first
    assert capabilities.shared(_read(modes, max_w)) is first


def test_distinct_sets_past_the_bound_are_returned_unshared() -> None:
    for n in range(capabilities.SHARED_MAX):
        capabilities.shared(_read(["FreqDroop"], str(n)))
    assert len(capabilities._SHARED) == capabilities.SHARED_MAX
    late = _read(["FreqDroop"], "999999")
    assert capabilities.shared(late) is late
    assert capabilities.shared(_read(["FreqDroop"], "999999")) is not late  # not kept
    assert len(capabilities._SHARED) == capabilities.SHARED_MAX
    assert capabilities.shared(_read(["FreqDroop"], "0")) == _read(["FreqDroop"], "0")
