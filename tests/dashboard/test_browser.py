"""The dashboard in a real headless browser (Debian's chromium driven by Playwright) against a real gateway with a
mixed simulated fleet: the page loads, shows the fleet, and reflects a directive, a power reading, an alarm and a
station reload that happen while it is open."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from gateway.demo import SAMPLE_DIRECTIVE
from tests.dashboard.conftest import MIX, World
from tests.support import TOKEN, password_hash

#: Debian's chromium (the Makefile installs it); Playwright's own browser downloads are not used.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 15_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's chromium (apt-get install chromium)")
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, world: World) -> AsyncIterator[Page]:
    opened = await browser.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    await opened.goto(f"{world.gateway.api_url}/dashboard/#token={TOKEN}")
    yield opened
    await opened.close()
    assert errors == [], errors


async def test_page_shows_the_fleet_and_follows_a_directive_power_and_an_alarm(world: World, page: Page) -> None:
    await expect(page.locator("#stream")).to_have_text("live", timeout=WAIT_MS)
    assert "token" not in page.url  # taken out of the address bar once read
    await expect(page.locator("#login")).to_be_hidden()  # the token form is gone once the stream is live
    rows = page.locator("#stations tbody tr")
    await expect(rows).to_have_count(len(MIX), timeout=WAIT_MS)
    for sid, version in MIX.items():
        row = page.locator(f'#stations tr[data-id="{sid}"]')
        await expect(row.locator("td").nth(1)).to_have_text("connected")
        await expect(row.locator("td").nth(2)).to_have_text(version.value)
    await expect(page.locator("#fleet-summary")).to_have_text("3 of 3 stations connected")
    await expect(page.locator("#checkpoint")).to_contain_text("entries")

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{world.gateway.api_url}/api/directives", json=SAMPLE_DIRECTIVE) as resp,
    ):
        assert resp.status == 202
    directive = page.locator(f'#directives tr[data-id="{SAMPLE_DIRECTIVE["id"]}"]')
    await expect(directive).to_have_attribute("data-state", "active", timeout=WAIT_MS)
    await expect(directive.locator("td.outcomes")).to_have_text("accepted 1partial 2")
    v21 = page.locator('#stations tr[data-id="DASH-21"]')
    await expect(v21.locator("td").nth(4)).to_contain_text("demo-curtail-1: ", timeout=WAIT_MS)

    await world.stations["DASH-21"].send_meter_values()
    await expect(v21.locator("td").nth(3)).to_have_text("7.0 kW / 7.0 kW", timeout=WAIT_MS)
    await expect(page.locator("#power-now")).to_have_text("now 7.0 kW, limit 21.0 kW on 3 stations", timeout=WAIT_MS)
    assert await page.locator("#chart-power").get_attribute("points")

    await world.stations["DASH-21"].raise_alarm("FreqDroop", grid_event_fault="OverFrequency")
    await expect(page.locator('#alarms li[data-station="DASH-21"]')).to_contain_text(
        "FreqDroop / OverFrequency", timeout=WAIT_MS
    )
    await expect(v21.locator("td").nth(5)).to_contain_text("FreqDroop / OverFrequency", timeout=WAIT_MS)

    await page.select_option("#filter-version", "ocpp1.6")
    await expect(page.locator("#stations tbody tr:visible")).to_have_count(1)
    await expect(page.locator("#stations tbody tr:visible")).to_have_attribute("data-id", "DASH-16")
    await page.select_option("#filter-version", "")
    await page.fill("#filter-text", "dash-2")
    await expect(page.locator("#stations tbody tr:visible")).to_have_count(2)


async def test_a_wrong_token_asks_for_the_token_again(world: World, browser: Browser) -> None:
    page = await browser.new_page()
    try:
        await page.goto(f"{world.gateway.api_url}/dashboard/#token=wrong")
        await expect(page.locator("#login")).to_be_visible(timeout=WAIT_MS)
        await expect(page.locator("#stream")).to_have_text("token refused")
        await page.fill("#token", TOKEN)
        await page.click("#login button")
        await expect(page.locator("#stream")).to_have_text("live", timeout=WAIT_MS)
        await expect(page.locator("#stations tbody tr")).to_have_count(len(MIX), timeout=WAIT_MS)
    finally:
        await page.close()


async def test_a_station_removed_by_a_reload_leaves_the_page(world: World, page: Page, tmp_path: Path) -> None:
    await expect(page.locator("#stations tbody tr")).to_have_count(len(MIX), timeout=WAIT_MS)
    kept = [sid for sid in MIX if sid != "DASH-16"]
    source = tmp_path / "stations.toml"  # a reload re-reads only [[stations]] from the gateway's file
    source.write_text("".join(f'[[stations]]\nid = "{sid}"\npassword_hash = "{password_hash()}"\n' for sid in kept))
    world.gateway.source = source
    assert (await world.gateway.reload_stations())["removed"] == ["DASH-16"]
    await expect(page.locator("#stations tbody tr")).to_have_count(len(kept), timeout=WAIT_MS)
    await expect(page.locator('#stations tr[data-id="DASH-16"]')).to_have_count(0)
    await expect(page.locator("#fleet-summary")).to_have_text("2 of 2 stations connected")
