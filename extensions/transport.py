"""Non-blocking socket I/O driven by gevent's event loop, without a greenlet.

A websocket connection mostly sits idle, then passes one short message at a time. A
greenlet blocked in ``recv`` for each would cost its saved stack for every idle
connection and four switches for every message (the reader's wake-up, the hand-off
to the view). ``Transport`` reads in a libev watcher callback instead, on the hub,
like an asyncio transport: ``on_data(data)`` is called with what arrived and
``on_eof()`` once the peer is gone. Writes go straight to the socket and whatever the
kernel does not take is kept, in order, and sent when the socket is writable again,
so a frame is never cut by another (a pong, a broadcast) and writing never blocks
the caller; ``wait_drained`` is the blocking side for senders that want back
pressure.

Callbacks run on the hub: they must not block, and nothing they raise may escape.

TLS is the exception: OpenSSL keeps decrypted bytes of its own, so ``TLSTransport``
lets gevent's SSL socket read in a greenlet and send in another, behind the same
interface.
"""
import _socket
import errno
import logging
import socket
import ssl

import gevent
from gevent import getcurrent, get_hub
from gevent.event import Event
from gevent.hub import Waiter

__all__ = ['Transport', 'TLSTransport', 'Waiters', 'transport_for']

logger = logging.getLogger('superserver.websocket')

#: Bytes asked for per read: one large read takes everything that is there.
READ_SIZE = 256 * 1024
#: Buffers passed to one sendmsg call (Linux's IOV_MAX is 1024).
_SENDMSG_BUFFERS = 512
_LOST = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ETIMEDOUT,
         errno.EHOSTUNREACH, errno.ENETUNREACH)


class Waiters:
    """Greenlets waiting for something a callback will announce with ``wake_all``."""

    __slots__ = ('_waiters',)

    def __init__(self):
        self._waiters = None

    def wait(self, timeout=None):
        """Block the current greenlet until ``wake_all`` or ``timeout`` (returns False)."""
        waiter = Waiter()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            if timeout is None:
                waiter.get()
                return True
            timer = get_hub().loop.timer(timeout)
            timer.start(waiter.switch, False)
            try:
                return waiter.get() is not False
            finally:
                timer.close()
        finally:
            self._waiters.remove(waiter)

    def wake_all(self):
        """Wake every waiting greenlet; from the hub, the first one runs right away."""
        if not self._waiters:
            return
        waiters = list(self._waiters)
        hub = get_hub()
        if getcurrent() is not hub:
            for waiter in waiters:
                hub.loop.run_callback(waiter.switch, True)
            return
        for waiter in waiters[1:]:
            hub.loop.run_callback(waiter.switch, True)
        waiters[0].switch(True)   # last: the greenlet may run until it blocks


def transport_for(sock, on_data, on_eof):
    """The transport for a connected gevent socket, which it takes over: the gevent
    socket is detached (closing it no longer closes the connection), unless it is TLS."""
    if isinstance(sock, ssl.SSLSocket):
        return TLSTransport(sock, on_data, on_eof)
    return Transport(sock.detach(), on_data, on_eof)


class _Outgoing:
    """What both transports share: bytes written but not sent yet, kept in order, and
    the greenlets waiting for them to go."""

    __slots__ = ('_on_data', '_on_eof', '_pending', '_pending_size', '_drained',
                 '_shutdown_due', 'closed')

    def __init__(self, on_data, on_eof):
        self._on_data = on_data
        self._on_eof = on_eof
        self._pending = []           # bytes the kernel has not taken yet, in order
        self._pending_size = 0
        self._drained = None         # Waiters for the pending bytes to go out
        self._shutdown_due = False   # shut the write side once the pending bytes are out
        self.closed = False

    @property
    def buffered(self):
        """Bytes written but not yet taken by the kernel."""
        return self._pending_size

    def write(self, data):
        """Send ``data`` now, or as soon as the socket takes it. Raises OSError once the
        connection is broken."""
        self.writelines((data,))

    def writelines(self, buffers):
        if self.closed:
            raise ConnectionResetError(errno.ECONNRESET, 'connection closed')
        if self._pending:
            self._keep(buffers)
        else:
            self._send_first(buffers)

    def _keep(self, buffers):
        for data in buffers:
            self._pending.append(data)
            self._pending_size += len(data)

    def _sent(self, count):
        """``count`` bytes of the pending buffers went out."""
        self._pending_size -= count
        while count:
            first = self._pending[0]
            if count < len(first):
                self._pending[0] = memoryview(first)[count:]
                return
            count -= len(first)
            del self._pending[0]

    def _after_drain(self):
        if self._shutdown_due:
            self._shutdown_due = False
            self.shutdown_write()
        if self._drained is not None:
            self._drained.wake_all()

    def wait_drained(self, timeout=None):
        """Block until every byte written went to the kernel (False after ``timeout``)."""
        while self._pending and not self.closed:
            if self._drained is None:
                self._drained = Waiters()
            if not self._drained.wait(timeout):
                return False
        return not self._pending

    def shutdown_write(self):
        """Half-close once everything written went out: the peer reads the end."""
        if self._pending:
            self._shutdown_due = True
            return
        try:
            self._socket().shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        """Stop reading and writing and close the socket; unsent bytes are dropped."""
        if self.closed:
            return
        self.closed = True
        self._stop()
        self._pending = []
        self._pending_size = 0
        self._on_data = self._on_eof = _ignore   # no cycle keeps the owner alive
        self._socket().close()
        if self._drained is not None:
            self._drained.wake_all()

    def _failed(self, error):
        if error.errno not in _LOST:
            logger.info('connection failed: %s', error)
        self._on_eof()


