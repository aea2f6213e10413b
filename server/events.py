"""Websocket broadcast: every connected tab gets every event, in order.

Each client has its own bounded queue and sender task, so one slow tab never holds up the others
or the worker; a tab that falls too far behind is disconnected (the editor reconnects and reloads
the queue state). A client may join under a key (ComfyUI's clientId) to receive messages sent to
that key only.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

BACKLOG = 2000  # events a client may lag behind before it is dropped


class Broadcaster:
    def __init__(self, greeting: Callable[[], list[dict]] = list):
        self._greeting = greeting  # events sent to a client when it connects (the queue state)
        self._clients: dict[web.WebSocketResponse, tuple[asyncio.Queue, str | None]] = {}
        self._senders: dict[web.WebSocketResponse, asyncio.Task] = {}

    def publish(self, event: dict) -> None:
        """Send an event to every client. Call on the event loop."""
        self.send(json.dumps(event))

    def send(self, message: str | bytes, to: str | None = None) -> None:
        """Send a text or binary message to every client, or to those that joined under the key `to`."""
        for ws, (queue, key) in list(self._clients.items()):
            if to is not None and key != to:
                continue
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                log.warning("dropping a websocket client that is %d events behind", BACKLOG)
                del self._clients[ws]
                asyncio.ensure_future(ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow"))

    async def handle(self, request: web.Request, key: str | None = None,
                     greeting: list[dict] | None = None) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(BACKLOG)
        for event in self._greeting() if greeting is None else greeting:
            queue.put_nowait(json.dumps(event))
        self._clients[ws] = (queue, key)
        sender = self._senders[ws] = asyncio.create_task(self._send(ws, queue))
        try:
            async for message in ws:  # clients only listen; reading notices when they leave
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self._clients.pop(ws, None)
            self._senders.pop(ws, None)
            sender.cancel()
        return ws

    async def _send(self, ws: web.WebSocketResponse, queue: asyncio.Queue) -> None:
        try:
            while (message := await queue.get()) is not None:
                await (ws.send_bytes(message) if isinstance(message, bytes) else ws.send_str(message))
        except (ConnectionResetError, RuntimeError):  # the client went away mid-send
            pass

    async def close_all(self, flush_timeout: float = 5.0) -> None:
        """Send every client what is queued for it (the last jobs' ends, `shutdown`), then close."""
        clients, self._clients = dict(self._clients), {}
        senders = [self._senders[ws] for ws in clients if ws in self._senders]
        for queue, _ in clients.values():
            try:
                queue.put_nowait(None)  # the sender stops after the events before it
            except asyncio.QueueFull:
                pass
        if senders:
            await asyncio.wait(senders, timeout=flush_timeout)
        for ws in clients:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
