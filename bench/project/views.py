"""The views superserver serves: a websocket view reads
``request.environ['wsgi.websocket']`` as the README shows."""
from contextlib import suppress

from django.http import HttpResponse

from extensions.decorators import require_websocket
from extensions.exceptions import ConnectionClosed
from extensions.pubsub import forward, publish

#: The websockets open on ``broadcast``: the set a hand-written fan-out keeps.
LISTENERS = set()

#: The channel ``broadcast_pubsub`` subscribes to.
CHANNEL = 'broadcast'


def hello(request):
    return HttpResponse('Hello, world')


@require_websocket
def echo(request):
    websocket = request.environ['wsgi.websocket']
    for message in websocket:
        websocket.send(message)


@require_websocket
def broadcast(request):
    """What one client sends goes to every client, by a loop of ``send``."""
    websocket = request.environ['wsgi.websocket']
    # Registered before the handshake is answered: an open client is a listener.
    LISTENERS.add(websocket)
    try:
        for message in websocket:
            for listener in list(LISTENERS):
                with suppress(ConnectionClosed):   # it left meanwhile
                    listener.send(message)
    finally:
        LISTENERS.discard(websocket)


@require_websocket
def broadcast_pubsub(request):
    """What one client sends goes to every client, through ``extensions.pubsub``."""
    websocket = request.environ['wsgi.websocket']
    with forward(websocket, CHANNEL):
        for message in websocket:
            publish(CHANNEL, message)