class Transport(_Outgoing):
    """A connected socket, given as its file descriptor, read and written by loop
    callbacks.

    ``on_data(data)`` gets each chunk read; ``on_eof()`` is called once, when the peer
    closed or the connection broke. ``write``/``writelines`` never block; ``close``
    stops everything and closes the socket.
    """

    __slots__ = ('_raw', '_reader', '_writer')

    def __init__(self, fd, on_data, on_eof):
        super().__init__(on_data, on_eof)
        self._raw = _socket.socket(fileno=fd)   # the OS socket itself, not gevent's
        self._raw.setblocking(False)
        self._reader = get_hub().loop.io(fd, 1)
        self._writer = None          # made when the kernel first refuses a write

    def _socket(self):
        return self._raw

    def resume_reading(self):
        if not self.closed and not self._reader.active:
            self._reader.start(self._read)

    def pause_reading(self):
        self._reader.stop()

    def _read(self):
        try:
            data = self._raw.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        try:
            if data:
                self._on_data(data)
                return
            self._reader.stop()
            self._on_eof()
        except Exception:   # a bug: end this connection, not the loop
            logger.exception('connection handler failed; closing the connection')
            self.close()

    def _send_first(self, buffers):
        if len(buffers) == 1:
            data = buffers[0]
            try:
                sent = self._raw.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent == len(data):
                return
            self._pending = [memoryview(data)[sent:]]
            self._pending_size = len(data) - sent
        else:
            self._keep(buffers)
            self._send_pending()
        if self._pending:
            if self._writer is None:
                self._writer = get_hub().loop.io(self._raw.fileno(), 2)
            self._writer.start(self._write)

    def _send_pending(self):
        """Send what the kernel takes of the pending buffers; raises OSError."""
        while self._pending:
            try:
                sent = self._raw.sendmsg(self._pending[:_SENDMSG_BUFFERS])
            except (BlockingIOError, InterruptedError):
                return
            self._sent(sent)

    def _write(self):
        try:
            self._send_pending()
        except OSError as error:
            self._writer.stop()
            self._failed(error)
            return
        if not self._pending:
            self._writer.stop()
            self._after_drain()

    def _stop(self):
        self._reader.stop()
        self._reader.close()
        if self._writer is not None:
            self._writer.stop()
            self._writer.close()


class TLSTransport(_Outgoing):
    """The same over gevent's SSL socket: a greenlet reads, another sends."""

    __slots__ = ('_sock', '_reading', '_reader', '_writer')

    def __init__(self, sock, on_data, on_eof):
        super().__init__(on_data, on_eof)
        self._sock = sock
        self._reading = Event()
        self._reader = gevent.spawn(self._read_loop)
        self._writer = None

    def _socket(self):
        return self._sock

    def resume_reading(self):
        self._reading.set()

    def pause_reading(self):
        self._reading.clear()

    def _read_loop(self):
        while not self.closed:
            self._reading.wait()
            try:
                data = self._sock.recv(READ_SIZE)
            except OSError:
                data = b''
            if self.closed:
                return
            if not data:
                self._on_eof()
                return
            self._on_data(data)

    def _send_first(self, buffers):
        self._keep(buffers)
        if self._writer is None:
            self._writer = gevent.spawn(self._write_loop)

    def _write_loop(self):
        try:
            while self._pending and not self.closed:
                data = self._pending[0]
                self._sock.sendall(data)
                self._sent(len(data))
        except OSError as error:
            self._failed(error)
        finally:
            self._writer = None
        self._after_drain()

    def _stop(self):
        if self._reader is not getcurrent():
            self._reader.kill(block=False)
        if self._writer is not None and self._writer is not getcurrent():
            self._writer.kill(block=False)


def _ignore(*args):
    """The callbacks of a closed transport."""
