"""The websocket object a view finds in ``environ['wsgi.websocket']``.

A blocking, greenlet-friendly front-end over ``protocol.ServerConnection``:

- the handshake is deferred: nothing is answered until the view accepts, explicitly
  with ``accept()`` or implicitly on its first ``receive``/``send``/iteration;
- once accepted, the connection is read by loop callbacks (``transport.Transport``),
  not by a greenlet of its own: pings are answered, fragments assembled and close
  frames handled whatever the view is doing, an idle connection costs no stack, and a
  message reaches a view waiting in ``receive`` in one switch. A close (or a protocol
  violation) is answered once the view has handled the messages before it;
- frames are written whole and in order by whichever greenlet sends; ``send`` returns
  once the kernel has the frame, so a slow client slows its sender, not the server;
- keepalive pings, on a timer, drop peers that stopped answering;
- permessage-deflate is negotiated when the view accepts, unless it declines it.

It knows nothing of Django: ``adaptation.WebSocketMiddleware`` creates it.
"""
import logging
import os
import time

from gevent import get_hub

from .exceptions import ConnectionClosed
from .compression import PerMessageDeflate, negotiate
from .handshake import response_headers
from .protocol import Closed, Pong, ServerConnection, State, message_payload
from .transport import Waiters, transport_for

__all__ = ['WebSocket']

logger = logging.getLogger('superserver.websocket')

#: Bytes a broadcast may leave waiting for a slow client before it is closed (1013).
MAX_BROADCAST_BACKLOG = 1 << 20


