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

History and recovery. Channels that match a pattern of ``SUPERSERVER_CHANNEL_HISTORY``
(``extensions.history``) keep their recent messages, each with a position:
``publish`` returns it, and each ``Delivery`` carries it. ``subscribe(channel,
since=position)`` and ``forward(ws, channel, since=position)`` deliver every kept message
after ``position``, then the live ones, without gap or duplicate; ``since=BEGINNING``
asks for everything kept. If some were lost meanwhile (trimmed, expired, Redis lost its
data, an unknown position), the first item for that channel is a ``Delivery`` with
``reset`` True instead, followed by live messages only, and ``recovered`` is False.
Over Redis a subscription also catches up this way after a reconnection.
"""
import base64
import dataclasses
import json
import logging
import time
from collections import deque
from contextlib import contextmanager
from functools import cached_property, partial
from itertools import chain
from operator import itemgetter
from urllib.parse import urlsplit

import gevent
from gevent.event import Event
from gevent.queue import Empty, Queue

from .exceptions import ConnectionClosed, WebSocketError
from .history import (BEGINNING, HistoryRules, MemoryHistory, Position, RedisHistory,
                      parse_position, recoverable)
from .protocol import SharedMessage
from .recovery import RecentPages

__all__ = ['publish', 'subscribe', 'forward', 'get_broker', 'group_channel', 'user_channel',
           'session_channel', 'Delivery', 'BEGINNING', 'PublishError', 'SubscriberTooSlow',
           'MemoryBroker', 'RedisBroker']

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
# never occurs in UTF-8. (On a history channel the payload carries its position first:
# ``history.RedisHistory.unwrap``.)
_BINARY = b'\xff'


def _to_wire(is_text, payload):
    return payload.encode('utf-8') if is_text else _BINARY + payload


def _from_wire(data):
    """The message of a Redis payload: text if it is UTF-8, else bytes."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return data[1:] if data[:1] == _BINARY else data


# -- what subscribers get --------------------------------------------------------------------

class Delivery(tuple):
    """One item of a subscription: the pair ``(channel, message)``, so ``for channel,
    message in subscription`` reads it, with ``position`` (None on a channel without
    history) and ``reset``: True for the item that says messages of ``channel`` were
    lost before the ones that follow (its message and position are None)."""

    position = None
    at = None   # position as a history.Position
    reset = False
    channel = property(itemgetter(0))
    message = property(itemgetter(1))

    def __new__(cls, channel, message, position=None):
        """``position``: a string of ours, or a ``history.Position``."""
        delivery = tuple.__new__(cls, (channel, message))
        if position is not None:
            if isinstance(position, Position):
                delivery.at, delivery.position = position, str(position)
            else:
                delivery.at, delivery.position = Position.parse(position), position
        return delivery

    @classmethod
    def lost(cls, channel):
        """The reset item of ``channel``."""
        delivery = tuple.__new__(cls, (channel, None))
        delivery.reset = True
        return delivery

    def __repr__(self):
        if self.reset:
            return 'Delivery(%r, reset=True)' % self.channel
        return 'Delivery(%r, %r, position=%r)' % (self.channel, self.message, self.position)

    @cached_property
    def _envelope(self):
        if self.reset:
            return json.dumps({'channel': self.channel, 'reset': True})
        message = self.message
        if isinstance(message, str):
            return json.dumps({'channel': self.channel, 'position': self.position,
                               'data': message})
        return json.dumps({'channel': self.channel, 'position': self.position,
                           'binary': base64.b64encode(message).decode('ascii')})

    def envelope(self):
        """The JSON text ``forward(..., positions=True)`` sends: ``{"channel",
        "position", "data"}``, ``"binary"`` (base64) instead of ``"data"`` for bytes,
        ``{"channel", "reset": true}`` for a reset. Made once: recoveries share their
        deliveries."""
        return self._envelope


