"""A station's reconnect reads of its outcomes do not decode its whole history, and find exactly what the full reads
found: the restore ramps it still follows (restorer.ramps_of against running_ramps over every outcome), whether
anything of ours was ever there (Store.has_outcomes), and the outcomes of removed directives (station_outcomes `of`)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.demo import SAMPLE_DIRECTIVE
from gateway.model import CommandOutcome, Directive, DirectiveState, OutcomeStatus, StationOutcome
from gateway.restorer import ramps_of, running_ramps
from gateway.store import Store
from mappings.restore_profiles import RESTORE_NOTE
from mappings.units import timestamp

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WITHDRAWN = "restore ramp withdrawn: a later directive limits the station"


def _ramp(start_min: int, length_min: int, status: OutcomeStatus) -> CommandOutcome:
    start = NOW + timedelta(minutes=start_min)
    return CommandOutcome(
        action="SetChargingProfile",
        message_id=f"m{start_min}-{length_min}",
        controls=["import_limit_w"],
        status=status,
        detail=f"{RESTORE_NOTE} {timestamp(start)} until {timestamp(start + timedelta(minutes=length_min))}",
    )


def _plain(status: OutcomeStatus, detail: str | None = None) -> CommandOutcome:
    return CommandOutcome(
        action="SetChargingProfile", message_id="p", controls=["import_limit_w"], status=status, detail=detail
    )


commands = st.one_of(
    st.builds(
        _ramp,
        st.integers(-120, 60),
        st.integers(1, 90),
        st.sampled_from([OutcomeStatus.ACCEPTED, OutcomeStatus.REJECTED, OutcomeStatus.PENDING]),
    ),
    st.builds(_plain, st.sampled_from([OutcomeStatus.ACCEPTED, OutcomeStatus.CLEARED])),
    st.just(_plain(OutcomeStatus.ACCEPTED, WITHDRAWN)),
)
histories = st.lists(st.lists(commands, max_size=4), min_size=0, max_size=8)


def _store(path: Path, history: list[list[CommandOutcome]], station: str) -> tuple[Store, list[StationOutcome]]:
    store = Store(path)
    outcomes = []
    for i, cmds in enumerate(history):
        did = f"d{i}"
        store.add_directive(Directive.model_validate({**SAMPLE_DIRECTIVE, "id": did}), DirectiveState.RECEIVED, NOW)
        outcomes.append(
            StationOutcome(
                directive_id=did,
                station_id=station,
                status=OutcomeStatus.ACCEPTED if cmds else OutcomeStatus.CLEARED,
                commands=cmds,
                updated=NOW,
            )
        )
    other = [o.model_copy(update={"station_id": "other"}) for o in outcomes]
    store.save_outcomes([*outcomes, *other], NOW)
    return store, outcomes


@settings(max_examples=60, deadline=None)
@given(histories, st.integers(-90, 120))
def test_ramps_read_without_the_history_are_the_running_ones(history: list[list[CommandOutcome]], at: int) -> None:
    now = NOW + timedelta(minutes=at)
    with tempfile.TemporaryDirectory() as tmp:
        store, outcomes = _store(Path(tmp) / "state.db", history, "S1")
        try:
            expected = running_ramps(outcomes, now)
            assert ramps_of(store, "S1", now) == expected
            everything = [s.value for s in OutcomeStatus]
            assert running_ramps(store.station_outcomes("S1", everything), now) == expected
        finally:
            store.close()


def test_has_outcomes_ignores_the_status_asked_to(tmp_path: Path) -> None:
    store, _ = _store(tmp_path / "state.db", [[]], "S1")  # one outcome, cleared
    try:
        assert not store.has_outcomes("S1", besides=OutcomeStatus.CLEARED)
        assert store.has_outcomes("S1", besides=OutcomeStatus.ACCEPTED)
        assert not store.has_outcomes("nobody", besides=OutcomeStatus.CLEARED)
    finally:
        store.close()


def test_station_outcomes_of_directives_in_given_states(tmp_path: Path) -> None:
    store, _ = _store(tmp_path / "state.db", [[_plain(OutcomeStatus.ACCEPTED)]] * 3, "S1")
    try:
        store.set_directive_state("d0", DirectiveState.CANCELLED, NOW)
        store.set_directive_state("d1", DirectiveState.COMPLETED, NOW)
        accepted = [OutcomeStatus.ACCEPTED.value]
        removed = store.station_outcomes("S1", accepted, of=[DirectiveState.CANCELLED, DirectiveState.SUPERSEDED])
        assert [o.directive_id for o in removed] == ["d0"]
        assert sorted(o.directive_id for o in store.station_outcomes("S1", accepted)) == ["d0", "d1", "d2"]
    finally:
        store.close()
