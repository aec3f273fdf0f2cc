"""Every status the API answers is declared in its OpenAPI document, with the body it sends.

In process (no server): create_app over a fake OrderService that answers each status on demand,
and schemathesis' own response validation against the app's /openapi.json. The fuzzer in
tests/{mq,workflow}/test_api_contract.py cannot reach the 503s (its dependencies are up) nor the
413s (it never sends 64 KiB), so they are pinned here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from common.api import DependencyUnavailable, OrderService, create_app
from common.domain import Order, OrderConflict, OrderStatus, PlaceOrder, StockLevel
from common.settings import Settings

ORDER = {"order_id": "o1", "customer_id": "c1", "lines": [{"sku": "apple", "quantity": 1}]}
LIMIT = Settings().max_body_bytes
NOT_UTF8 = b'{"quantity": \xff}'  # not JSON text at all: FastAPI's 400, not a 422


class FakeService:
    """Answers every call from `mode`: "ok", "missing" (None), "conflict" or "down"."""

    def __init__(self) -> None:
        self.mode = "ok"

    def _raise_if_down(self) -> None:
        if self.mode == "down":
            raise DependencyUnavailable("test: down")

    async def place_order(self, cmd: PlaceOrder) -> Order:
        self._raise_if_down()
        if self.mode == "conflict":
            raise OrderConflict(cmd.order_id)
        return Order(
            order_id=cmd.order_id, customer_id=cmd.customer_id, lines=cmd.lines, status=OrderStatus.PENDING
        )

    async def get_order(self, order_id: str) -> Order | None:
        self._raise_if_down()
        return None

    async def get_stock(self, sku: str) -> StockLevel | None:
        self._raise_if_down()
        return None if self.mode == "missing" else StockLevel(sku=sku, quantity=1)

    async def set_stock(self, sku: str, quantity: int) -> StockLevel:
        self._raise_if_down()
        return StockLevel(sku=sku, quantity=quantity)

    async def readiness(self) -> dict[str, str]:
        return {"orders_db": "unavailable: OSError" if self.mode == "down" else "ok"}


@dataclass(frozen=True)
class Call:
    mode: str
    method: str
    path: str  # the OpenAPI path template
    url: str
    status: int
    json: Any = None
    content: bytes | None = None


CALLS = [
    Call("ok", "POST", "/orders", "/orders", 202, json=ORDER),
    Call("conflict", "POST", "/orders", "/orders", 409, json=ORDER),
    Call("down", "POST", "/orders", "/orders", 503, json=ORDER),
    Call("ok", "POST", "/orders", "/orders", 413, content=b'{"order_id": "' + b"x" * LIMIT + b'"}'),
    Call("ok", "POST", "/orders", "/orders", 400, content=NOT_UTF8),
    Call("ok", "POST", "/orders", "/orders", 422, json={"order_id": "o1"}),
    Call("missing", "GET", "/orders/{order_id}", "/orders/o1", 404),
    Call("down", "GET", "/orders/{order_id}", "/orders/o1", 503),
    Call("missing", "GET", "/stock/{sku}", "/stock/apple", 404),
    Call("down", "GET", "/stock/{sku}", "/stock/apple", 503),
    Call("ok", "PUT", "/stock/{sku}", "/stock/apple", 200, json={"quantity": 3}),
    Call("down", "PUT", "/stock/{sku}", "/stock/apple", 503, json={"quantity": 3}),
    Call("ok", "PUT", "/stock/{sku}", "/stock/apple", 400, content=NOT_UTF8),
    Call("ok", "PUT", "/stock/{sku}", "/stock/apple", 413, content=b'{"quantity": ' + b" " * LIMIT + b"1}"),
    Call("ok", "GET", "/readyz", "/readyz", 200),
    Call("down", "GET", "/readyz", "/readyz", 503),
    Call("ok", "GET", "/healthz", "/healthz", 200),
    Call("ok", "GET", "/healthz", "/healthz", 413, content=b"x" * (LIMIT + 1)),
]


@contextlib.asynccontextmanager
async def _unused_factory(_: Settings) -> AsyncIterator[OrderService]:
    raise AssertionError("the lifespan does not run in these tests")
    yield  # pragma: no cover


@pytest.fixture
def app_and_service() -> tuple[FastAPI, FakeService]:
    app = create_app(Settings(), _unused_factory, title="contract")
    service = FakeService()
    app.state.service = service
    return app, service


def declared(app: FastAPI, call: Call) -> dict[str, Any]:
    responses = app.openapi()["paths"][call.path][call.method.lower()]["responses"]
    assert str(call.status) in responses, (
        f"{call.method} {call.path} answers {call.status}, declares {list(responses)}"
    )
    return responses[str(call.status)]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.method} {c.url} {c.mode} -> {c.status}")
async def test_each_status_is_declared_with_its_body(
    app_and_service: tuple[FastAPI, FakeService], call: Call
) -> None:
    app, service = app_and_service
    service.mode = call.mode
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        headers = {"content-type": "application/json"} if call.content is not None else None
        response = await client.request(
            call.method, call.url, json=call.json, content=call.content, headers=headers
        )
    assert response.status_code == call.status, response.text
    declaration = declared(app, call)
    assert declaration.get("content", {}).get("application/json", {}).get("schema"), declaration
    operation = schemathesis.openapi.from_dict(app.openapi())[call.path][call.method]
    operation.validate_response(response)  # raises on a body or header that breaks the declaration
    if call.status == 503 and call.path != "/readyz":
        assert response.headers["retry-after"].isdigit()
        assert "Retry-After" in declaration.get("headers", {}), declaration