class WebSocket:
    """One websocket connection, as seen by the view that serves it."""

    # Thousands are idle at once: slots keep each small (a view may still add
    # attributes of its own, in a __dict__ made when it does).
    __slots__ = ('environ', 'handshake', 'config', 'subprotocol', 'compression', 'accepted',
                 'declined',
                 'close_code', 'close_reason', 'sent_close_code', 'messages_in',
                 'messages_out', 'before_waiting', 'accepted_at', '_start_response',
                 '_handler', '_transport', '_protocol', '_incoming', '_waiters', '_paused',
                 '_handling', '_read_over', '_eof', '_lost', '_timer', '_awaiting_pong',
                 '_close_timer', '__dict__', '__weakref__')

    def __init__(self, environ, handshake, start_response, transport, config):
        self.environ = environ
        self.handshake = handshake
        self.config = config
        #: The subprotocol agreed by ``accept``, or chosen for it before (by
        #: ``require_websocket(subprotocols=...)``); None: none.
        self.subprotocol = None
        #: The ``compression.Deflate`` agreed when accepting, or None: uncompressed.
        self.compression = None
        self.accepted = False
        #: True once the view closed the socket before accepting it (answered 403).
        self.declined = False
        #: How the connection ended: the peer's close code and reason, the code we
        #: failed the connection with, or 1006 if it was dropped without a close frame.
        self.close_code = None
        self.close_reason = None
        #: The code of the close frame we sent first, if the server started the closing
        #: (the view, a shutdown, a protocol violation, a keepalive timeout).
        self.sent_close_code = None
        #: Messages received and sent, and when the connection was accepted (for logs).
        self.messages_in = self.messages_out = 0
        #: Callables run in the view's greenlet when ``receive`` is about to wait for a
        #: message that has not arrived: the Django layer releases database connections.
        self.before_waiting = []
        self.accepted_at = None
        self._start_response = start_response
        self._handler = transport    # the HTTP handler, until it hands over its socket
        self._transport = None       # made by accept()
        self._protocol = ServerConnection(config.max_message_size)
        self._incoming = []          # messages the view has not taken yet (a few)
        self._waiters = Waiters()    # greenlets in receive() or close()
        self._paused = False         # reading paused: the view has max_queue unread
        self._handling = False       # the view holds a message it has not finished with
        self._read_over = False      # the peer closed, failed or left: nothing more comes
        self._eof = False            # receive() returns None from now on
        self._lost = False           # the TCP connection is gone
        self._timer = None           # keepalive: next ping, or the pong's deadline
        self._awaiting_pong = False
        self._close_timer = None     # the deadline of a closing handshake step

    def __repr__(self):
        return '<WebSocket %s %s>' % (self.environ.get('PATH_INFO'), self._protocol.state.value)

    @property
    def subprotocols(self):
        """The subprotocols the client offered, in its order of preference."""
        return self.handshake.subprotocols

    @property
    def max_message_size(self):
        """Largest message accepted, in bytes; a view may change it at any time."""
        return self._protocol.max_message_size

    @max_message_size.setter
    def max_message_size(self, value):
        self._protocol.max_message_size = value

    @property
    def closed(self):
        """True once the closing handshake started, from either side."""
        return self._eof or self._lost or self._protocol.state is not State.OPEN

    # -- the view's API ----------------------------------------------------------------

    def accept(self, subprotocol=None, compress=True):
        """Answer the handshake with 101, choosing ``subprotocol`` among those offered
        (by default ``self.subprotocol``, which a decorator may have chosen).

        permessage-deflate is accepted if the client offered it and the settings allow
        it; ``compress=False`` declines it for this socket (messages already compressed,
        such as images, gain nothing from it). ``compression`` says what was agreed.
        """
        if self.accepted:
            if subprotocol is not None and subprotocol != self.subprotocol:
                raise ValueError('websocket already accepted with subprotocol %r'
                                 % self.subprotocol)
            return
        if self.declined:
            raise ConnectionClosed(1000, 'declined before the handshake')
        if subprotocol is None:
            subprotocol = self.subprotocol
        agreed = negotiate(self.handshake.extensions, self.config) if compress else None
        write = self._start_response('101 Switching Protocols', response_headers(
            self.handshake, subprotocol, agreed and agreed[0]))
        write(b'')  # flush the 101 now, before any frame
        if agreed:
            self.compression = agreed[1]
            self._protocol.codec = PerMessageDeflate.from_config(agreed[1], self.config)
        self.accepted = True
        self.accepted_at = time.monotonic()
        self.subprotocol = subprotocol
        handler, self._handler = self._handler, None
        early, sock = handler.hand_over()
        self._transport = transport_for(sock, self._data_received, self._eof_received)
        if early:
            self._data_received(early)
        if not self._paused:
            self._transport.resume_reading()
        if self.config.ping_interval:
            self._set_timer(self.config.ping_interval)

    def receive(self, timeout=None):
        """The next message, ``str`` for text and ``bytes`` for binary; None once closed.

        Raises ``TimeoutError`` if no message comes within ``timeout`` seconds.
        """
        self.accept()
        self._handling = False
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._eof:
            if self._incoming:
                self._handling = True
                message = self._incoming.pop(0)
                if self._paused and len(self._incoming) < self.config.max_queue:
                    self._paused = False
                    self._transport.resume_reading()
                return message
            if self._read_over:
                self._eof = True
                self._caught_up()
                break
            for callback in self.before_waiting:
                callback()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._waiters.wait(left):
                raise TimeoutError('no websocket message within %s s' % timeout)
        return None

    def __iter__(self):
        """Yield messages until the connection closes."""
        while (message := self.receive()) is not None:
            yield message

    def send(self, message):
        """Send ``str`` as a text message, ``bytes``-like as a binary message.

        Returns once the kernel took the frame. Raises ``ConnectionClosed`` once the
        connection is closing or closed.
        """
        opcode, payload = message_payload(message)   # TypeError for anything else
        self._transmit(self._protocol.send_data, opcode, payload)
        self.messages_out += 1

    def send_many(self, messages):
        """Send several messages as ``send`` would, one after the other, in as few
        system calls as the kernel allows: a page of history, a backlog. Returns once
        the kernel took them all; ``TypeError`` before anything is sent if one is
        neither ``str`` nor ``bytes``-like."""
        payloads = [message_payload(message) for message in messages]
        self._transmit(self._queue_all, payloads)
        self.messages_out += len(payloads)

    def _queue_all(self, payloads):
        queue = self._protocol.send_data
        for opcode, payload in payloads:
            queue(opcode, payload)

    def ping(self, data=b''):
        """Send a ping; the pong is noted by the keepalive."""
        self._transmit(self._protocol.send_ping, data)

    def close(self, code=1000, reason=''):
        """Close with ``code`` and ``reason`` and wait (``close_timeout``) for the peer.

        Before the handshake was accepted, this declines it instead: the client gets
        403 Forbidden. Once the peer closed or broke the protocol, the due answer (its
        code echoed, or the violation's) goes instead of ``code``. Unread messages are
        discarded. Calling it again does nothing.
        """
        if not self.accepted:
            self.declined = self._eof = True
            return
        self._send_close(code, reason)   # ValueError for a code one may not send
        if self._read_over:
            self._closing_handshake_done()
            return
        deadline = time.monotonic() + self.config.close_timeout
        while not self._read_over:
            if not self._waiters.wait(max(0.0, deadline - time.monotonic())):
                logger.info('%s: no closing handshake from the peer within %s s',
                            self, self.config.close_timeout)
                self._drop()

    # -- for broadcasts ---------------------------------------------------------------------

    def send_shared_nowait(self, message):
        """Queue a ``protocol.SharedMessage`` (one message for many sockets, its frames
        shared where they can be) without waiting for this one. A client more than
        MAX_BROADCAST_BACKLOG bytes behind is closed with 1013 (try again later).
        Raises ``ConnectionClosed``."""
        self._check_open()
        self._protocol.send_shared(message)
        self._flush_or_lost()
        self.messages_out += 1
        if self._transport.buffered > MAX_BROADCAST_BACKLOG:
            logger.warning('%s: %d bytes behind, closing', self, self._transport.buffered)
            self._close_now(1013, 'too slow for its subscriptions')

    # -- reading: transport callbacks, on the hub ----------------------------------------

    def _data_received(self, data):
        protocol = self._protocol
        try:
            events = protocol.receive_data(data)
            self._flush()   # pongs go out at once
        except OSError:
            self._drop()
            return
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                if not self._eof:
                    self.messages_in += 1
                    self._incoming.append(event)
            elif kind is Pong:
                self._pong_received()
            elif kind is Closed:
                self._peer_done(event)
        if len(self._incoming) >= self.config.max_queue and not self._read_over:
            self._paused = True
            self._transport.pause_reading()
        self._waiters.wake_all()   # last: a waiting view runs right away

    def _peer_done(self, closed):
        """The peer's close frame came, or it broke the protocol: reading is over."""
        self._read_over = True
        if self.close_code is None:
            self.close_code, self.close_reason = closed.code, closed.reason
        if closed.error is not None:
            logger.info('%s: failed with %d: %s', self, closed.code, closed.reason)
            if self.sent_close_code is None:
                self.sent_close_code = closed.code
        self._cancel_timer()
        if self._protocol.state is State.CLOSED:   # it answered our close frame
            self._closing_handshake_done()
        elif not (self._handling or self._incoming) or self._eof:
            self._caught_up()
        else:
            # Answer once the view has handled the messages that came before the close
            # (an echo must not be cut off), but no later than close_timeout.
            self._set_close_timer(self._caught_up)

    def _close_now(self, code, reason):
        """Close from a callback: the view's receive() returns None; the peer has
        close_timeout to answer (a dead one may never read the frame)."""
        self._send_close(code, reason)
        if not self._lost:
            self._set_close_timer(self._drop)
        self._waiters.wake_all()

    def _caught_up(self):
        """The view handled every message before the peer's close: answer it now."""
        if self._protocol.state is State.CLOSE_DUE:
            self._protocol.send_close()   # the due answer
            self._flush_quietly()
        if self._protocol.state is State.CLOSED:
            self._closing_handshake_done()

    def _closing_handshake_done(self):
        """Both close frames went: RFC 6455 section 7.1.1 has the server close TCP
        first. Half-close and read on until the peer closes too, so no RST destroys
        our close frame on its way; cut it at close_timeout."""
        if self._lost:
            return
        self._transport.shutdown_write()
        self._set_close_timer(self._drop)

    def _eof_received(self):
        """The peer closed TCP, or the connection broke."""
        if not self._read_over:   # dropped without a close frame
            self._read_over = True
            if self.close_code is None:
                self.close_code, self.close_reason = 1006, ''
        self._drop()

    # -- keepalive ------------------------------------------------------------------------

    def _keepalive(self):
        if self._read_over or self._protocol.state is not State.OPEN:
            return
        timeout = self.config.ping_timeout
        if self._awaiting_pong and timeout:
            logger.info('%s: no pong within %s s, dropping the peer', self, timeout)
            self.close_code, self.close_reason = 1011, 'keepalive ping timeout'
            self._close_now(1011, 'keepalive ping timeout')
            return
        try:
            self._protocol.send_ping(os.urandom(4))
            self._flush()
        except (ConnectionClosed, OSError):
            self._drop()
            return
        self._awaiting_pong = True
        self._set_timer(timeout or self.config.ping_interval)

    def _pong_received(self):
        if self._awaiting_pong:
            self._awaiting_pong = False
            self._set_timer(self.config.ping_interval)

    # -- helpers ---------------------------------------------------------------------------

    def _send_close(self, code, reason):
        """Send our close frame (or the due answer); unread messages are discarded and
        receive() returns None from now on."""
        self._start_closing(code, reason)
        self._eof = True
        self._incoming.clear()
        self._flush_quietly()

    def _start_closing(self, code, reason):
        if self._protocol.state is State.OPEN and not self._lost:
            self.sent_close_code = code
        self._protocol.send_close(code, reason)

    def _transmit(self, queue, *args):
        """Queue a frame with ``queue(*args)``, send it and wait until the kernel took
        it, or raise ConnectionClosed."""
        self.accept()
        self._check_open()
        queue(*args)
        transport = self._transport
        self._flush_or_lost()
        if transport.buffered and not transport.wait_drained():
            raise ConnectionClosed(1006, 'connection lost')

    def _flush(self):
        """Hand the protocol's frames to the transport; raises OSError if it is gone."""
        data = self._protocol.data_to_send()
        if data:
            self._transport.writelines(data)

    def _flush_or_lost(self):
        """Flush, or drop a connection whose transport is gone: ConnectionClosed."""
        try:
            self._flush()
        except OSError:
            self._drop()
            raise ConnectionClosed(1006, 'connection lost') from None

    def _flush_quietly(self):
        try:
            self._flush()
        except OSError:
            self._drop()

    def _drop(self):
        """The connection is over: close it, and wake whoever waits for it."""
        self._eof = self._lost = True
        if not self._read_over:
            self._read_over = True
            if self.close_code is None:
                self.close_code, self.close_reason = 1006, ''
        self._cancel_timer()
        if self._close_timer is not None:
            self._close_timer.close()
            self._close_timer = None
        if self._transport is not None:
            self._transport.close()
        self._waiters.wake_all()

    def _open(self):
        """May the view still send? Also after the peer's close, until we answer it."""
        return self._protocol.state in (State.OPEN, State.CLOSE_DUE) and not self._lost

    def _check_open(self):
        if not self._open():
            raise ConnectionClosed(self.close_code or 1006, self.close_reason or '')

    def _set_timer(self, seconds):
        self._cancel_timer()
        self._timer = get_hub().loop.timer(seconds)
        self._timer.start(self._keepalive)

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.close()
            self._timer = None

    def _set_close_timer(self, callback):
        if self._close_timer is not None:
            self._close_timer.close()
        self._close_timer = get_hub().loop.timer(self.config.close_timeout)
        self._close_timer.start(callback)
