"""A picows server on uvloop that does nothing but echo and fan out frames: about the
fastest server Python has, so what the load generator gets from it is its own ceiling."""
import asyncio
import sys

import uvloop
from picows import WSListener, WSMsgType, ws_create_server

LISTENERS = set()


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type != WSMsgType.PONG:
            transport.send(frame.msg_type, frame.get_payload_as_bytes(), frame.fin)


class Broadcast(WSListener):
    """Each frame one client sends goes to every client."""

    def on_ws_connected(self, transport):
        LISTENERS.add(transport)

    def on_ws_disconnected(self, transport):
        LISTENERS.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type != WSMsgType.PONG:
            payload = frame.get_payload_as_bytes()
            for listener in LISTENERS:
                listener.send(frame.msg_type, payload, frame.fin)


ROUTES = {b'/echo': Echo, b'/broadcast': Broadcast}


def route(request):
    listener = ROUTES.get(request.path)
    return listener() if listener else None   # None: 404


async def main(port):
    server = await ws_create_server(route, '127.0.0.1', port)
    await server.serve_forever()


if __name__ == '__main__':
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(int(sys.argv[1])))
