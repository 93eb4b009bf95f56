"""Server-Sent Events: a ``text/event-stream`` response fed by a generator or channels.

    from extensions import sse

    def clock(request):
        resume_after = sse.last_event_id(request)   # set when the browser reconnects
        def ticks():
            while True:
                yield sse.Event(time.ctime(), id=int(time.time()))
                gevent.sleep(1)
        return sse.stream(ticks())

    def news(request):
        return sse.stream(subscribe('news'))      # every message published on 'news'

    def chat(request):                            # a channel with history: nothing missed
        return sse.stream(subscribe('group:chat', since=sse.last_event_id(request)))

A stream fed by a subscription sends each message's position (on a channel with
history) as the event id, so a browser that reconnects sends it back as Last-Event-ID and
the messages it missed come first; a None ``since`` (the first connection) is live only.
If they cannot all be recovered, an event named ``reset`` (data: the channel, no id)
comes first instead: the page should reload its state.

While the source is quiet, a comment line goes out every ``heartbeat`` seconds, so that
proxies keep the stream open and a vanished client is noticed. A graceful shutdown
(``end_streams``) ends every stream cleanly, and the browser reconnects.
"""
import logging
from dataclasses import dataclass

import gevent
from django.http import StreamingHttpResponse
from gevent.lock import Semaphore
from gevent.queue import Empty, Queue

from .pubsub import Delivery, Subscription, SubscriberTooSlow

__all__ = ['Event', 'stream', 'last_event_id', 'end_streams']

logger = logging.getLogger('superserver.sse')

_END = object()        # queued after a stream's last event
_open_streams = set()  # the queue of every stream being sent
#: Events taken from the source ahead of the client: a slow client slows its source
#: (a subscription then falls behind and ends, and the browser reconnects).
_AHEAD = 16


@dataclass(frozen=True)
class Event:
    """One event: ``data`` (str; several lines allowed), optional ``event`` name, ``id``
    (sent back by the browser as Last-Event-ID when it reconnects) and ``retry`` (ms)."""
    data: str
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None

    def encode(self):
        lines = []
        if self.event is not None:
            lines.append('event: %s' % _one_line(self.event))
        if self.id is not None:
            lines.append('id: %s' % _one_line(str(self.id)))
        if self.retry is not None:
            lines.append('retry: %d' % self.retry)
        lines += ['data: %s' % line for line in str(self.data).split('\n')]
        return ('\n'.join(lines) + '\n\n').encode('utf-8')


def _one_line(value):
    if '\n' in value or '\r' in value:
        raise ValueError('an event name or id cannot hold a line break: %r' % value)
    return value


def last_event_id(request):
    """The id of the last event the browser saw, when it reconnects; else None."""
    return request.headers.get('Last-Event-ID') or None


def _as_event(item):
    if isinstance(item, Event):
        return item
    if isinstance(item, Delivery):   # from a Subscription
        if item.reset:
            return Event(item.channel, event='reset')
        return Event(_text(item.message), id=item.position)
    return Event(_text(item))


def _text(message):
    return message.decode('utf-8') if isinstance(message, bytes) else message


def _events(source, heartbeat, retry):
    """The response body: events from ``source`` as they come, comments in between."""
    queue, room = Queue(), Semaphore(_AHEAD)

    def produce():
        try:
            for item in source:
                room.acquire()
                queue.put(_as_event(item))
        except SubscriberTooSlow as error:
            logger.warning('ending an event stream: %s', error)
        finally:
            queue.put(_END)

    producer = gevent.spawn(produce)
    _open_streams.add(queue)
    try:
        if retry is not None:
            yield b'retry: %d\n\n' % retry
        yield b': stream open\n\n'   # the headers and a first byte go out at once
        while True:
            try:
                event = queue.get(timeout=heartbeat)
            except Empty:
                yield b': keep-alive\n\n'
                continue
            if event is _END:
                return
            room.release()
            yield event.encode()
    finally:
        _open_streams.discard(queue)
        # The client went away (or the source ended): stop the source too.
        if isinstance(source, Subscription):
            source.close()
        producer.kill()


def end_streams():
    """End every stream of this process after the events already queued: their
    responses finish cleanly and browsers reconnect (to another process)."""
    for queue in list(_open_streams):
        queue.put(_END)


def stream(source, *, heartbeat=15, retry=None):
    """A ``StreamingHttpResponse`` of Server-Sent Events.

    ``source`` yields ``Event`` objects or plain strings, or is a ``Subscription``
    whose messages become events. ``retry`` tells the browser how many milliseconds to
    wait before reconnecting.
    """
    response = StreamingHttpResponse(_events(source, heartbeat, retry),
                                     content_type='text/event-stream; charset=utf-8')
    response['Cache-Control'] = 'no-cache'
    response['X-Accel-Buffering'] = 'no'   # nginx: pass each event on at once
    return response
