"""Testing websocket views: an in-process test client, and a live server for browsers.

- ``Client``: Django's test client plus ``websocket(path)``. The handshake goes through
  the chain the server runs (``WebSocketMiddleware`` around ``serving(WSGIHandler())``:
  handshake checks, origin policy, Django's middleware, sessions, URL routing) and the
  view runs in a greenlet of its own, as served. There is no listening socket: the
  view's websocket is the real one, over one end of a socket pair, and the test speaks
  RFC 6455 over the other (masked frames, by websockets' sans-I/O ``ClientProtocol``).
  The test's database connections are lent to the view, so the data of a ``TestCase``
  is visible to it, and an exception in the view is raised in the test, as
  ``Client.get`` raises a plain view's.
- ``LiveServerTestCase``: Django's, served by ``WebSocketServer`` from a thread with a
  gevent hub of its own: websockets and Server-Sent Events for Selenium or Playwright.

The client is not a wire or load test: its end of the socket is read only while the
test waits for a message (keepalive pings are answered then).
"""
import json
import socket
import sys
import time
from collections import deque
from contextlib import contextmanager
from http import HTTPStatus

import gevent
import gevent.socket
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception
from django.db import connections
from django.http import HttpResponse
from django.test import Client as DjangoClient
from django.test import LiveServerTestCase as DjangoLiveServerTestCase
from django.test import testcases
from gevent.event import Event
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from .adaptation import TRANSPORT_KEY, WebSocketMiddleware
from .conf import origin_allowed, websocket_config
from .exceptions import ConnectionClosed
from .transport import READ_SIZE
from .wsgi import make_server, serving

__all__ = ['Client', 'WebSocketConnection', 'NotAccepted', 'LiveServerTestCase',
           'LiveServerThread']

#: Marks the requests of ``Client.websocket`` (their subprotocols) on their way through
#: ``Client.generic`` to ``Client.request``, as Django's ``_body_file`` does.
_OPEN = 'superserver.testing.subprotocols'

#: How many running views hold each lent connection.
_holders = {}


class NotAccepted(Exception):
    """The view answered the handshake in plain HTTP; ``response`` is its answer."""

    def __init__(self, response):
        super().__init__('the view answered %d %s instead of accepting the websocket'
                         % (response.status_code, response.reason_phrase))
        self.response = response


class Client(DjangoClient):
    """Django's test client, which also opens websockets to the project's views::

        client = Client()
        client.force_login(user)
        with client.websocket('/ws/chat/lobby/') as ws:
            ws.send('hello')
            assert ws.receive_json() == {...}

    ``raise_request_exception`` (Django's) also decides what an exception in a
    websocket view does: raised in the test (the default) or only a 1011 close.
    """

    def websocket(self, path, subprotocols=(), *, headers=None, query_params=None,
                  secure=False, timeout=5, **extra):
        """Open a websocket to ``path``, offering ``subprotocols`` (most preferred first).

        Returns a ``WebSocketConnection`` once the view accepted it or answered in plain
        HTTP (its ``response``: 101, or 404, a redirect, 403...), within ``timeout``
        seconds. ``headers`` are sent with the handshake (``Origin`` as a browser would).
        An exception the view raised before accepting is raised here.
        """
        upgrade = {'HTTP_UPGRADE': 'websocket', 'HTTP_CONNECTION': 'Upgrade',
                   'HTTP_SEC_WEBSOCKET_VERSION': '13'}
        return self.generic('GET', path, secure=secure, headers=headers,
                            query_params=query_params,
                            **{**upgrade, **extra, _OPEN: (tuple(subprotocols), timeout)})

    def request(self, **request):
        opening = request.pop(_OPEN, None)
        if opening is None:
            return super().request(**request)
        subprotocols, timeout = opening
        connection = WebSocketConnection(self.websocket_application(),
                                         self._base_environ(**request), subprotocols,
                                         raise_request_exception=self.raise_request_exception)
        connection.open(timeout)
        if connection.response.cookies:
            self.cookies.update(connection.response.cookies)
        return connection

    def websocket_application(self):
        """The application a server would serve, made anew for each websocket so that
        settings overridden by a test apply: what ``extensions.wsgi.make_server`` puts
        together, without the server (``environ['wsgi.server']`` is None)."""
        return WebSocketMiddleware(serving(WSGIHandler()), config=websocket_config(),
                                   origin_policy=origin_allowed)


