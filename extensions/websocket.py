"""The websocket object a view finds in ``environ['wsgi.websocket']``.

A blocking, greenlet-friendly front-end over ``protocol.ServerConnection``:

- the handshake is deferred: nothing is answered until the view accepts, explicitly
  with ``accept()`` or implicitly on its first ``receive``/``send``/iteration;
- a reader greenlet keeps reading once accepted, so pings are answered, fragments
  assembled and close frames handled whatever the view is doing; a close (or a
  protocol violation) is answered once the view has handled the messages before it;
- ``send`` takes a lock around each frame, so greenlets may send at once safely;
- keepalive pings drop peers that stopped answering.

It knows nothing of Django: ``adaptation.WebSocketMiddleware`` creates it.
"""
import logging
import os
import socket
import time

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.queue import Empty, Queue

from .exceptions import ConnectionClosed
from .handshake import response_headers
from .protocol import Closed, Pong, ServerConnection, State

__all__ = ['WebSocket']

logger = logging.getLogger('superserver.websocket')

READ_SIZE = 64 * 1024
_END = object()  # queued after the last message


class WebSocket:
    """One websocket connection, as seen by the view that serves it."""

    def __init__(self, environ, handshake, start_response, transport, config):
        self.environ = environ
        self.handshake = handshake
        self.config = config
        #: The subprotocol chosen by ``accept``, if any.
        self.subprotocol = None
        self.accepted = False
        #: True once the view closed the socket before accepting it (answered 403).
        self.declined = False
        #: How the connection ended: the peer's close code and reason, the code we
        #: failed the connection with, or 1006 if it was dropped without a close frame.
        self.close_code = None
        self.close_reason = None
        #: The code of the close frame we sent first, if the server started the closing.
        self.sent_close_code = None
        #: Messages received and sent, and when the connection was accepted (for logs).
        self.messages_in = self.messages_out = 0
        #: Callables run in the view's greenlet when ``receive`` is about to wait for a
        #: message that has not arrived: the Django layer releases database connections.
        self.before_waiting = []
        self.accepted_at = None
        self._start_response = start_response
        self._socket = transport.socket
        self._rfile = transport.rfile
        self._protocol = ServerConnection(config.max_message_size)
        self._send_lock = Semaphore()
        self._messages = Queue()
        self._room = Event()       # set when the view made room in the queue
        self._pong = Event()
        self._ended = Event()      # set once reading is over: the peer closed, failed or left
        self._caught_up = Event()  # set once the view handled every message it was given
        self._handling = False     # the view holds a message it has not finished with
        self._eof = False          # receive() returns None from now on
        self._lost = False         # the TCP connection is gone

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

    def accept(self, subprotocol=None):
        """Answer the handshake with 101, choosing ``subprotocol`` among those offered."""
        if self.accepted:
            if subprotocol is not None and subprotocol != self.subprotocol:
                raise ValueError('websocket already accepted with subprotocol %r'
                                 % self.subprotocol)
            return
        if self.declined:
            raise ConnectionClosed(1000, 'declined before the handshake')
        write = self._start_response('101 Switching Protocols',
                                     response_headers(self.handshake, subprotocol))
        write(b'')  # flush the 101 now, before any frame
        self.accepted = True
        self.accepted_at = time.monotonic()
        self.subprotocol = subprotocol
        gevent.spawn(self._read_loop)
        if self.config.ping_interval:
            gevent.spawn(self._keepalive_loop)

    def receive(self, timeout=None):
        """The next message, ``str`` for text and ``bytes`` for binary; None once closed.

        Raises ``TimeoutError`` if no message comes within ``timeout`` seconds.
        """
        self.accept()
        self._handling = False
        if self._eof:
            return None
        if self._messages.empty():
            for callback in self.before_waiting:
                callback()
        try:
            message = self._messages.get(timeout=timeout)
        except Empty:
            raise TimeoutError('no websocket message within %s s' % timeout) from None
        if message is _END:
            self._eof = True
            self._caught_up.set()
            return None
        self._handling = True
        self._room.set()
        return message

    def __iter__(self):
        """Yield messages until the connection closes."""
        while (message := self.receive()) is not None:
            yield message

    def send(self, message):
        """Send ``str`` as a text message, ``bytes``-like as a binary message.

        Raises ``ConnectionClosed`` once the connection is closing or closed.
        """
        if isinstance(message, str):
            self._transmit(self._protocol.send_text, message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self._transmit(self._protocol.send_binary, message)
        else:
            raise TypeError('websocket messages are str or bytes, not %s'
                            % type(message).__name__)
        self.messages_out += 1

    def ping(self, data=b''):
        """Send a ping; the reader notes the pong."""
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
        self._start_closing(code, reason)   # ValueError for a code one may not send
        self._eof = True
        self._room.set()
        self._caught_up.set()
        try:
            self._flush()
        except OSError:
            self._drop()
        if not self._ended.wait(self.config.close_timeout):
            logger.info('%s: no closing handshake from the peer within %s s',
                        self, self.config.close_timeout)
            self._drop()

    # -- the reader greenlet -------------------------------------------------------------

    def _read_loop(self):
        closed = None
        try:
            while closed is None:
                try:
                    data = self._rfile.read1(READ_SIZE)
                except OSError:
                    data = b''
                if not data:
                    break
                events = self._protocol.receive_data(data)
                self._flush_quietly()  # pongs go out at once
                for event in events:
                    if isinstance(event, (str, bytes)):
                        self._deliver(event)
                    elif isinstance(event, Pong):
                        self._pong.set()
                    elif isinstance(event, Closed):
                        closed = event
        finally:
            self._finish(closed)

    def _deliver(self, message):
        """Queue a message for the view, pausing the reading while the queue is full."""
        while self._messages.qsize() >= self.config.max_queue and not self._eof:
            self._room.clear()
            self._room.wait()
        if not self._eof:
            self.messages_in += 1
            self._messages.put(message)

    def _finish(self, closed):
        if closed is None:
            self._lost = True   # dropped without a close frame: nothing more to say
        if self.close_code is None:
            if closed is None:
                self.close_code, self.close_reason = 1006, ''
            else:
                self.close_code, self.close_reason = closed.code, closed.reason
        if closed is not None and closed.error is not None:
            logger.info('%s: failed with %d: %s', self, closed.code, closed.reason)
        self._messages.put(_END)
        self._ended.set()
        self._pong.set()   # a keepalive waiting for a pong must not outlive the connection
        if closed is not None:
            # Answer once the view has handled the messages that came before the close
            # (an echo must not be cut off), but no later than close_timeout.
            if self._handling or self._messages.qsize() > 1:
                self._caught_up.wait(self.config.close_timeout)
            self._protocol.send_close()   # the due answer, unless the view sent it
            self._flush_quietly()
        # The socket is ours since the 101 (the handler let go of it). RFC 6455 section
        # 7.1.1: the server closes TCP first. Half-close, then read on until the peer
        # closes too, so no RST can destroy our close frame on its way.
        try:
            self._socket.shutdown(socket.SHUT_WR)
            with gevent.Timeout(self.config.close_timeout, False):
                while self._rfile.read1(READ_SIZE):
                    pass
        except OSError:
            pass
        finally:
            self._lost = True
            self._close_transport()

    # -- helpers ---------------------------------------------------------------------------

    def _start_closing(self, code, reason):
        if self._protocol.state is State.OPEN and not self._lost:
            self.sent_close_code = code
        self._protocol.send_close(code, reason)

    def _transmit(self, queue, payload):
        """Queue a frame with ``queue(payload)`` and send it, or raise ConnectionClosed."""
        self.accept()
        self._check_open()
        queue(payload)
        try:
            self._flush()
        except OSError:
            self._drop()
            raise ConnectionClosed(1006, 'connection lost') from None

    def _flush(self):
        with self._send_lock:
            for data in self._protocol.data_to_send():
                self._socket.sendall(data)

    def _flush_quietly(self):
        try:
            self._flush()
        except OSError:
            self._drop()

    def _drop(self):
        """Give up on the connection: the reader ends and records 1006."""
        self._eof = self._lost = True
        self._room.set()
        self._caught_up.set()
        self._close_transport()

    def _close_transport(self):
        """Close the socket and the handler's reader, which holds it open too: the
        descriptor is freed now, not when the collector gets to this connection."""
        self._rfile.close()
        self._socket.close()

    def _open(self):
        """May the view still send? Also after the peer's close, until we answer it."""
        return self._protocol.state in (State.OPEN, State.CLOSE_DUE) and not self._lost

    def _check_open(self):
        if not self._open():
            raise ConnectionClosed(self.close_code or 1006, self.close_reason or '')

    def _keepalive_loop(self):
        interval, timeout = self.config.ping_interval, self.config.ping_timeout
        while not self._ended.wait(interval):
            if self._protocol.state is not State.OPEN:
                return
            self._pong.clear()
            try:
                self.ping(os.urandom(4))
            except ConnectionClosed:
                return
            if timeout and not self._pong.wait(timeout) and not self._ended.is_set():
                logger.info('%s: no pong within %s s, dropping the peer', self, timeout)
                self.close_code, self.close_reason = 1011, 'keepalive ping timeout'
                self._start_closing(1011, 'keepalive ping timeout')
                with gevent.Timeout(self.config.close_timeout, False):
                    self._flush_quietly()  # a dead peer may not read it
                self._drop()
                return