class _Published:
    """A message as dispatched to this process's subscribers: its frames, in each form,
    are made on first use and shared by all of them (``protocol.SharedMessage``)."""

    __slots__ = ('delivery', '_plain', '_enveloped')

    def __init__(self, delivery):
        self.delivery = delivery
        self._plain = self._enveloped = None

    @property
    def plain(self):
        if self._plain is None:
            self._plain = SharedMessage(self.delivery.message)
        return self._plain

    @property
    def enveloped(self):
        if self._enveloped is None:
            self._enveloped = SharedMessage(self.delivery.envelope())
        return self._enveloped


class _Resync:
    """Queued for a subscription when Redis confirmed ``channel`` again after an outage:
    its history since the last delivered position comes here, between the messages that
    came before the outage and after it."""

    __slots__ = ('channel',)

    def __init__(self, channel):
        self.channel = channel


# -- subscriptions -------------------------------------------------------------------------

class _Subscriber:
    """What both kinds of subscription share: the channels, the broker's bookkeeping, and
    the position of the last message delivered on each channel with history."""

    def __init__(self, broker, channels, max_pending, since, cursors):
        self.broker = broker
        self.channels = frozenset(channels)
        self.max_pending = max_pending
        self.closed = False
        #: None if no ``since`` was given and nothing was lost; True once the messages
        #: after ``since`` were all found; False once a reset item was delivered.
        self.recovered = None
        self._since = since        # channel -> Position (None: unrecoverable)
        self._cursors = cursors    # history channel -> Position last delivered (None: unknown)
        self._started = False      # the initial recovery is done or under way
        self._subscribed_at = 0    # the broker's page tick once subscribed (or resubscribed)
        self._too_slow = False

    def _advance(self, delivery):
        """Note ``delivery`` as delivered; False if it was already (a live message that
        its history also brought)."""
        channel = delivery.channel
        if delivery.reset:
            self._cursors[channel] = None
            self.recovered = False
        elif delivery.at is not None:
            position = delivery.at
            cursor = self._cursors.get(channel)
            if cursor is not None and position.n <= cursor.n:
                return False
            self._cursors[channel] = position
        return True

    def close(self):
        """Unsubscribe."""
        if self.closed:
            return
        self.closed = True
        self.broker._detach(self)
        self._closed()

    def _closed(self):
        """Hook: what else ends with the subscription."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Subscription(_Subscriber):
    """Messages published on some channels, in order, for as long as it is open.

    Iterate for ``Delivery`` items (pairs ``(channel, message)``); ``get(timeout)`` for
    one. History asked for with ``since`` is read a page at a time as it is taken, before
    the live messages queued meanwhile. Closing it (or leaving its ``with`` block)
    unsubscribes.
    """

    def __init__(self, broker, channels, max_pending, since=None, cursors=None):
        super().__init__(broker, channels, max_pending, since or {}, cursors or {})
        self._queue = Queue()
        self._replays = deque()   # iterators of history to deliver before the queue

    def deliver(self, published):
        """Called by the broker for each message; never blocks it."""
        if self._queue.qsize() < self.max_pending:
            self._queue.put_nowait(published.delivery)
            return
        # Too far behind: end the subscription rather than skip messages.
        self._too_slow = True
        self._queue.queue.clear()
        self.close()

    def _start(self):
        """Read the first page of each history asked for: ``recovered`` is known now."""
        self._started = True
        if self._since:
            self.recovered = True
        for channel, position in self._since.items():
            replay = chain.from_iterable(
                self.broker._replay(channel, position, self._subscribed_at))
            first = next(replay, None)
            if first is not None:
                if first.reset:
                    self.recovered = False
                self._replays.append(chain((first,), replay))

    def _resync(self, channel):
        if not self.closed:
            self._queue.put_nowait(_Resync(channel))

    def get(self, timeout=None):
        """The next ``Delivery``, or None once closed.

        Raises ``TimeoutError`` after ``timeout`` seconds without a message, and
        ``SubscriberTooSlow`` if the subscription fell too far behind.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            delivery = self._replayed()
            if delivery is None:
                if self.closed and self._queue.empty():
                    return None
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    delivery = self._queue.get(timeout=left)
                except Empty:
                    raise TimeoutError('no message within %s s' % timeout) from None
                if delivery is None:
                    if self._too_slow:
                        raise SubscriberTooSlow('fell %d messages behind on %s' % (
                            self.max_pending, ', '.join(sorted(self.channels))))
                    return None
                if type(delivery) is _Resync:
                    channel = delivery.channel
                    self._replays.append(chain.from_iterable(self.broker._replay(
                        channel, self._cursors.get(channel), self._subscribed_at)))
                    continue
            if self._advance(delivery):
                return delivery

    def _replayed(self):
        """The next message of the history being delivered, if any."""
        while self._replays:
            delivery = next(self._replays[0], None)
            if delivery is not None:
                return delivery
            self._replays.popleft()
        return None

    def __iter__(self):
        while (item := self.get()) is not None:
            yield item

    def _closed(self):
        """A reader waiting in ``get`` gets None."""
        self._replays.clear()
        self._queue.put_nowait(None)


