"""/metrics: Prometheus text of aggregates only; `carnet-relay stats` prints the same totals."""

from __future__ import annotations

import aiohttp

from carnet.relay.metrics import parse
from carnet.relay.server import create_app
from carnet.relay.storage.base import Storage
from tests.relay.conftest import serving
from tests.relay.helpers import Api, Device, new_keys


async def scrape(api: Api, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with api.session.get(api.url + "/metrics", headers=headers) as resp:
        return resp.status, await resp.text()


def values(text: str) -> dict[str, float]:
    return dict(parse(text))


async def test_counts_latencies_and_totals_without_anything_personal(
    api: Api, storage: Storage
) -> None:
    keys = new_keys()
    device = Device(keys)
    entries = device.batch(3)
    await api.create(keys)
    await api.append(keys, entries)
    await api.read(keys)
    await api.read(new_keys())  # 404
    await api.session.request("PATCH", api.url + "/v1/mailboxes")
    async with await api.subscribe(keys) as ws:
        await ws.receive()
        status, text = await scrape(api)
    assert status == 200
    seen = values(text)
    route = 'route="/v1/mailboxes/{id}/entries"'
    assert seen[f'carnet_relay_requests_total{{method="POST",{route},status="200"}}'] == 1
    assert seen[f'carnet_relay_requests_total{{method="GET",{route},status="404"}}'] == 1
    assert seen['carnet_relay_requests_total{method="PATCH",route="(no route)",status="405"}']
    bucket = f'carnet_relay_request_duration_seconds_bucket{{method="GET",{route},le="+Inf"}}'
    assert seen[bucket] == 2
    assert seen["carnet_relay_subscriptions"] == 1
    stats = await storage.stats()
    assert seen["carnet_relay_mailboxes"] == stats.mailboxes == 1
    assert seen["carnet_relay_entries"] == stats.entries == 3
    assert seen["carnet_relay_stored_bytes"] == stats.bytes == sum(len(e.data) for e in entries)
    for secret in (keys.hex_id, entries[0].writer.hex(), "127.0.0.1"):
        assert secret not in text
    # Label values come from fixed sets only: methods, route templates, statuses.
    labels = {series.split("{", 1)[1] for series in seen if "{" in series}
    assert all("/mailboxes/" not in label or "{id}" in label for label in labels)


async def test_a_metrics_token_is_required_when_set(storage: Storage) -> None:
    app = create_app(storage, metrics_token="s3cret-token")
    async with serving(app) as url, aiohttp.ClientSession() as session:
        api = Api(session, url)
        assert (await scrape(api))[0] == 401
        assert (await scrape(api, "wrong"))[0] == 401
        status, text = await scrape(api, "s3cret-token")
        assert status == 200 and "carnet_relay_entries 0" in text
