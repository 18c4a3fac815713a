"""Upstream security profiles 2 and 3 over real TLS: the station's Basic credentials on 2, the gateway's own client
certificate on 3 (part 4, 6.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from gateway.certs import GATEWAY_CLIENT_COMMON_NAME, init_dev_pki
from gateway.config import UpstreamConfig
from gateway.tls import server_context
from tests.sidecar.conftest import proxy_of
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import PASSWORD, basic, make_config, raw_station, running, station_configs


async def test_profile3_upstream_uses_the_gateways_own_certificate(tmp_path: Path) -> None:
    # OpenSSL checks validity against the real clock, so these certificates are issued now.
    pki = init_dev_pki(tmp_path / "pki", stations=["S1"], now=datetime.now(UTC))
    tls = server_context(pki.server.cert, pki.server.key, client_ca=pki.ca.cert, require_client_cert=True)
    async with UpstreamCsms(ssl=tls) as csms:
        upstream = UpstreamConfig(
            url=csms.url,
            security_profile=3,
            ca=pki.ca.cert,
            client_cert=pki.gateway_client.cert,
            client_key=pki.gateway_client.key,
        )
        config = make_config(tmp_path, station_configs(["S1"]), mode="sidecar", upstream=upstream)
        async with running(config) as gw, raw_station(proxy_of(gw).url, "S1") as ws:
            await csms.until(lambda: "S1" in csms.peers)
            await ws.send('[2,"hb-1","Heartbeat",{}]')
            assert '"hb-1"' in await ws.recv()
        # The gateway's certificate, never the station's; and no station password on a certificate profile.
        assert csms.peers["S1"] == (GATEWAY_CLIENT_COMMON_NAME, None)


async def test_profile2_upstream_relays_the_stations_basic_credentials_over_tls(tmp_path: Path) -> None:
    """Profile 2: wss toward the CSMS, checked against the configured CA, with the station's own Basic credentials
    (the CSMS owns the password); a password the CSMS does not accept refuses the station through the gateway."""
    pki = init_dev_pki(tmp_path / "pki", stations=[], now=datetime.now(UTC))
    tls = server_context(pki.server.cert, pki.server.key, client_ca=None, require_client_cert=False)
    async with UpstreamCsms(ssl=tls, password=PASSWORD) as csms:
        upstream = UpstreamConfig(url=csms.url, security_profile=2, ca=pki.ca.cert)
        config = make_config(tmp_path, station_configs(["S1", "S2"]), mode="sidecar", upstream=upstream)
        async with running(config) as gw:
            async with raw_station(proxy_of(gw).url, "S1") as ws:
                await csms.until(lambda: "S1" in csms.peers)
                await ws.send('[2,"hb-1","Heartbeat",{}]')
                assert await ws.recv() == csms.sent_text("S1")[-1]
            assert csms.peers["S1"] == (None, basic("S1")["Authorization"])  # no client certificate on profile 2
            csms.password = "rotated-by-the-csms"  # the gateway still accepts the old one: the CSMS refuses it
            with pytest.raises(InvalidStatus) as refused:
                async with raw_station(proxy_of(gw).url, "S2"):
                    pass
            assert refused.value.response.status_code == HTTPStatus.UNAUTHORIZED
            assert "S2" not in csms.stations