class Forwarding(_Subscriber):
    """A subscription whose messages go straight to a websocket as they are published:
    no queue, no greenlet, each frame made once for all the sockets that can share it
    (uncompressed, or compressed alike without context takeover). A socket closed
    meanwhile ends it; one too far behind is closed by ``send_shared_nowait`` (1013).

    History goes first, a page at a time in one write, with the socket's own
    flow-controlled ``send_many``: from the subscribing greenlet at the start, from a
    greenlet of its own after a Redis reconnection. Live messages are held meanwhile (at
    most ``max_pending``, or the socket is closed with 1013), then sent together, those
    the history brought skipped.
    ``positions``: every frame is ``Delivery.envelope()``, resets included.
    """

    def __init__(self, broker, channels, max_pending, websocket, positions=False, since=None,
                 cursors=None):
        super().__init__(broker, channels, max_pending, since or {}, cursors or {})
        self.websocket = websocket
        self.positions = positions
        self._stale = list(self._since)   # channels whose history must go out first
        self._held = deque() if self._stale else None   # None: live ones go out at once
        self._sender = None

    def deliver(self, published):
        if self._held is not None:
            if len(self._held) < self.max_pending:
                self._held.append(published)
            else:
                self._too_slow = True
                self.close()
            return
        # A message the history just brought may still arrive live after it: skipped.
        if published.delivery.position is not None and not self._advance(published.delivery):
            return
        try:
            self.websocket.send_shared_nowait(
                published.enveloped if self.positions else published.plain)
        except ConnectionClosed:
            self.close()

    def _start(self):
        """Send the history asked for, from the subscribing greenlet."""
        self._started = True
        if self._since:
            self.recovered = True
            self._send_history()

    def _resync(self, channel):
        if self.closed:
            return
        if channel not in self._stale:
            self._stale.append(channel)
        if self._held is None:
            self._held = deque()
            self._sender = gevent.spawn(self._send_history)

    def _send_history(self):
        """Send the history of the stale channels, then the live messages held meanwhile,
        then go back to sending them as they come."""
        try:
            while not self.closed:
                if self._stale:
                    channel = self._stale.pop(0)
                    for page in self.broker._replay(channel, self._cursors.get(channel),
                                                    self._subscribed_at):
                        if self.closed:
                            break
                        self._send(page)
                elif self._held:
                    held = [published.delivery for published in self._held]
                    self._held.clear()
                    self._send(held)
                else:
                    self._held = None
                    return
        except ConnectionClosed:
            self.close()
        if self._too_slow:
            logger.warning('%s: more than %d messages came while its history was sent, '
                           'closing', self.websocket, self.max_pending)
            self.websocket.close(1013, 'too slow for its subscriptions')

    def _send(self, deliveries):
        """Send those of ``deliveries`` not delivered yet, in one write."""
        positions = self.positions
        messages = [delivery.envelope() if positions else delivery.message
                    for delivery in deliveries
                    if self._advance(delivery) and (positions or not delivery.reset)]
        if messages:
            self.websocket.send_many(messages)

    def _closed(self):
        self._held = None
        # The view left the block: stop sending. (Too slow: the sender closes the socket.)
        if (self._sender is not None and self._sender is not gevent.getcurrent()
                and not self._too_slow):
            self._sender.kill(block=False)


