"""One ws4redis websocket: what ws4redis's server loop did, in greenlets.

The handshake is answered once its channels are subscribed and the messages kept on
them read (so what the client publishes once its socket is open cannot come back twice,
live and kept), then go those kept messages, then, until the client leaves:
messages published on those channels go to the client (text frames, bytes as binary
frames when they are not UTF-8), and the client's messages are published raw on its
publish channels (and kept ``WS4REDIS_EXPIRE`` seconds). Echo as ws4redis: without
``echo`` a message from Redis equal to the client's last message is not sent back, and
a heartbeat from the client forgets that last message.

Heartbeats (``WS4REDIS_HEARTBEAT``) are neither published nor echoed. The server answers
each of the client's, and sends one whenever ``HEARTBEAT_INTERVAL`` seconds went by
without, so ws4redis.js (one every 5 s, giving up after 3 unanswered) never misses one.
"""
import logging
import time

import gevent
import redis

from ..exceptions import ConnectionClosed
from ..pubsub import SubscriberTooSlow, subscribe
from . import connection

logger = logging.getLogger('superserver.ws4redis')

#: Longest quiet between two heartbeats, in seconds (ws4redis: "at least every 4 s").
HEARTBEAT_INTERVAL = 4


def as_bytes(message):
    """A message as Redis keeps it: the UTF-8 bytes of text, binary as it is."""
    return message.encode('utf-8') if isinstance(message, str) else bytes(message)


def as_frame(data):
    """What to send for a Redis value: text when it is UTF-8 (as ws4redis sent every
    message), else bytes (a binary frame: a text frame must be UTF-8, RFC 6455 8.1)."""
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return data


class Relay:
    """Runs one websocket, not yet accepted, until it closes (``run``)."""

    def __init__(self, websocket, subscribe_to, publish_to, echo, heartbeat, expire):
        self.websocket = websocket
        self.subscribe_to = subscribe_to
        self.publish_to = publish_to
        self.echo = echo
        self.heartbeat = heartbeat
        self.expire = expire
        #: The client's last message as bytes; None before any and after a heartbeat.
        self.last_received = None
        self._beaten_at = time.monotonic()

    def run(self):
        """Relay until the client leaves. Raises ``redis.RedisError`` if Redis fails
        before the handshake was answered; after it, such a failure closes the socket
        with 1011 (ws4redis.js then reconnects)."""
        subscription = subscribe(*self.subscribe_to) if self.subscribe_to else None
        helpers = []
        try:
            kept = connection.kept(self.subscribe_to)
            self.websocket.accept()
            for data in kept:
                if data:
                    self.websocket.send(as_frame(data))
            if subscription is not None:
                helpers.append(gevent.spawn(self._deliver, subscription))
            if self.heartbeat:
                helpers.append(gevent.spawn(self._beat_when_quiet))
            self._receive()
        except redis.RedisError as error:
            if not self.websocket.accepted:
                raise
            logger.warning('%s: closing, Redis failed (%s)', self.websocket, error)
            self.websocket.close(1011, 'Redis is unreachable')
        except ConnectionClosed:
            pass   # the client left while we sent it the kept messages
        finally:
            if subscription is not None:
                subscription.close()
            gevent.killall(helpers)

    def _receive(self):
        """The client's messages, published; its heartbeats answered."""
        beat = self.heartbeat and self.heartbeat.encode('utf-8')
        for message in self.websocket:
            data = as_bytes(message)
            if beat and data == beat:
                self.last_received = None
                self._beat()
                continue
            self.last_received = data
            if data:
                connection.publish(self.publish_to, data, self.expire)

    def _deliver(self, subscription):
        """Messages from Redis to the client."""
        try:
            for channel, message in subscription:
                if message and (self.echo or as_bytes(message) != self.last_received):
                    self.websocket.send(message)
        except SubscriberTooSlow as error:
            logger.warning('%s: closing, %s', self.websocket, error)
            self.websocket.close(1013, 'too slow for its subscriptions')
        except ConnectionClosed:
            pass

    def _beat_when_quiet(self):
        while True:
            due = self._beaten_at + HEARTBEAT_INTERVAL
            gevent.sleep(max(0.0, due - time.monotonic()))
            if time.monotonic() >= self._beaten_at + HEARTBEAT_INTERVAL and not self._beat():
                return

    def _beat(self):
        """Send a heartbeat; False once the socket is closed."""
        self._beaten_at = time.monotonic()
        try:
            self.websocket.send(self.heartbeat)
        except ConnectionClosed:
            return False
        return True
