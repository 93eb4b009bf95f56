"""Publish/subscribe: fan messages out to websockets and SSE streams, across processes.

    from extensions.pubsub import forward, group_channel, publish, subscribe

    publish(group_channel('lobby'), {'text': 'hi'})  # anywhere: a view, a signal, a command
    with forward(ws, group_channel('lobby')):         # to a websocket while the block runs
        for message in ws: ...
    with subscribe('news') as subscription:           # or read them yourself
        for channel, message in subscription: ...

Messages are ``str`` (text), ``bytes`` (binary) or anything JSON can encode (sent as
JSON text). The broker is chosen by the ``SUPERSERVER_BROKER`` setting:

- ``memory://`` (the default): this process only.
- ``redis://host:port/db``: every process and host using that Redis. One Redis
  connection per process carries all its subscriptions; if Redis goes away the server
  keeps serving, publishers get ``PublishError`` after a short retry, and subscriptions
  are made again when Redis is back (the log says both).
"""
import json
import logging
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import gevent
from gevent.event import Event
from gevent.queue import Empty, Full, Queue

from .exceptions import ConnectionClosed, WebSocketError
from .protocol import SharedMessage

__all__ = ['publish', 'subscribe', 'forward', 'get_broker', 'group_channel', 'user_channel',
           'session_channel', 'PublishError', 'SubscriberTooSlow', 'MemoryBroker', 'RedisBroker']

logger = logging.getLogger('superserver.pubsub')


class PublishError(WebSocketError):
    """The broker could not take the message (Redis unreachable)."""


class SubscriberTooSlow(WebSocketError):
    """A subscription fell ``max_pending`` messages behind; it was ended, not thinned."""


# -- channel names -------------------------------------------------------------------------

def group_channel(name):
    """Everyone who joined the group ``name``: a chat room, a dashboard."""
    return 'group:%s' % name


def user_channel(user):
    """Every tab of one user (a user object or its primary key)."""
    return 'user:%s' % getattr(user, 'pk', user)


def session_channel(session):
    """Every tab of one browser session (a request, a session or a session key)."""
    session = getattr(session, 'session', session)
    return 'session:%s' % getattr(session, 'session_key', session)


def _encode(message):
    """(is_text, payload) for a message: str, bytes, or JSON-encodable."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return False, bytes(message)
    if not isinstance(message, str):
        message = json.dumps(message)
    return True, message


# Over Redis a text message is its UTF-8 bytes as they are, so any Redis client can
# publish to superserver's subscribers (``redis-cli publish group:lobby hi``, an old
# django-websocket-redis publisher). A binary message starts with 0xFF, a byte that
# never occurs in UTF-8.
_BINARY = b'\xff'


def _to_wire(is_text, payload):
    return payload.encode('utf-8') if is_text else _BINARY + payload


def _from_wire(data):
    """The message of a Redis payload: text if it is UTF-8, else bytes."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return data[1:] if data[:1] == _BINARY else data


# -- subscriptions -------------------------------------------------------------------------