# -- brokers ---------------------------------------------------------------------------------

class Broker:
    """Local bookkeeping shared by the backends: who in this process listens to what,
    and the recovery of history."""

    max_pending = 1000
    REPLAY_PAGE = 200   # history messages read at a time

    def __init__(self, max_pending=None, history=None):
        if max_pending is not None:
            self.max_pending = max_pending
        #: The ``history.HistoryRules``: which channels keep how much.
        self.history = history if isinstance(history, HistoryRules) else HistoryRules(history)
        self._local = {}   # channel -> set of subscriptions
        self._pages = RecentPages()

    def subscribe(self, *channels, since=None, websocket=None, positions=False):
        """A ``Subscription``; with ``websocket``, a ``Forwarding`` to it."""
        if not channels:
            raise ValueError('subscribe to at least one channel')
        since = self._since(channels, since)
        cursors = {channel: since[channel] if channel in since else self._origin(channel)
                   for channel in set(channels) if self.history.policy_for(channel)}
        if websocket is None:
            subscription = Subscription(self, channels, self.max_pending, since, cursors)
        else:
            subscription = Forwarding(self, channels, self.max_pending, websocket, positions,
                                      since, cursors)
        for channel in subscription.channels:
            self._local.setdefault(channel, set()).add(subscription)
        self._channels_changed()
        self._wait_subscribed(subscription)
        subscription._subscribed_at = self._pages.tick()
        subscription._start()
        return subscription

    def _since(self, channels, since):
        """``since`` as {channel: Position, or None if it cannot be recovered}."""
        if since is None:
            return {}
        if not isinstance(since, dict):
            if len(channels) != 1:
                raise ValueError('since=<position> is for one channel; for several, give '
                                 '{channel: position}')
            since = {channels[0]: since}
        positions = {}
        for channel, position in since.items():
            if channel not in channels:
                raise ValueError('since names %r, which is not subscribed' % (channel,))
            if position is None:
                continue
            if self.history.policy_for(channel) is None:
                raise ValueError('%r keeps no history: since= needs a pattern of '
                                 'SUPERSERVER_CHANNEL_HISTORY that matches it' % (channel,))
            positions[channel] = parse_position(position)
        return positions

    def _origin(self, channel):
        """Where a subscription without ``since`` starts: what it would catch up from
        after a reconnection before its first message (None: no reconnections here)."""
        return None

    def _wait_subscribed(self, subscription):
        """Hook: return once the backend delivers the subscription's channels."""

    def _replay(self, channel, since, subscribed_at):
        """The kept messages of ``channel`` after ``since``, as lists of ``Delivery``
        read a page at a time as they are taken, shared with the subscriptions that
        recover at the same time (``recovery.RecentPages``: ``subscribed_at`` is the
        subscription's tick); a reset item instead of (or after) those that are lost,
        and for ``since`` None (unknown)."""
        policy = self.history.policy_for(channel)
        while since is not None:
            page = self._pages.get(channel, since, self.REPLAY_PAGE, subscribed_at,
                                   partial(self._read_page, channel, since, policy))
            if page is None:
                break
            yield page
            if len(page) < self.REPLAY_PAGE:
                return
            since = page[-1].at
        yield [Delivery.lost(channel)]

    def _read_page(self, channel, since, policy):
        """The next page of ``channel``'s history after ``since``, or None if it cannot be
        read or ``since`` cannot be recovered."""
        snapshot = self._read_history(channel, since, self.REPLAY_PAGE, policy)
        if snapshot is None or not recoverable(since, snapshot, policy):
            return None
        return [Delivery(channel, message, position) for position, message in snapshot.entries]

    def _read_history(self, channel, since, limit, policy):
        """A ``history.Snapshot`` after ``since``, or None if it cannot be read."""
        raise NotImplementedError

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

    def _dispatch(self, delivery):
        subscribers = self._local.get(delivery.channel)
        if subscribers:
            published = _Published(delivery)
            for subscription in list(subscribers):
                subscription.deliver(published)

    def publish(self, channel, message):
        """Send ``message`` to the subscribers of ``channel``; its position on a channel
        with history, else None."""
        raise NotImplementedError


