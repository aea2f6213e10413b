"""The aiohttp application: API routes, the websocket, the built editor, and `serve`.

    latentgraph serve [--host 127.0.0.1] [--port 8188] ...

calls `serve(host, port, settings, token)`. Everything the server reads or writes lies in the
configured folders, the saved-workflow and component libraries and the history database beside the
output folder.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from pathlib import Path

from aiohttp import web

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.graph.sweep import MAX_JOBS
from latentgraph.nodes import registry
from latentgraph.server import api, comfy_protocol, components, editor, files, library, openapi, security, sweeps
from latentgraph.server.comfy_bridge import ComfyBridge
from latentgraph.server.events import Broadcaster
from latentgraph.server.history import History
from latentgraph.server.jobs import JobQueue
from latentgraph.server.runner import LocalRunner, Runner
from latentgraph.server.state import SERVER, Server, state
from latentgraph.server.webhooks import Webhooks, follow_jobs

MAX_UPLOAD_BYTES = 32 << 20
HISTORY_FILE = "latentgraph-history.sqlite3"
LIBRARY_FOLDER = "workflows"
COMPONENTS_FOLDER = "components"

routes = web.RouteTableDef()


@routes.get("/ws")
@openapi.operation(answer_type="", tag="events")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Websocket of events for every job (docs/protocol.md, 'Websocket events').

    The first message is a `queue` event with the current counts."""
    return await state(request).events.handle(request)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Unknown API routes and wrong methods answer the protocol's error object, not HTML."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json" or not request.path.startswith("/api/"):
            raise
        exc.text = json.dumps({"error": f"{exc.reason}: {request.method} {request.path}"})
        exc.content_type = "application/json"
        raise


def create_app(settings: Settings, token: str | None = None, *, host: str = "127.0.0.1",
               history_path: Path | None = None, library_folder: Path | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, editor_dist: Path = editor.DIST,
               resume_interrupted: bool = False, callback_hosts: tuple[str, ...] = (),
               max_sweep_jobs: int = MAX_JOBS, runner: Runner | None = None) -> web.Application:
    """The server for `settings`. `host` is the address it will be bound to: any non-loopback
    address requires `token`, which every request must then carry. `resume_interrupted` queues
    again the job a previous server was running when it stopped; `callback_hosts` are the hosts
    besides loopback that webhooks may reach ("*": any); `runner` runs the jobs (default: this
    process's Executor)."""
    if token is None and not security.is_loopback(host):
        raise ValueError(f"serving on {host} (not a loopback address) requires a token")
    registry()  # fills the node catalog
    # With a runner of its own (a worker pool) this executor only validates: it stays off the GPUs.
    executor = Executor(settings if runner is None else dataclasses.replace(settings, device="cpu"), previews=True)
    history = History(history_path or settings.output.resolve().parent / HISTORY_FILE)
    loop: asyncio.AbstractEventLoop | None = None

    def publish(event: dict) -> None:  # from any thread; events keep their order
        try:
            if loop is not None:
                loop.call_soon_threadsafe(events.publish, event)
                loop.call_soon_threadsafe(comfy.on_event, event)  # ComfyUI's messages for its clients
        except RuntimeError:  # the loop is closed: the server has stopped, nobody is listening
            pass

    jobs = JobQueue(runner or LocalRunner(executor), history, publish, resume_interrupted=resume_interrupted)
    events = Broadcaster(greeting=lambda: [jobs.queue_event()])
    comfy = ComfyBridge(jobs)
    webhooks = Webhooks(callback_hosts)
    follow_jobs(webhooks, history, jobs)
    sweep_book = sweeps.Sweeps(settings, history, jobs, publish, webhooks, max_sweep_jobs)

    app = web.Application(middlewares=[security.guard(token), json_errors],
                          client_max_size=max_upload_bytes + (1 << 20))
    beside_output = settings.output.resolve().parent
    app[SERVER] = Server(settings, executor, history, jobs, events, library_folder or beside_output / LIBRARY_FOLDER,
                         max_upload_bytes, beside_output / COMPONENTS_FOLDER, sweeps=sweep_book, webhooks=webhooks)
    app[editor.FOLDER] = editor_dist
    app[comfy_protocol.BRIDGE] = comfy
    # ComfyUI's protocol beside ours (paths both use answer both); the editor's routes come last: they
    # end with a catch-all.
    for table in (comfy_protocol.shared(api.routes), sweeps.routes, files.routes, library.routes, components.routes,
                  comfy_protocol.shared(routes), comfy_protocol.routes(), editor.routes):
        app.router.add_routes(table)

    async def start(app: web.Application) -> None:
        nonlocal loop
        loop = asyncio.get_running_loop()
        await webhooks.start()
        jobs.start()
        await asyncio.to_thread(sweep_book.finish_leftovers)

    async def shut_down(app: web.Application) -> None:
        # Interrupt what runs (the pending jobs stay queued for the next start), deliver the last
        # events (each job's end, then `shutdown`) and webhooks, then close the websockets.
        await asyncio.to_thread(jobs.stop)
        await asyncio.sleep(0)  # let the events published from the worker reach the client queues
        await webhooks.close()
        await events.close_all()
        await comfy.sockets.close_all()

    async def stop(app: web.Application) -> None:
        jobs.runner.close()
        history.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shut_down)
    app.on_cleanup.append(stop)
    return app


def editor_url(host: str, port: int, token: str | None) -> str:
    if host in ("", "0.0.0.0", "::"):  # every interface: show a name others can use
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(host: str = "127.0.0.1", port: int = 8188, settings: Settings | None = None,
          token: str | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES, **options) -> None:
    """Run the server until interrupted (Ctrl+C, SIGTERM). A non-loopback `host` without a token
    gets a generated one; the URL printed carries it. `options` go to `create_app`."""
    settings = settings or Settings()
    if token is None and not security.is_loopback(host):
        token = security.new_token()
        print("latentgraph: serving on a non-loopback address: every request needs this token:\n"
              f"  {token}", flush=True)
    app = create_app(settings, token, host=host, max_upload_bytes=max_upload_bytes, **options)
    url = editor_url(host, port, token)
    web.run_app(app, host=host, port=port, print=lambda _: print(f"latentgraph: editor at {url}", flush=True))
