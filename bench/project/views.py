"""The views superserver serves: a websocket view reads
``request.environ['wsgi.websocket']`` as the README shows."""
import time
from contextlib import suppress

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from extensions.decorators import require_websocket
from extensions.exceptions import ConnectionClosed
from extensions.presence import join, presence
from extensions.pubsub import forward, publish

#: The websockets open on ``broadcast``: the set a hand-written fan-out keeps.
LISTENERS = set()

#: The channel ``broadcast_pubsub`` subscribes to.
CHANNEL = 'broadcast'

#: The channel with history of python -m bench.fanout's R1, and the one of P1's presence.
HISTORY, PRESENT = 'recover', 'present'


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


@require_websocket
def recover(request):
    """R1: the channel with history, with positions, after the position ``?since=``."""
    websocket = request.environ['wsgi.websocket']
    with forward(websocket, HISTORY, since=request.GET.get('since'), positions=True):
        for _ in websocket:
            pass


@csrf_exempt
def publish_history(request):
    """R1: publish ``?count=`` messages, 'message 0' and on (or ``?text=``)."""
    text = request.GET.get('text')
    for number in range(int(request.GET['count'])):
        publish(HISTORY, text or 'message %d' % number)
    return HttpResponse(status=204)


@require_websocket
def present(request):
    """P1: the socket counts in the channel's presence, as the member ``?member=``."""
    websocket = request.environ['wsgi.websocket']
    with join(PRESENT, request.GET['member']):
        for _ in websocket:
            pass


def presence_count(request):
    """P1: how many members and connections the channel has, and the query's time."""
    started = time.perf_counter()
    members = presence(PRESENT)
    query_ms = (time.perf_counter() - started) * 1000
    return JsonResponse({'members': len(members), 'connections': sum(members.values()),
                         'query_ms': query_ms})