class MemoryBroker(Broker):
    """Subscribers of this process only: the embedded default."""

    def __init__(self, max_pending=None, history=None):
        super().__init__(max_pending, history)
        self._kept = MemoryHistory()

    def publish(self, channel, message):
        is_text, payload = _encode(message)
        policy = self.history.policy_for(channel)
        position = None if policy is None else self._kept.append(channel, payload, policy)
        delivery = Delivery(channel, payload, position)
        self._dispatch(delivery)
        return delivery.position

    def _read_history(self, channel, since, limit, policy):
        return self._kept.read(channel, since, limit, policy)


class RedisBroker(Broker):
    """Redis pub/sub: one connection per process for every subscription, re-made after
    an outage; publishing retries briefly, then raises ``PublishError``. Histories are
    Redis streams (``history.RedisHistory``), read and written on the normal connections."""

    POLL = 0.05                # seconds between looks at the wanted channels
    RECONNECT_DELAYS = (0.1, 0.2, 0.5, 1, 2, 5)
    PUBLISH_ATTEMPTS = 3
    SUBSCRIBE_WAIT = 5         # seconds subscribe() waits for Redis to confirm

    def __init__(self, url, max_pending=None, history=None):
        super().__init__(max_pending, history)
        import redis   # only projects that use Redis need redis-py
        from .redisclients import blocking
        self._redis_errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        parts = urlsplit(url)
        self.url = '%s://%s:%s%s' % (parts.scheme, parts.hostname, parts.port or 6379,
                                     parts.path)   # for the log: no password
        self._client = blocking(redis.Redis.from_url(url, socket_connect_timeout=2))
        self._kept = RedisHistory(self._client)
        self._confirmed = set()     # channels Redis confirmed on the current connection
        self._confirmation = Event()
        self._changed = Event()
        self._connections = 0       # subscription connections made so far
        self._listener = gevent.spawn(self._listen)

    def _wait_subscribed(self, subscription):
        deadline = time.monotonic() + self.SUBSCRIBE_WAIT
        while not subscription.channels <= self._confirmed:
            self._confirmation.clear()
            if not self._confirmation.wait(max(0, deadline - time.monotonic())):
                logger.warning('Redis at %s has not confirmed %s yet; they will be subscribed '
                               'when it answers', self.url, ', '.join(subscription.channels))
                break

    def _channels_changed(self):
        self._changed.set()

    def publish(self, channel, message):
        data = _to_wire(*_encode(message))
        policy = self.history.policy_for(channel)
        try:
            if policy is None:
                self._retried(self._client.publish, channel, data)
                return None
            return self._retried(self._kept.publish, channel, data, policy)
        except self._redis_errors as error:
            raise PublishError('could not publish to %r: Redis at %s is unreachable (%s)'
                               % (channel, self.url, error)) from None

    def _retried(self, call, *args):
        """``call(*args)``, tried again briefly while Redis is unreachable."""
        for delay in self.RECONNECT_DELAYS[:self.PUBLISH_ATTEMPTS - 1]:
            try:
                return call(*args)
            except self._redis_errors:
                gevent.sleep(delay)
        return call(*args)

    def _origin(self, channel):
        """The channel's last position now, or that it kept nothing at this time; None
        if Redis cannot say."""
        snapshot = self._read_history(channel, None, 0, self.history.policy_for(channel))
        if snapshot is None:
            return None
        return snapshot.last or Position(snapshot.now_ms, 0)

    def _read_history(self, channel, since, limit, policy):
        try:
            snapshot = self._retried(self._kept.read, channel, since, limit, policy)
        except self._redis_errors as error:
            logger.warning('Redis at %s is unreachable, the history of %r cannot be read (%s)',
                           self.url, channel, error)
            return None
        return dataclasses.replace(snapshot, entries=[
            (position, _from_wire(data)) for position, data in snapshot.entries])

    def _listen(self):
        """The one greenlet that owns the subscription connection."""
        failures = 0
        while True:
            pubsub = self._client.pubsub()
            connections = self._connections
            try:
                self._serve(pubsub, reconnected=connections > 0 or failures > 0)
            except self._redis_errors as error:
                if self._connections != connections:
                    failures = 0   # it was connected: a new outage
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
        self._connections += 1
        resubscribing = set(self._local) if reconnected else set()
        count = len(resubscribing)
        if reconnected and not count:
            self._log_back(count)
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
                position, data = RedisHistory.unwrap(message['data'])
                self._dispatch(Delivery(channel, _from_wire(data), position))
                continue
            self._confirmed.add(channel)
            self._confirmation.set()
            # Subscriptions that started before this confirmation may have missed messages
            # in between: they catch up from their last position, read from now on.
            tick = self._pages.tick()
            for subscription in list(self._local.get(channel, ())):
                if subscription._started and channel in subscription._cursors:
                    subscription._subscribed_at = tick
                    subscription._resync(channel)
            if channel in resubscribing:
                resubscribing.discard(channel)
                if not resubscribing:
                    self._log_back(count)

    def _log_back(self, count):
        logger.warning('Redis at %s is back; subscribing again to %d channel(s): all confirmed',
                       self.url, count)


