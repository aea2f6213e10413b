"""Webhooks: a job's (or a sweep's) `callback_url` is POSTed once when it finishes.

Only loopback addresses are allowed unless the server was started with `--allow-callback-hosts`
naming the other hosts (or `*` for any): a server must not become a way to reach hosts on its
network. Redirects are not followed, for the same reason. Deliveries run on the event loop with a
timeout, never on the dispatcher thread; each is tried once, and its outcome is recorded on the
job (`callback`). A crash between a job's end and its delivery loses that delivery.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from yarl import URL

from latentgraph.server.security import is_loopback

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


class Webhooks:
    def __init__(self, allowed_hosts: Iterable[str] = (), timeout: float = TIMEOUT_S):
        self.allowed = {host.strip().lower().strip("[]") for host in allowed_hosts if host.strip()}
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: set[asyncio.Future] = set()

    def problem(self, url: object) -> str | None:
        """Why `url` may not be a callback, or None."""
        if not isinstance(url, str):
            return "callback_url must be a string"
        try:
            parsed = URL(url)
        except ValueError:
            return f"callback_url {url!r} is not a URL"
        if parsed.scheme not in ("http", "https") or not parsed.host:
            return f"callback_url {url!r} must be an http:// or https:// URL"
        host = parsed.host.lower()
        if is_loopback(host) or "*" in self.allowed or host in self.allowed:
            return None
        return (f"callback_url host {parsed.host!r} is not allowed: only loopback addresses, unless the server is "
                "started with --allow-callback-hosts naming it")

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def send(self, url: str, payload: dict, record: Callable[[dict], None]) -> None:
        """POST `payload` to `url` (from any thread); `record(outcome)` gets {"status", "error"?, "at"}."""
        if self._loop is None or self._loop.is_closed():
            record({"status": None, "error": "the server stopped before the callback was sent", "at": time.time()})
            return

        def schedule() -> None:
            future = asyncio.ensure_future(self._post(url, payload, record))
            self._in_flight.add(future)
            future.add_done_callback(self._in_flight.discard)

        try:
            self._loop.call_soon_threadsafe(schedule)
        except RuntimeError:  # the loop closed meanwhile
            record({"status": None, "error": "the server stopped before the callback was sent", "at": time.time()})

    async def _post(self, url: str, payload: dict, record: Callable[[dict], None]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        outcome: dict = {"status": None, "at": time.time()}
        try:
            async with self._session.post(url, json=payload, allow_redirects=False) as response:
                outcome["status"] = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("callback to %s failed: %s", url, outcome["error"])
        try:
            await asyncio.to_thread(record, outcome)
        except Exception:
            log.exception("recording the callback to %s failed", url)

    async def close(self, timeout: float = 5.0) -> None:
        """Let deliveries in flight finish (up to `timeout`), then close the client."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)
        if self._session is not None:
            await self._session.close()
            self._session = None


def follow_jobs(webhooks: Webhooks, history, jobs) -> None:
    """POST each job's `callback_url` when the job ends, and record the outcome on the job."""

    def record(job_id: str, outcome: dict) -> None:
        doc = history.get(job_id)
        if doc is not None:
            doc["callback"] = outcome
            history.save(doc)

    def ended(job) -> None:
        if job.callback_url:
            payload = {"type": "job_finished", "job": {k: v for k, v in job.to_json().items() if k != "workflow"}}
            webhooks.send(job.callback_url, payload, lambda outcome: record(job.job_id, outcome))

    jobs.on_finished(ended)
