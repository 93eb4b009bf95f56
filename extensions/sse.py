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

While the source is quiet, a comment line goes out every ``heartbeat`` seconds, so that
proxies keep the stream open and a vanished client is noticed. A graceful shutdown
(``end_streams``) ends every stream cleanly, and the browser reconnects.
"""
from dataclasses import dataclass

import gevent
from django.http import StreamingHttpResponse
from gevent.queue import Empty, Queue

from .pubsub import Subscription

__all__ = ['Event', 'stream', 'last_event_id', 'end_streams']

_END = object()        # queued after a stream's last event
_open_streams = set()  # the queue of every stream being sent


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
    if isinstance(item, tuple):   # (channel, message) from a Subscription
        item = item[1]
    if isinstance(item, bytes):
        item = item.decode('utf-8')
    return Event(item)


def _events(source, heartbeat, retry):
    """The response body: events from ``source`` as they come, comments in between."""
    queue = Queue()

    def produce():
        try:
            for item in source:
                queue.put(_as_event(item))
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
