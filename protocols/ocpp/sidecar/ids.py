"""Message ids of gateway-originated CALLs in sidecar mode (OCPP 2.1 part 4, 6.4 rule 1).

A Local Controller must use ids that never collide with the CSMS's. Gateway ids are `dergw-` followed by 30 hex
digits of a random UUID (36 characters, the OCPP-J maximum): the prefix marks them as the gateway's, the random part
makes them unique. Answers are routed by the single outstanding CALL on the station link, so even a CSMS that used
the same prefix could never receive an answer meant for the gateway; the prefix keeps the two streams apart in the
station's own duplicate detection and in logs.
"""

from __future__ import annotations

import uuid

PREFIX = "dergw-"


def new_id() -> str:
    return PREFIX + uuid.uuid4().hex[:30]


def is_gateway_id(message_id: str) -> bool:
    return message_id.startswith(PREFIX)
