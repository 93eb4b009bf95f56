"""gevent-websocket as its README serves: a bare WSGI application on
``gevent.pywsgi.WSGIServer`` with ``geventwebsocket``'s handler."""
import sys
from contextlib import suppress

from gevent.pywsgi import WSGIServer
from geventwebsocket.exceptions import WebSocketError
from geventwebsocket.handler import WebSocketHandler

LISTENERS = set()


def echo(websocket):
    while (message := websocket.receive()) is not None:
        websocket.send(message)


def broadcast(websocket):
    """What one client sends goes to every client, by a loop of ``send``."""
    LISTENERS.add(websocket)
    try:
        while (message := websocket.receive()) is not None:
            for listener in list(LISTENERS):
                with suppress(WebSocketError):   # it left meanwhile
                    listener.send(message)
    finally:
        LISTENERS.discard(websocket)


ROUTES = {'/echo': echo, '/broadcast': broadcast}


def application(environ, start_response):
    websocket = environ.get('wsgi.websocket')
    route = ROUTES.get(environ['PATH_INFO'])
    if websocket is None or route is None:
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'Not found\n']
    route(websocket)
    return []


if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), application,
               handler_class=WebSocketHandler).serve_forever()