class WebSocketConnection:
    """The test's end of a websocket opened by ``Client.websocket``; also a context
    manager that closes it.

    ``response`` is the server's answer to the handshake: 101 (its headers say what was
    agreed) once the view accepted, else the plain HTTP response the view gave.
    """

    def __init__(self, application, environ, subprotocols, raise_request_exception=True):
        self.environ = environ
        self.response = None
        self.raise_request_exception = raise_request_exception
        self._protocol = ClientProtocol(parse_uri('ws://%s/' % environ['SERVER_NAME']),
                                        subprotocols=list(subprotocols) or None,
                                        max_size=None)
        self._protocol.key = environ.setdefault('HTTP_SEC_WEBSOCKET_KEY', self._protocol.key)
        if subprotocols:
            environ['HTTP_SEC_WEBSOCKET_PROTOCOL'] = ', '.join(subprotocols)
        self._socket, server_end = gevent.socket.socketpair()
        self._server = _ServerSide(application, environ, server_end)
        self._messages = deque()
        self._fragments = None   # (opcode, [data]) of a message still arriving

    def __repr__(self):
        return '<WebSocketConnection %s %s>' % (self.environ.get('PATH_INFO'),
                                                self._protocol.state.name)

    def open(self, timeout):
        """Wait for the view to accept or to answer in plain HTTP."""
        server = self._server
        if not server.answered.wait(timeout):
            server.greenlet.kill()
            self._socket.close()
            raise TimeoutError('%s: the view neither accepted the websocket nor answered '
                               'within %s s' % (self.environ['PATH_INFO'], timeout))
        if server.status is None:   # the application failed without answering
            self._socket.close()
            raise server.error
        if server.status.startswith('101 '):
            self.response = _http_response(server.status, server.headers)
            self._protocol.receive_data(_head(server.status, server.headers))
            self._protocol.events_received()   # the Response, checked by the protocol
            if self._protocol.handshake_exc is not None:
                raise self._protocol.handshake_exc
            return
        server.greenlet.join(timeout)   # the body of the plain response
        self._socket.close()
        self.response = _http_response(server.status, server.headers, b''.join(server.body))
        self._raise_view_error()

    @property
    def subprotocol(self):
        """The subprotocol the view chose, or None."""
        return self._protocol.subprotocol

    @property
    def close_code(self):
        """The code of the server's close frame; 1006 if the connection ended without
        one; None while open."""
        close = self._protocol.close_rcvd
        if close is not None:
            return close.code
        return 1006 if self._protocol.state is State.CLOSED else None

    @property
    def close_reason(self):
        close = self._protocol.close_rcvd
        return close.reason if close is not None else None

    def send(self, message):
        """Send ``str`` as a text message, ``bytes`` as binary; ``ConnectionClosed``
        (or the view's exception) once the connection is closing."""
        self._check_accepted()
        if self._protocol.state is not State.OPEN:
            self._raise_view_error()
            raise ConnectionClosed(self.close_code or 1006, self.close_reason or '')
        if isinstance(message, str):
            self._protocol.send_text(message.encode('utf-8'))
        else:
            self._protocol.send_binary(bytes(message))
        self._flush()

    def send_json(self, data):
        self.send(json.dumps(data))

    def receive(self, timeout=1):
        """The next message (``str`` for text, ``bytes`` for binary), or None once the
        server closed the connection. ``TimeoutError`` if none came within ``timeout``
        seconds; the view's exception, if it raised, instead of the None."""
        self._check_accepted()
        deadline = time.monotonic() + timeout
        while not self._messages:
            if self._protocol.close_rcvd is not None or self._protocol.state is State.CLOSED:
                self._raise_view_error()
                return None
            self._read(deadline, 'no message within %s s' % timeout)
        return self._messages.popleft()

    def receive_json(self, timeout=1):
        message = self.receive(timeout)
        if message is None:
            raise ConnectionClosed(self.close_code, self.close_reason or '')
        return json.loads(message)

    def assert_no_message(self, timeout=0.1):
        """Fail if a message comes, or the connection closes, within ``timeout`` s."""
        try:
            message = self.receive(timeout)
        except TimeoutError:
            return
        if message is None:
            raise AssertionError('the server closed the connection with %s' % self.close_code)
        raise AssertionError('unexpected message: %r' % (message,))

    def close(self, code=1000, reason='', timeout=5):
        """Close with ``code`` and wait (``timeout`` seconds) for the server's answer and
        for the view to end; then raise the view's exception, if it raised. Messages
        that came meanwhile can still be received. Calling it again does nothing."""
        if self.response.status_code == 101 and not self._socket.closed:
            deadline = time.monotonic() + timeout
            try:
                if self._protocol.state is State.OPEN:
                    self._protocol.send_close(code, reason)
                    self._flush()
                while self._protocol.state is not State.CLOSED:
                    self._read(deadline, 'the server did not answer the close within %s s'
                               % timeout)
            finally:
                self._socket.close()
            self._server.greenlet.join(max(0.0, deadline - time.monotonic()))
            if not self._server.greenlet.dead:
                self._server.greenlet.kill()
                raise AssertionError('%s: the view did not return within %s s of the close'
                                     % (self.environ['PATH_INFO'], timeout))
        self._raise_view_error()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- helpers ---------------------------------------------------------------------------

    def _check_accepted(self):
        if self.response.status_code != 101:
            raise NotAccepted(self.response)

    def _raise_view_error(self):
        """Raise what the view raised, once (as ``Client.get`` does), if asked to."""
        error, self._server.error = self._server.error, None
        if error is not None and self.raise_request_exception:
            raise error

    def _read(self, deadline, timeout_message):
        """Read once from the socket: messages are queued, pings and closes answered."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(timeout_message)
        self._socket.settimeout(left)
        try:
            data = self._socket.recv(READ_SIZE)
        except socket.timeout:
            raise TimeoutError(timeout_message) from None
        except ConnectionError:
            data = b''
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()
        for frame in self._protocol.events_received():
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._fragments = (frame.opcode, [frame.data])
            elif frame.opcode is Opcode.CONT:
                self._fragments[1].append(frame.data)
            else:
                continue   # control frames: the protocol answers them
            if frame.fin:
                (opcode, parts), self._fragments = self._fragments, None
                data = b''.join(parts)
                self._messages.append(data.decode('utf-8') if opcode is Opcode.TEXT else data)
        self._flush()

    def _flush(self):
        """Send what the protocol has to send (frames, or the end of the stream)."""
        for data in self._protocol.data_to_send():
            try:
                if data:
                    self._socket.sendall(data)
                else:
                    self._socket.shutdown(socket.SHUT_WR)
            except ConnectionError:
                self._protocol.receive_eof()   # the server is gone: nothing more comes


class _ServerSide:
    """What the server does for one connection: runs the application in a greenlet of
    its own, with the test's database connections; lends it the server end of the
    socket pair, as ``WebSocketHandler.hand_over`` lends its socket; keeps the answer
    to the handshake and the exception the view raised."""

    def __init__(self, application, environ, sock):
        self.environ = environ
        self.status = self.headers = None
        self.body = []
        self.error = None
        self.answered = Event()
        self._socket = sock
        environ[TRANSPORT_KEY] = self
        # Django turns a view's exception into a 500 and reports it with this signal
        # (Client.get re-raises it from there too); the request tells whose it is.
        self._uid = 'superserver-testing-%d' % id(self)
        got_request_exception.connect(self._view_raised, dispatch_uid=self._uid, weak=False)
        self.greenlet = gevent.spawn(self._run, application, connections.all())

    def hand_over(self):
        sock, self._socket = self._socket, None
        return b'', sock

    def _start_response(self, status, headers, exc_info=None):
        self.status, self.headers = status, headers
        self.answered.set()
        return self.body.append

    def _view_raised(self, sender, request=None, **kwargs):
        if request is not None and request.environ is self.environ:
            self.error = sys.exception()

    def _run(self, application, test_connections):
        try:
            with _lent(test_connections):
                result = application(self.environ, self._start_response)
                try:
                    self.body.extend(result)
                finally:
                    if hasattr(result, 'close'):
                        result.close()   # request_finished; the view's connections
        except Exception as error:   # raised outside Django's handler, which reports its own
            self.error = self.error or error
        finally:
            got_request_exception.disconnect(dispatch_uid=self._uid)
            if self._socket is not None:
                self._socket.close()   # never handed over: answered in plain HTTP
            self.answered.set()


@contextmanager
def _lent(test_connections):
    """Use the test's database connections in this greenlet, as Django's live server
    thread uses the test thread's: a ``TestCase``'s data lives in a transaction open on
    them. While any view holds one, it is not closed: the websocket layer closes a
    view's connections when it waits and when it ends (``extensions.db``), Django's
    request signals close old ones (its test client disconnects them for this), and
    the test's transaction must outlive the view."""
    for connection in test_connections:
        connections[connection.alias] = connection   # a greenlet-local once patched
        connection.inc_thread_sharing()
        if connection not in _holders:
            # Instance attributes, as Django's TestCase sets on connections it forbids.
            connection.close = connection.close_if_unusable_or_obsolete = _stay_open
        _holders[connection] = _holders.get(connection, 0) + 1
    try:
        yield
    finally:
        for connection in test_connections:
            connection.dec_thread_sharing()
            _holders[connection] -= 1
            if not _holders[connection]:
                del _holders[connection]
                del connection.close, connection.close_if_unusable_or_obsolete


