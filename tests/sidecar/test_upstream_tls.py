"""Upstream security profile 3: toward the CSMS the gateway uses its own client certificate (part 4, 6.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.certs import GATEWAY_CLIENT_COMMON_NAME, init_dev_pki
from gateway.config import UpstreamConfig
from gateway.tls import server_context
from tests.sidecar.conftest import proxy_of
from tests.sidecar.upstream_csms import UpstreamCsms
from tests.support import make_config, raw_station, running, station_configs


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
