"""A consumer channel's deliveries, handed out in delivery order, a batch at a time.

`queue.consume` calls `receive` once per delivery in the order the broker sent them: aiormq starts
one task per Basic.Deliver frame, in frame order, aio-pika one task per delivery for the callback,
and `receive` appends without awaiting anything. `next_batch` waits for the first delivery, then
takes every further one already received, without waiting, up to a limit: under load a batch is
what the prefetch let the broker send ahead, when idle it is one message.

The buffer ends when the channel closes (its deliveries go back to the queue: none can be acked
any more) or when the broker cancels the consumer (its queue was deleted).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue


class Deliveries:
    def __init__(self) -> None:
        self._buffer: deque[AbstractIncomingMessage] = deque()
        self._changed = asyncio.Event()
        self._ended: str | None = None
        self.cancelled = False

    @classmethod
    async def consume(cls, channel: AbstractChannel, queue: AbstractQueue) -> Deliveries:
        """Start consuming `queue` (manual acks) into a new buffer."""
        deliveries = cls()
        channel.close_callbacks.add(deliveries._on_channel_close)
        underlay = await channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(deliveries._on_cancel)
        await queue.consume(deliveries.receive)
        return deliveries

    async def receive(self, message: AbstractIncomingMessage) -> None:
        self._buffer.append(message)
        self._changed.set()

    @property
    def ended(self) -> str | None:
        """Why no further batch will come (None while consuming)."""
        return self._ended

    async def next_batch(self, limit: int) -> list[AbstractIncomingMessage]:
        """The next deliveries in delivery order, at least one, at most `limit`; [] once ended."""
        while not self._buffer and self._ended is None:
            self._changed.clear()
            await self._changed.wait()
        if self._ended is not None:
            return []
        return [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]

    def _end(self, why: str) -> None:
        if self._ended is None:
            self._ended = why
        self._changed.set()

    def _on_channel_close(self, _channel: Any, exc: BaseException | None = None) -> None:
        self._end(f"the channel closed ({type(exc).__name__ if exc else 'no error'}: {exc or ''})")

    def _on_cancel(self, _frame: Any) -> None:
        self.cancelled = True
        self._end("the broker cancelled the consumer")