# -- the process's broker ------------------------------------------------------------------

_broker = None


def broker_url():
    """``SUPERSERVER_BROKER``: ``memory://`` (this process only) unless it is set."""
    from django.conf import settings
    return getattr(settings, 'SUPERSERVER_BROKER', 'memory://')


def get_broker():
    """The broker of this process, made on first use from ``SUPERSERVER_BROKER`` and
    ``SUPERSERVER_CHANNEL_HISTORY``."""
    global _broker
    if _broker is None:
        from django.conf import settings
        url = broker_url()
        history = HistoryRules(getattr(settings, 'SUPERSERVER_CHANNEL_HISTORY', {}))
        if url.startswith('memory://'):
            _broker = MemoryBroker(history=history)
        elif url.startswith(('redis://', 'rediss://', 'unix://')):
            _broker = RedisBroker(url, history=history)
        else:
            raise ValueError('SUPERSERVER_BROKER %r: use memory:// or redis://' % url)
    return _broker


def publish(channel, message):
    """Send ``message`` to every subscriber of ``channel``, in every process. Returns
    the message's position (str) if the channel keeps history, else None."""
    return get_broker().publish(channel, message)


def subscribe(*channels, since=None):
    """A ``Subscription`` to ``channels``; close it (or use ``with``) to leave.

    ``since``: a position (one channel) or ``{channel: position}``, for channels with
    history: the kept messages after it come first. A position that cannot be recovered
    (malformed too) gives a reset item; one for a channel without history is a ValueError.
    """
    return get_broker().subscribe(*channels, since=since)


@contextmanager
def forward(websocket, *channels, since=None, positions=False):
    """Send every message published on ``channels`` to ``websocket`` during the block.

    Each message is written as it is published, encoded once for all its subscribers.
    A websocket whose client leaves more than ``websocket.MAX_BROADCAST_BACKLOG`` bytes
    unread is closed with 1013 (try again later).

    ``since`` as for ``subscribe``: the history is sent before the block starts.
    ``positions=True`` sends each message as JSON ``{"channel", "position", "data"}``
    (``"binary"``: base64, for bytes), and a reset as ``{"channel", "reset": true}``, so
    the client can keep its position; without it frames are the messages themselves and
    a reset shows only as ``recovered`` False on the subscription.
    """
    websocket.accept()
    with get_broker().subscribe(*channels, since=since, websocket=websocket,
                                positions=positions) as subscription:
        yield subscription
