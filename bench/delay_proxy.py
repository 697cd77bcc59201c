"""A TCP proxy that delays every chunk by a fixed time in each direction.

    python bench/delay_proxy.py --listen-port P --target 127.0.0.1:5432 --delay-ms 2

The benchmark's stand-in for network latency between the service and PostgreSQL
(this kernel has no netem). Each chunk is written at its arrival plus the delay,
in order, and one chunk's delay never adds to the next one's: the connection
carries as much as it would without the proxy, only later. A chunk never
leaves early; it leaves late by the loop's wake-up time (epoll waits whole
milliseconds, rounded up) and the proxy's own hop, a few tenths of a
millisecond each way (bench/README.md). Connection set-up is not delayed. Prints
`listening on HOST:PORT` once it accepts connections (--listen-port 0: the port
the system chose).
"""

import argparse
import asyncio
import contextlib

CHUNK = 65536


async def pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Copy `reader` to `writer`, each chunk `delay` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    sender = asyncio.create_task(deliver(queue, writer))
    try:
        while chunk := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay, chunk))
        queue.put_nowait((loop.time() + delay, b""))  # end of stream
        await sender
    except OSError:
        writer.transport.abort()  # the other direction sees it and ends too
    finally:
        sender.cancel()


async def deliver(
    queue: "asyncio.Queue[tuple[float, bytes]]", writer: asyncio.StreamWriter
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due, chunk = await queue.get()
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        if not chunk:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(chunk)
        await writer.drain()


async def relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    *,
    target: tuple[str, int],
    delay: float,
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.transport.abort()
        return
    try:
        await asyncio.gather(
            pipe(client_reader, server_writer, delay),
            pipe(server_reader, client_writer, delay),
        )
    finally:
        client_writer.close()
        server_writer.close()


async def serve(
    *, port: int, target: tuple[str, int], delay_ms: float, host: str = "127.0.0.1"
) -> None:
    async def on_connect(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await relay(reader, writer, target=target, delay=delay_ms / 1000)

    server = await asyncio.start_server(on_connect, host, port)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    async with server:
        await server.serve_forever()


def parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free one")
    parser.add_argument("--target", type=parse_target, default="127.0.0.1:5432")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="each way")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(port=args.listen_port, target=args.target, delay_ms=args.delay_ms)
        )


if __name__ == "__main__":
    main()
