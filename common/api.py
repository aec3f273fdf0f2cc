"""The HTTP API contract both variants serve, behind a small variant-specific port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.domain import Order, OrderConflict, PlaceOrder, SetStock, StockLevel
from common.settings import Settings

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class DependencyUnavailable(RuntimeError):
    """A database, broker or Temporal is unreachable: the client may retry (503)."""


class OrderService(Protocol):
    async def place_order(self, cmd: PlaceOrder) -> Order: ...
    async def get_order(self, order_id: str) -> Order | None: ...
    async def get_stock(self, sku: str) -> StockLevel | None: ...
    async def set_stock(self, sku: str, quantity: int) -> StockLevel: ...
    async def readiness(self) -> dict[str, str]: ...


ServiceFactory = Callable[[Settings], AbstractAsyncContextManager[OrderService]]


class ErrorBody(BaseModel):
    """Every error the API answers itself (all but 422): one sentence saying why."""

    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, **extra}


RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
}
UNREADABLE = {400: _error("The body is not UTF-8 text, so not JSON either")}
NOT_FOUND = {404: _error("No such order or SKU")}
CONFLICT = {409: _error("This order_id was already placed with another body, or cannot be placed again")}
NOT_RECORDED = {409: _error("The order_id is known, but its order has no record and will get none")}
UNAVAILABLE = {
    503: _error("A database, the broker or Temporal is unreachable: retry later", headers=RETRY_AFTER)
}


def _too_large(limit: int) -> dict[int | str, dict[str, Any]]:
    return {413: _error(f"The request body is over {limit} bytes (with or without Content-Length)")}


class BodyLimit:
    """Reject request bodies over `limit` bytes with 413, whether or not Content-Length is set.

    The body is read (at most `limit` bytes of it) before the app sees the request: an app
    that reads it itself would turn an error raised from `receive` into its own 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        messages = await _read_body(receive, self.limit)
        if messages is None:
            await self._reject(send)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, _no_receive, send)


async def _read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, up to its last one (or a disconnect); None once over `limit`."""
    messages: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        seen += len(message.get("body", b""))
        if seen > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that hands out the buffered body first, then whatever the server sends next."""
    pending = list(messages)

    async def replaying_receive() -> Message:
        return pending.pop(0) if pending else await receive()

    return replaying_receive


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(settings: Settings, factory: ServiceFactory, *, title: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with factory(settings) as service:
            app.state.service = service
            yield

    app = FastAPI(title=title, lifespan=lifespan, responses=_too_large(settings.max_body_bytes))

    def service(request: Request) -> OrderService:
        return request.app.state.service

    @app.exception_handler(OrderConflict)
    async def _conflict(_: Request, exc: OrderConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"dependency unavailable, retry later: {type(exc).__name__}"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for kind in (DependencyUnavailable, OperationalError, DBAPIError, PoolTimeout, OSError, TimeoutError):
        app.add_exception_handler(kind, _unavailable)

    @app.post(
        "/orders", status_code=202, response_model=Order, responses={**UNREADABLE, **CONFLICT, **UNAVAILABLE}
    )
    async def place_order(cmd: PlaceOrder, request: Request) -> Response:
        order = await service(request).place_order(cmd)
        # serialised once, here: returning the model would make FastAPI validate it again first
        return Response(order.model_dump_json(), status_code=202, media_type="application/json")

    @app.get(
        "/orders/{order_id}", response_model=Order, responses={**NOT_FOUND, **NOT_RECORDED, **UNAVAILABLE}
    )
    async def get_order(order_id: IdPath, request: Request) -> Any:
        order = await service(request).get_order(order_id)
        if order is None:
            return JSONResponse({"detail": f"order {order_id} not found"}, status_code=404)
        return order

    @app.get("/stock/{sku}", response_model=StockLevel, responses={**NOT_FOUND, **UNAVAILABLE})
    async def get_stock(sku: IdPath, request: Request) -> Any:
        level = await service(request).get_stock(sku)
        if level is None:
            return JSONResponse({"detail": f"sku {sku} not found"}, status_code=404)
        return level

    @app.put("/stock/{sku}", response_model=StockLevel, responses={**UNREADABLE, **UNAVAILABLE})
    async def set_stock(sku: IdPath, body: SetStock, request: Request) -> StockLevel:
        return await service(request).set_stock(sku, body.quantity)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}}
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = await service(request).readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


async def serve(settings: Settings, factory: ServiceFactory, *, title: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        create_app(settings, factory, title=title),
        log_level="warning",
        access_log=False,
        http="httptools",  # the C parser: a fraction of h11's CPU per request
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[_listening_socket(settings)]))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:  # SIGTERM from the supervisor: drain, then exit cleanly
        server.should_exit = True
        await task


def _listening_socket(settings: Settings) -> socket.socket:
    """The API's port, shareable: every API process of a deployment (`up` runs
    Settings.api_processes of them) binds it with SO_REUSEPORT and the kernel spreads new
    connections over them."""
    family = socket.AF_INET6 if ":" in settings.api_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.api_host, settings.api_port))
    # not listening yet: uvicorn listens once its startup (the service) is done, so that a
    # restarting process gets no connections before it can serve them
    sock.setblocking(False)
    return sock
