import logging
import os
from contextlib import nullcontext

import gevent
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db import connections, transaction
from django.http import HttpResponse, HttpResponseForbidden, JsonResponse
from gevent import monkey
from django.views.decorators.csrf import csrf_exempt

from extensions import offload, sse
from extensions.decorators import require_websocket
from extensions.pubsub import PublishError, forward, group_channel, publish, subscribe

#: The database connection of every websocket view that used one, kept to check it closed.
WEBSOCKET_CONNECTIONS = []

#: time.sleep as it was before gevent patched it: it blocks the whole event loop.
blocking_sleep = monkey.get_original('time', 'sleep')

logger = logging.getLogger('tests.project')

#: What ``slow`` logs once it runs: the request is in flight.
SLOW_REQUEST = 'slow request under way:'

#: Requests of ``offloaded`` whose blocking call runs in its thread now.
offloading = 0


@csrf_exempt
def plain(request):
    return JsonResponse({
        'method': request.method,
        'body': request.body.decode(),
        'websocket': 'wsgi.websocket' in request.environ,
        'server': type(request.environ.get('wsgi.server')).__name__,
    })


def slow(request):
    """Answers after ``seconds``: an in-flight request for shutdown tests, which wait
    for its line in the server's output (``SLOW_REQUEST``) before they stop the server."""
    seconds = float(request.GET.get('seconds', 1))
    logger.info('%s %s s', SLOW_REQUEST, seconds)
    gevent.sleep(seconds)
    return HttpResponse('slept')


def process(request):
    """Which process served: the pid, and the client address it saw."""
    return JsonResponse({'pid': os.getpid(), 'remote_addr': request.META['REMOTE_ADDR'],
                         'secure': request.is_secure()})


@require_websocket
def process_socket(request):
    """The pid and client address of the process serving the websocket, then an echo;
    with ``?room=name``, what it receives is published to the room instead."""
    websocket = request.environ['wsgi.websocket']
    room = request.GET.get('room')
    with forward(websocket, group_channel(room)) if room else nullcontext():
        websocket.send('%d %s' % (os.getpid(), request.META['REMOTE_ADDR']))
        for message in websocket:
            if room:
                publish(group_channel(room), message)
            else:
                websocket.send(message)


def plain_boom(request):
    secret_local = 'visible in the debugger'  # noqa: F841
    raise ZeroDivisionError('boom in a plain view')


def blocks(request):
    blocking_sleep(0.3)   # the blocking detector must name this line
    return HttpResponse('done blocking')


def offloaded(request):
    """The blocking sleep of ``blocks``, run in a thread: the loop goes on meanwhile."""
    global offloading
    offloading += 1
    try:
        offload(blocking_sleep, float(request.GET.get('seconds', 1)))
    finally:
        offloading -= 1
    return HttpResponse('done in a thread')


def offloading_now(request):
    """How many ``offloaded`` calls run in their threads while this request is served."""
    return JsonResponse({'offloading': offloading})


def user_count(request):
    return HttpResponse(str(User.objects.count()))


def database_connections(request):
    return JsonResponse({'open': sum(c.connection is not None for c in WEBSOCKET_CONNECTIONS)})


@require_websocket
def echo(request):
    websocket = request.environ['wsgi.websocket']
    for message in websocket:
        websocket.send(message)


@require_websocket
def drops_first_message(request):
    """A broken echo: the Autobahn checker must catch it."""
    websocket = request.environ['wsgi.websocket']
    websocket.receive()
    for message in websocket:
        websocket.send(message)


@require_websocket(max_message_size=1000)
def small_echo(request):
    echo.__wrapped__(request)


@login_required
@require_websocket
def whoami(request):
    request.environ['wsgi.websocket'].send(request.user.get_username())


@require_websocket
def boom(request):
    websocket = request.environ['wsgi.websocket']
    message = websocket.receive()   # noqa: F841 - shown in the traceback's locals
    raise RuntimeError('boom in a websocket view')


@require_websocket
def boom_before_accepting(request):
    raise RuntimeError('boom before accepting')


