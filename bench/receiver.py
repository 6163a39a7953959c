"""The benchmark's webhook receiver: a bare ASGI app under uvicorn (httptools, uvloop).

Every POST is answered 200 at once and its arrival recorded as (webhook-id, path, monotonic
time). `time.monotonic()` is CLOCK_MONOTONIC, one clock for every process of the machine, so
the driver can subtract its own publish times from these. `GET /arrivals?since=K` returns the
arrivals from index K on; `GET /count` how many there are.

Run by bench/run.py in a process of its own: `python bench/receiver.py --port P`.
"""

import argparse
import json
import time

_arrivals: list[tuple[str, str, float]] = []
_OK = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    at = time.monotonic()
    if scope["method"] == "POST":
        more = True
        while more:  # drain the body
            message = await receive()
            more = message.get("more_body", False)
        webhook_id = ""
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                webhook_id = value.decode()
                break
        _arrivals.append((webhook_id, scope["path"], at))
        await send({"type": "http.response.start", "status": 200, "headers": _OK})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["path"] == "/count":
        body = str(len(_arrivals)).encode()
    else:  # /arrivals
        since = 0
        for part in scope["query_string"].decode().split("&"):
            if part.startswith("since="):
                since = int(part[6:])
        body = json.dumps(_arrivals[since:]).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
