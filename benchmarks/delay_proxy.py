"""A TCP proxy on loopback that delays every byte by a fixed time each way, as a link to a
distant region does, without limiting throughput: what a benchmark puts between a client and
the local service to simulate a round trip. Benchmark-only: the product has no such thing.

    with DelayProxy("127.0.0.1", 8080, round_trip_ms=20) as proxy:
        ...  # talk to http://127.0.0.1:{proxy.port}
"""

from __future__ import annotations

import asyncio
import threading


class DelayProxy:
    def __init__(self, host: str, port: int, *, round_trip_ms: float):
        self.target = (host, port)
        self.one_way = round_trip_ms / 2000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _connection(self, client_reader, client_writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(client_reader, upstream_writer),
                             self._pipe(upstream_reader, client_writer), return_exceptions=True)

    async def _pipe(self, reader, writer) -> None:
        """Read as fast as data comes; write each chunk one-way-delay after it was read."""
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, chunk = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(chunk)
                await writer.drain()
            writer.close()

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(1 << 16):
                queue.put_nowait((loop.time() + self.one_way, chunk))
        finally:
            queue.put_nowait(None)
            await delivering