def _stay_open():
    """``close`` and ``close_if_unusable_or_obsolete`` of a lent connection."""


def _head(status, headers):
    """The HTTP response head a server would have sent, for the client's protocol."""
    lines = ['HTTP/1.1 %s' % status, *('%s: %s' % header for header in headers), '', '']
    return '\r\n'.join(lines).encode('latin-1')


def _http_response(status, headers, body=b''):
    """An ``HttpResponse`` as a client receives it: status, reason, headers, cookies."""
    code, _, reason = status.partition(' ')
    response = HttpResponse(body, status=int(code),
                            reason=reason or HTTPStatus(int(code)).phrase)
    del response['Content-Type']
    for name, value in headers:
        if name.lower() == 'set-cookie':
            response.cookies.load(value)
        else:
            response[name] = value
    return response


class LiveServerThread(testcases.LiveServerThread):
    """Django's live server thread, serving the project with ``WebSocketServer`` (as
    ``extensions.wsgi.make_server`` builds it) in the thread's own gevent hub."""

    #: Seconds a stopping server gives open websockets (1001) and requests.
    shutdown_timeout = 5

    def run(self):
        for alias, connection in (self.connections_override or {}).items():
            connections[alias] = connection
        try:
            self.hub = gevent.get_hub()
            self._stopping = Event()
            handler = self.static_handler(testcases._MediaFilesHandler(WSGIHandler()))
            self.httpd = make_server((self.host, self.port), serving(handler), log=None)
            self.httpd.start()
            self.port = self.httpd.server_port
            self.is_ready.set()
            self._stopping.wait()
            self.httpd.shutdown(timeout=self.shutdown_timeout)
        except Exception as error:
            self.error = error
            self.is_ready.set()
        finally:
            connections.close_all()

    def terminate(self):
        if hasattr(self, 'httpd'):
            self.hub.loop.run_callback_threadsafe(self._stopping.set)
        self.join()


class LiveServerTestCase(DjangoLiveServerTestCase):
    """Django's ``LiveServerTestCase`` served by superserver: websocket views and
    Server-Sent Events work at ``live_server_url`` (``ws://`` for websockets)."""

    server_thread_class = LiveServerThread
