"""Rooms with history: a websocket that resumes from ``?since=``, an event stream that
resumes from Last-Event-ID, and a publisher that answers with the position."""
import json

import gevent
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from extensions import sse
from extensions.decorators import require_websocket
from extensions.pubsub import PublishError, forward, group_channel, publish, subscribe


@require_websocket
def room(request, name):
    """Every message as ``{"channel", "position", "data"}``, those after ``?since=`` first;
    then ``{"subscribed": true, "recovered": ...}``; what the client sends is published."""
    websocket = request.environ['wsgi.websocket']
    channel = group_channel(name)
    with forward(websocket, channel, since=request.GET.get('since'),
                 positions=True) as subscription:
        websocket.send(json.dumps({'subscribed': True, 'recovered': subscription.recovered}))
        for message in websocket:
            publish(channel, message)


def events(request, name):
    """The room as Server-Sent Events, resumed after the browser's Last-Event-ID."""
    subscription = subscribe(group_channel(name), since=sse.last_event_id(request))
    return sse.stream(subscription, heartbeat=float(request.GET.get('heartbeat', 15)))


@csrf_exempt
def publish_to_room(request, name):
    """The body is published as text; the answer is ``{"position": ...}``."""
    try:
        position = publish(group_channel(name), request.body.decode())
    except PublishError as error:
        return HttpResponse(str(error), status=503, content_type='text/plain')
    return JsonResponse({'position': position})


def recover_at_once(request, name):
    """``?readers=`` subscriptions recovering after ``?since=`` at the same moment, in
    greenlets of this request: what each read (``?count=`` messages or a reset)."""
    channel, count = group_channel(name), int(request.GET['count'])

    def recover():
        with subscribe(channel, since=request.GET['since']) as subscription:
            deliveries = [subscription.get(timeout=30) for _ in range(count)]
            return [None if delivery.reset else delivery.message for delivery in deliveries]

    readers = [gevent.spawn(recover) for _ in range(int(request.GET['readers']))]
    gevent.joinall(readers, raise_error=True)
    return JsonResponse({'read': [reader.value for reader in readers]})
