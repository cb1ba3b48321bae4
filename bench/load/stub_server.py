"""A trivial stand-in for the pipeline, for the load tool's `--self-test` (in a process of its
own): POST /SQSManager answers 202 at once; GET /requests/{id} 404 pending for 100 ms, then 200
applied. It prints "listening on http://127.0.0.1:<port>".
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

from aiohttp import web

PENDING_SECONDS = 0.1


async def serve() -> None:
    posted: dict[str, float] = {}

    async def post(request: web.Request) -> web.Response:
        await request.read()
        posted[request_id := uuid.uuid4().hex] = time.time()
        return web.json_response({"requestId": request_id, "messageId": str(uuid.uuid4())},
                                 status=202)

    async def outcome(request: web.Request) -> web.Response:
        request_id = request.match_info["request_id"]
        at = posted.get(request_id)
        if at is None or time.time() - at < PENDING_SECONDS:
            return web.json_response({"requestId": request_id, "status": "pending"}, status=404)
        return web.json_response({"requestId": request_id, "status": "applied"})

    app = web.Application()
    app.router.add_post("/SQSManager", post)
    app.router.add_get("/requests/{request_id}", outcome)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, backlog=1024).start()
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()  # until the process is stopped


if __name__ == "__main__":
    asyncio.run(serve())
