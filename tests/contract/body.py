"""Request bodies sent with Transfer-Encoding: chunked (no Content-Length), from a generator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.support import VariantRun

CHUNK = 8 * 1024


def order_json(order_id: str, padding: int) -> bytes:
    """A valid order followed by `padding` bytes of JSON whitespace: only its size can be wrong."""
    order = f'{{"order_id": "{order_id}", "customer_id": "c1", "lines": [{{"sku": "apple", "quantity": 1}}]}}'
    return order.encode() + b" " * padding


async def chunks(body: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def post_chunked(http: httpx.AsyncClient, path: str, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json"}
    request = http.build_request("POST", path, content=chunks(body), headers=headers)
    assert request.headers.get("transfer-encoding") == "chunked", request.headers
    assert "content-length" not in request.headers, request.headers
    return await http.send(request)


async def check_chunked_body_limit(run: VariantRun) -> None:
    """Over the limit: 413 with a JSON reason and no order; under it: an ordinary 202."""
    limit = run.settings.max_body_bytes
    over = await post_chunked(run.http, "/orders", order_json(run.oid("chunked-big"), limit))
    assert over.status_code == 413, f"{over.status_code} {over.text}"
    assert over.headers["content-type"] == "application/json", over.headers
    assert str(limit) in over.json()["detail"], over.text
    assert (await run.http.get(f"/orders/{run.oid('chunked-big')}")).status_code == 404
    under = await post_chunked(run.http, "/orders", order_json(run.oid("chunked-small"), limit // 2))
    assert under.status_code == 202, f"{under.status_code} {under.text}"
    assert under.json()["order_id"] == run.oid("chunked-small")
