#!/usr/bin/env python3
"""TCP proxy that adds latency: delayproxy.py LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS

Every chunk read from one side is written to the other side RTT_MS/2 ms after
it was received (so a request/response round trip gains RTT_MS).  Chunks of
one direction keep their order; EOF is forwarded (half-close) after the same
delay.  Used by the crebuild benchmarks (tests/integration/lib/host.sh:
host_delay_proxy)."""

import asyncio
import sys


def split_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


async def pump(reader, writer, delay):
    """Copy reader -> writer, delaying every chunk by `delay` seconds."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def sender():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()


async def handle(client_r, client_w, target, delay):
    try:
        up_r, up_w = await asyncio.open_connection(*target)
    except OSError as e:
        print(f"delayproxy: cannot connect to {target}: {e}", file=sys.stderr)
        client_w.close()
        return
    try:
        await asyncio.gather(pump(client_r, up_w, delay), pump(up_r, client_w, delay))
    finally:
        for w in (up_w, client_w):
            w.close()


async def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    listen, target = split_addr(sys.argv[1]), split_addr(sys.argv[2])
    delay = float(sys.argv[3]) / 2000.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay), *listen, reuse_address=True)
    print(f"delayproxy: {sys.argv[1]} -> {sys.argv[2]}, +{sys.argv[3]} ms RTT", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
