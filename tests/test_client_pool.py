"""The worker's client pool against a real receiver on 127.0.0.1 that closes idle connections."""

import asyncio

from hookline.activities.http import ClientPool


async def _receiver_closing_after_each_answer() -> tuple[asyncio.Server, list[int]]:
    """Answers one request per connection with a keep-alive 200, then hangs up without saying so."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, connections


async def test_a_connection_the_receiver_closed_is_not_reused() -> None:
    server, connections = await _receiver_closing_after_each_answer()
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    pool = ClientPool(1)
    try:
        answers = []
        for n in range(3):
            async with pool.post(url, b'{"n": %d}' % n, {"content-type": "application/json"}) as response:
                answers.append((response.status_code, await response.aread()))
            await asyncio.sleep(0.2)  # the receiver's hang-up reaches the idle pooled socket
        # Each POST found its pooled connection readable (closed) and opened a new one, instead of
        # sending into the dead one and failing.
        assert answers == [(200, b"ok")] * 3
        assert len(connections) == 3
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()


async def test_post_sends_the_given_bytes_and_headers_only() -> None:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received.append(head + await reader.readexactly(7))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = ClientPool(1)
    try:
        async with pool.post(f"http://127.0.0.1:{port}/in", b'{"a":1}', {"webhook-id": "msg_1"}) as response:
            assert response.status_code == 204
        assert received == [
            b"POST /in HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nwebhook-id: msg_1\r\nContent-Length: 7\r\n\r\n{\"a\":1}" % port
        ]
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()
