"""python-websockets' asyncio server, as its documentation writes an echo and a broadcast."""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

LISTENERS = set()


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def fan_out(websocket):
    """What one client sends goes to every client, by ``websockets.broadcast``."""
    LISTENERS.add(websocket)
    try:
        async for message in websocket:
            broadcast(LISTENERS, message)
    finally:
        LISTENERS.discard(websocket)


ROUTES = {'/echo': echo, '/broadcast': fan_out}


async def handler(websocket):
    await ROUTES[websocket.request.path](websocket)


async def main(port):
    async with serve(handler, '127.0.0.1', port) as server:
        await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