class Subscription:
    """Messages published on some channels, in order, for as long as it is open.

    Iterate for ``(channel, message)`` pairs; ``get(timeout)`` for one. Closing it (or
    leaving its ``with`` block) unsubscribes.
    """

    def __init__(self, broker, channels, max_pending):
        self.broker = broker
        self.channels = frozenset(channels)
        self._queue = Queue(max_pending)
        self._too_slow = False
        self.closed = False

    def deliver(self, channel, message, shared):
        """Called by the broker for each message; never blocks it. ``shared`` is the
        message's ``protocol.SharedMessage``: its frames are made once for every
        subscriber that can share them."""
        try:
            self._queue.put_nowait((channel, message))
        except Full:
            # Too far behind: end the subscription rather than skip messages.
            self._too_slow = self.closed = True
            self.broker._detach(self)
            self._queue.queue.clear()
            self._queue.put_nowait(None)

    def get(self, timeout=None):
        """The next ``(channel, message)``, or None once closed.

        Raises ``TimeoutError`` after ``timeout`` seconds without a message, and
        ``SubscriberTooSlow`` if the subscription fell too far behind.
        """
        if self.closed and self._queue.empty():
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except Empty:
            raise TimeoutError('no message within %s s' % timeout) from None
        if item is None and self._too_slow:
            raise SubscriberTooSlow('fell %d messages behind on %s'
                                    % (self._queue.maxsize, ', '.join(sorted(self.channels))))
        return item

    def __iter__(self):
        while (item := self.get()) is not None:
            yield item

    def close(self):
        """Unsubscribe; a reader waiting in ``get`` gets None."""
        if self.closed:
            return
        self.closed = True
        self.broker._detach(self)
        if not self._queue.full():
            self._queue.put_nowait(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Forwarding(Subscription):
    """A subscription whose messages go straight to a websocket as they are published:
    no queue, no greenlet, each frame made once for all the sockets that can share it
    (uncompressed, or compressed alike without context takeover). A socket closed
    meanwhile ends it; one too far behind is closed by ``send_shared_nowait`` (1013)."""

    def __init__(self, broker, channels, max_pending, websocket):
        super().__init__(broker, channels, max_pending)
        self.websocket = websocket

    def deliver(self, channel, message, shared):
        try:
            self.websocket.send_shared_nowait(shared)
        except ConnectionClosed:
            self.close()


class Broker:
    """Local bookkeeping shared by the backends: who in this process listens to what."""

    max_pending = 1000

    def __init__(self, max_pending=None):
        if max_pending is not None:
            self.max_pending = max_pending
        self._local = {}   # channel -> set of Subscription

    def subscribe(self, *channels, websocket=None):
        """A ``Subscription``; with ``websocket``, one forwarding to it."""
        if not channels:
            raise ValueError('subscribe to at least one channel')
        if websocket is None:
            subscription = Subscription(self, channels, self.max_pending)
        else:
            subscription = Forwarding(self, channels, self.max_pending, websocket)
        for channel in subscription.channels:
            self._local.setdefault(channel, set()).add(subscription)
        self._channels_changed()
        return subscription

    def _detach(self, subscription):
        for channel in subscription.channels:
            subscribers = self._local.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._local[channel]
        self._channels_changed()

    def _channels_changed(self):
        """Hook: the set of channels with local subscribers may have changed."""

    def _dispatch(self, channel, message):
        shared = SharedMessage(message)
        for subscription in list(self._local.get(channel, ())):
            subscription.deliver(channel, message, shared)

    def publish(self, channel, message):
        raise NotImplementedError


class MemoryBroker(Broker):
    """Subscribers of this process only: the embedded default."""

    def publish(self, channel, message):
        is_text, payload = _encode(message)
        self._dispatch(channel, payload)


class RedisBroker(Broker):
    """Redis pub/sub: one connection per process for every subscription, re-made after
    an outage; publishing retries briefly, then raises ``PublishError``."""

    POLL = 0.05                # seconds between looks at the wanted channels
    RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1, 2, 5)
    PUBLISH_ATTEMPTS = 3
    SUBSCRIBE_WAIT = 5         # seconds subscribe() waits for Redis to confirm

    def __init__(self, url, max_pending=None):
        super().__init__(max_pending)
        import redis   # only projects that use Redis need redis-py
        self._redis_errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        parts = urlsplit(url)
        self.url = '%s://%s:%s%s' % (parts.scheme, parts.hostname, parts.port or 6379,
                                     parts.path)   # for the log: no password
        self._client = redis.Redis.from_url(url, socket_connect_timeout=2)
        self._confirmed = set()     # channels Redis confirmed on the current connection
        self._confirmation = Event()
        self._changed = Event()
        self._listener = gevent.spawn(self._listen)

    def subscribe(self, *channels, websocket=None):
        subscription = super().subscribe(*channels, websocket=websocket)
        deadline = time.monotonic() + self.SUBSCRIBE_WAIT
        while not subscription.channels <= self._confirmed:
            self._confirmation.clear()
            if not self._confirmation.wait(max(0, deadline - time.monotonic())):
                logger.warning('Redis at %s has not confirmed %s yet; they will be subscribed '
                               'when it answers', self.url, ', '.join(subscription.channels))
                break
        return subscription

    def _channels_changed(self):
        self._changed.set()

    def publish(self, channel, message):
        data = _to_wire(*_encode(message))
        for attempt in range(self.PUBLISH_ATTEMPTS):
            try:
                return self._client.publish(channel, data)
            except self._redis_errors as error:
                last_error = error
                gevent.sleep(self.RECONNECT_DELAYS[attempt])
        raise PublishError('could not publish to %r: Redis at %s is unreachable (%s)'
                           % (channel, self.url, last_error))

    def _listen(self):
        """The one greenlet that owns the subscription connection."""
        failures = 0
        while True:
            pubsub = self._client.pubsub()
            try:
                self._serve(pubsub, reconnected=failures > 0)
            except self._redis_errors as error:
                if failures == 0:
                    logger.warning('Redis at %s went away (%s); subscriptions will be made '
                                   'again when it is back', self.url, error)
                delay = self.RECONNECT_DELAYS[min(failures, len(self.RECONNECT_DELAYS) - 1)]
                failures += 1
                self._confirmed.clear()
                gevent.sleep(delay)
            finally:
                pubsub.close()

    def _serve(self, pubsub, reconnected):
        pubsub.ping()   # connect now, so an outage shows as an error here
        if reconnected:
            logger.warning('Redis at %s is back; subscribing again to %d channel(s)',
                           self.url, len(self._local))
        subscribed = set()
        self._changed.set()
        while True:
            if self._changed.is_set():
                self._changed.clear()
                wanted = set(self._local)
                if wanted - subscribed:
                    pubsub.subscribe(*(wanted - subscribed))
                if subscribed - wanted:
                    pubsub.unsubscribe(*(subscribed - wanted))
                    self._confirmed -= subscribed - wanted
                subscribed = wanted
            message = pubsub.get_message(timeout=self.POLL)
            if message is None or message['type'] not in ('message', 'subscribe'):
                continue   # nothing yet, or a pong or an unsubscribe confirmation
            channel = message['channel'].decode('utf-8')
            if message['type'] == 'message':
                self._dispatch(channel, _from_wire(message['data']))
            else:
                self._confirmed.add(channel)
                self._confirmation.set()