@require_websocket(subprotocols=['chat.v2', 'chat.v1'])
def versioned_chat(request):
    """Says which of its two subprotocols was agreed, then echoes; with ``?closed``, it
    answers 403 instead, as a view does after a check of its own."""
    if 'closed' in request.GET:
        return HttpResponseForbidden('this room is closed\n')
    websocket = request.environ['wsgi.websocket']
    websocket.send(websocket.subprotocol or 'none')
    for message in websocket:
        websocket.send(message)


@require_websocket
def returns(request):
    request.environ['wsgi.websocket'].send('bye')


@require_websocket
def subprotocol(request):
    websocket = request.environ['wsgi.websocket']
    websocket.accept(websocket.subprotocols[-1] if websocket.subprotocols else None)
    websocket.send(websocket.subprotocol or '')
    websocket.receive()


@require_websocket
def two_senders(request):
    """Two greenlets send at once; the client checks every frame arrives whole."""
    websocket = request.environ['wsgi.websocket']
    count, size = int(request.GET['count']), int(request.GET['size'])

    def send_all(name):
        for i in range(count):
            websocket.send('%s:%d:' % (name, i) + name * size)

    gevent.joinall([gevent.spawn(send_all, 'a'), gevent.spawn(send_all, 'b')], raise_error=True)
    websocket.receive()


@require_websocket
def uses_database(request):
    """Queries, waits (its connection released meanwhile), then queries and waits
    inside a transaction (its connection kept for it)."""
    websocket = request.environ['wsgi.websocket']
    WEBSOCKET_CONNECTIONS.append(connections['default'])
    websocket.send(str(User.objects.count()))
    websocket.receive()
    with transaction.atomic():
        websocket.send(str(User.objects.count()))
        websocket.receive()


@require_websocket
def user_names(request):
    """Makes a user of each name it receives and answers with every user's name."""
    websocket = request.environ['wsgi.websocket']
    for name in websocket:
        User.objects.get_or_create(username=name)
        websocket.send(','.join(User.objects.order_by('username')
                                .values_list('username', flat=True)))


@require_websocket
def in_transaction(request):
    """Holds a database connection, inside a transaction, until the client closes."""
    websocket = request.environ['wsgi.websocket']
    websocket.accept()
    with transaction.atomic():
        websocket.send(str(User.objects.count()))
        websocket.receive()


@require_websocket
def send_after_close(request):
    """Sends after the client left: ConnectionClosed escapes, as in a careless echo loop."""
    websocket = request.environ['wsgi.websocket']
    websocket.receive()   # None: the client closed
    websocket.send('nobody listens')


@require_websocket
def room(request, name):
    """Everything published on the group goes to the socket; what it sends is published."""
    websocket = request.environ['wsgi.websocket']
    with forward(websocket, group_channel(name)):
        websocket.send('subscribed')   # the client may count on the subscription now
        for message in websocket:
            publish(group_channel(name), message)


@csrf_exempt
def publish_to_group(request, name):
    """The body is published as text; with ``?binary``, as bytes."""
    message = request.body if 'binary' in request.GET else request.body.decode()
    try:
        publish(group_channel(name), message)
    except PublishError as error:
        return HttpResponse(str(error), status=503, content_type='text/plain')
    return HttpResponse(status=204)


def ticks(request):
    """Numbered events; a reconnecting client resumes after the last id it saw."""
    after = int(sse.last_event_id(request) or 0)
    interval = float(request.GET.get('interval', 0.05))

    def numbered():
        for n in range(after + 1, after + 1 + int(request.GET.get('count', 1000))):
            yield sse.Event('tick %d' % n, id=n)
            gevent.sleep(interval)

    return sse.stream(numbered(), heartbeat=float(request.GET.get('heartbeat', 15)),
                      retry=500)


def process_events(request):
    """An endless stream whose first event is the pid of the process serving it."""
    def events():
        yield sse.Event(str(os.getpid()))
        while True:
            gevent.sleep(0.2)
            yield sse.Event('tick')
    return sse.stream(events())


def group_events(request, name):
    return sse.stream(subscribe(group_channel(name)),
                      heartbeat=float(request.GET.get('heartbeat', 15)))
