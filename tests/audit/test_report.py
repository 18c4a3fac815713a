"""The per-directive compliance summary pairs commands with answers and keeps every section."""

import json

from gateway.audit import AuditLog
from gateway.audit.report import build_report
from tests.audit.conftest import T0, directive_story


def test_report_pairs_commands_with_answers_and_lists_every_section(log: AuditLog) -> None:
    log.append_many(directive_story("D1", ["CS1", "CS2", "CS3"], T0))
    log.append("directive.completed", {"reason": "ended"}, at=T0, directive_id="D1")
    log.append("station.answer", {"status": "Rejected"}, at=T0, station_id="CS9", message_id="D1-CS9-m")
    report = build_report("D1", log.trail("D1"))
    assert report.found
    assert [c.status for c in report.commands] == ["Accepted", "Accepted", "no answer"]
    assert [c.latency_ms for c in report.commands] == [250, 250, None]
    assert [e.kind for e in report.lifecycle] == ["directive.completed"]
    assert len(report.asked) == len(report.signals) == len(report.allocations) == len(report.upstream) == 1
    assert report.other == []  # the stray answer belongs to no command of D1 and is not in its trail
    text = report.render()
    assert "Stations: 3 command(s) sent, 2 answered (Accepted 2, no answer 1)" in text
    assert "CS3" in text
    assert "export_limit_w" in text
    as_json = json.loads(json.dumps(report.to_json()))
    assert as_json["status_counts"] == {"Accepted": 2, "no answer": 1}
    assert as_json["stations"][0]["answered_at"] == "2025-06-01T12:00:01.250Z"


def test_report_of_an_unknown_directive_says_so(log: AuditLog) -> None:
    report = build_report("nope", log.trail("nope"))
    assert not report.found
    assert "no audit entries" in report.render()


def test_error_answers_and_unmatched_entries_are_kept(log: AuditLog) -> None:
    log.append(
        "command.sent",
        {"action": "SetDERControl"},
        at=T0,
        directive_id="D2",
        station_id="CS1",
        message_id="m",
    )
    log.append("station.answer", {"error": {"code": "NotSupported"}}, at=T0, station_id="CS1", message_id="m")
    log.append("station.alarm", {"fault": "OverVoltage"}, at=T0, directive_id="D2", station_id="CS1")
    report = build_report("D2", log.trail("D2"))
    assert [c.status for c in report.commands] == ["error"]
    assert [e.kind for e in report.other] == ["station.alarm"]