# -- the process's broker ------------------------------------------------------------------

_broker = None


def get_broker():
    """The broker of this process, made on first use from ``SUPERSERVER_BROKER``."""
    global _broker
    if _broker is None:
        from django.conf import settings
        url = getattr(settings, 'SUPERSERVER_BROKER', 'memory://')
        if url.startswith('memory://'):
            _broker = MemoryBroker()
        elif url.startswith(('redis://', 'rediss://', 'unix://')):
            _broker = RedisBroker(url)
        else:
            raise ValueError('SUPERSERVER_BROKER %r: use memory:// or redis://' % url)
    return _broker


def publish(channel, message):
    """Send ``message`` to every subscriber of ``channel``, in every process."""
    get_broker().publish(channel, message)


def subscribe(*channels):
    """A ``Subscription`` to ``channels``; close it (or use ``with``) to leave."""
    return get_broker().subscribe(*channels)


@contextmanager
def forward(websocket, *channels):
    """Send every message published on ``channels`` to ``websocket`` during the block.

    Each message is written as it is published, encoded once for all its subscribers.
    A websocket whose client leaves more than ``websocket.MAX_BROADCAST_BACKLOG`` bytes
    unread is closed with 1013 (try again later).
    """
    websocket.accept()
    with get_broker().subscribe(*channels, websocket=websocket) as subscription:
        yield subscription
