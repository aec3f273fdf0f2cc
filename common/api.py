"""The HTTP API contract both variants serve, behind a small variant-specific port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse
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


class BodyLimit:
    """Reject request bodies over `limit` bytes with 413, whether or not Content-Length is set."""

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
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse({"detail": f"request body larger than {self.limit} bytes"}, status_code=413)
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(settings: Settings, factory: ServiceFactory, *, title: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with factory(settings) as service:
            app.state.service = service
            yield

    app = FastAPI(title=title, lifespan=lifespan)

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

    @app.post("/orders", status_code=202, response_model=Order)
    async def place_order(cmd: PlaceOrder, request: Request) -> Order:
        return await service(request).place_order(cmd)

    @app.get("/orders/{order_id}", response_model=Order)
    async def get_order(order_id: IdPath, request: Request) -> Any:
        order = await service(request).get_order(order_id)
        if order is None:
            return JSONResponse({"detail": f"order {order_id} not found"}, status_code=404)
        return order

    @app.get("/stock/{sku}", response_model=StockLevel)
    async def get_stock(sku: IdPath, request: Request) -> Any:
        level = await service(request).get_stock(sku)
        if level is None:
            return JSONResponse({"detail": f"sku {sku} not found"}, status_code=404)
        return level

    @app.put("/stock/{sku}", response_model=StockLevel)
    async def set_stock(sku: IdPath, body: SetStock, request: Request) -> StockLevel:
        return await service(request).set_stock(sku, body.quantity)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
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
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:  # SIGTERM from the supervisor: drain, then exit cleanly
        server.should_exit = True
        await task
