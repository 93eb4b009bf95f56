"""The server: gevent's WSGIServer with websocket upgrades, for any WSGI application.

    client -> WebSocketServer -> WebSocketHandler -> WebSocketMiddleware -> application

- ``WebSocketHandler`` (a ``pywsgi.WSGIHandler``) sets TCP_NODELAY, limits the time a
  client has to send its request head, believes X-Forwarded-For from trusted proxies,
  lends its socket to upgrades and ends the HTTP connection after a 101.
- ``WebSocketMiddleware`` sets ``environ['wsgi.server']`` on every request. On a valid
  upgrade request from an allowed origin it puts a ``WebSocket`` in
  ``environ['wsgi.websocket']`` and calls the application, whose view accepts it or
  answers in plain HTTP. A bad handshake is answered here (400, 403, 426).
- ``WebSocketServer`` wraps its application in the middleware, serves at most
  ``max_connections`` at once and stops gracefully (``shutdown``, SIGTERM, SIGINT):
  websockets get a close frame, in-flight requests time to finish.

Nothing here imports Django; ``extensions.wsgi`` and ``extensions.conf`` add it.
"""
import errno
import logging
import resource
import signal
import socket
import time
import types
from contextlib import contextmanager
from http import HTTPStatus

import gevent
from gevent import pywsgi

from .config import ServerConfig, WebSocketConfig
from .exceptions import HandshakeError
from .handshake import is_upgrade_request, read_handshake, same_origin
from .proxies import forwarded_client, forwarded_scheme, trusted_networks
from .requesthead import RequestHeaders
from .timestamps import http_date, log_time
from .transport import READ_SIZE
from .websocket import WebSocket

__all__ = ['WebSocketServer', 'WebSocketHandler', 'WebSocketMiddleware', 'default_origin_policy',
           'direct_call']

logger = logging.getLogger('superserver.server')

#: environ key under which the handler lends its socket to the middleware.
TRANSPORT_KEY = 'superserver.transport'


def default_origin_policy(origin, environ):
    """Clients without an Origin (not browsers) and pages of the same host may connect."""
    return origin is None or same_origin(origin, environ)


def direct_call(application):
    """``application``, bound to its ``__call__`` when it is an instance of a Python
    class. Python 3.11 calls a bound method of Python code without a new C stack frame
    but an instance through one, and the greenlet of every open websocket keeps its C
    stack: 0.7 KiB per layer and connection."""
    if isinstance(getattr(type(application), '__call__', None), types.FunctionType):
        return application.__call__
    return application


def plain_response(start_response, status, text, headers=()):
    """Answer a short text/plain response; returns the WSGI body."""
    body = (text + '\n').encode('utf-8')
    start_response('%d %s' % (status, HTTPStatus(status).phrase),
                   [('Content-Type', 'text/plain; charset=utf-8'),
                    ('Content-Length', str(len(body))), *headers])
    return [body]


_REQUEST_TIMEOUT = (b'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n'
                    b'Content-Length: 0\r\n\r\n')


#: Seconds a keep-alive connection yields before its next request: the least sleep
#: that lets the event loop poll first.
_NEXT_TURN = 1e-6

#: A response body up to this size is sent in the same write as its head.
_JOIN_BODY_BELOW = 16 * 1024

#: Fields the environ has under CGI names of their own (CONTENT_TYPE, CONTENT_LENGTH).
_CGI_HEADERS = frozenset(('CONTENT_TYPE', 'CONTENT_LENGTH'))


def _discard(data):
    """The write callable of a response that no longer has a channel to go to."""


class WebSocketMiddleware:
    """WSGI middleware turning valid upgrade requests into ``environ['wsgi.websocket']``."""

    websocket_class = WebSocket

    def __init__(self, application, server=None, config=None, origin_policy=None,
                 websocket_class=None):
        self.application = direct_call(application)
        self.server = server
        self.config = config or WebSocketConfig()
        self.origin_policy = origin_policy or default_origin_policy
        if websocket_class is not None:
            self.websocket_class = websocket_class

    def __call__(self, environ, start_response):
        environ['wsgi.server'] = self.server
        transport = environ.get(TRANSPORT_KEY)
        if transport is None or not is_upgrade_request(environ):
            # Plain HTTP, or a server that cannot lend its socket: no websocket.
            return self.application(environ, start_response)
        if getattr(self.server, 'stopping', False):
            # No new websocket on a server that is closing the ones it has.
            return plain_response(start_response, 503, 'server shutting down',
                                  [('Retry-After', '1')])
        try:
            handshake = read_handshake(environ)
            if not self.origin_policy(handshake.origin, environ):
                raise HandshakeError(403, 'origin %s may not open websockets here'
                                     % handshake.origin)
        except HandshakeError as error:
            logger.warning('websocket handshake for %s refused with %d: %s',
                           environ.get('PATH_INFO'), error.status, error.reason)
            return plain_response(start_response, error.status, error.reason, error.headers)
        websocket = self.websocket_class(environ, handshake, start_response, transport,
                                         self.config)
        environ['wsgi.websocket'] = websocket
        open_websockets = getattr(self.server, 'websockets', set())
        open_websockets.add(websocket)
        try:
            return self._serve(websocket, environ, start_response)
        finally:
            open_websockets.discard(websocket)

    def _serve(self, websocket, environ, start_response):
        """Run the view; once it accepted, its HTTP response only decides the close code."""
        statuses = []

        def view_start_response(status, headers, exc_info=None):
            if websocket.accepted or websocket.declined:
                statuses.append(status)
                return _discard
            return start_response(status, headers, exc_info)

        try:
            result = self.application(environ, view_start_response)
        except Exception:
            if not websocket.accepted:
                raise
            logger.exception('websocket view %s raised', environ.get('PATH_INFO'))
            websocket.close(1011)
            return []
        except BaseException:
            # The server is stopping this greenlet: say we are going away.
            if websocket.accepted and not websocket.closed:
                websocket.close(1001)
            raise
        if not (websocket.accepted or websocket.declined):
            return result   # answered in plain HTTP: 404, a redirect, 400...
        close = getattr(result, 'close', None)
        if close is not None:
            close()   # Django's request_finished, with nothing sent
        if websocket.declined:
            return plain_response(start_response, 403, 'websocket declined by the view')
        failed = statuses and statuses[0].startswith('5')
        websocket.close(1011 if failed else 1000)
        return []


class WebSocketHandler(pywsgi.WSGIHandler):
    """gevent's handler, lending its socket to upgrades."""

    _head_deadline = None   # the timer of the request head being read

    def handle(self):
        if self.socket.family in (socket.AF_INET, socket.AF_INET6):
            # Without it, responses without Content-Length wait ~40 ms on delayed ACKs.
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()

    def read_requestline(self):
        server = self.server
        if self.requestline is not None:
            # A keep-alive connection whose client answers at once finds its next request
            # read before any other greenlet runs: without this yield, a saturated server
            # serves the fastest connections only and the others wait for seconds. Not
            # sleep(0): it yields to greenlets already runnable but not to the loop, so
            # connections whose requests came meanwhile would still wait (up to gevent's
            # switch interval); any positive time waits for the loop's next turn.
            gevent.sleep(_NEXT_TURN)
        if server.stopping:
            return ''   # no further request on this connection: it ends here
        # One deadline for the whole head: a socket timeout would limit each read only,
        # and a client sending a byte at a time could hold its connection for ever.
        deadline = self._head_deadline
        if deadline is None:
            timeout = server.websocket_config.handshake_timeout
            if timeout:   # made once, started for each request of the connection
                deadline = self._head_deadline = gevent.Timeout(
                    timeout, TimeoutError('request head not received within %s s' % timeout))
        if deadline is not None:
            deadline.start()
        server.waiting.add(self)   # a shutdown may end the wait for a request
        try:
            line = super().read_requestline()
        except BaseException:
            self._end_head_deadline()
            raise
        finally:
            server.waiting.discard(self)
        if not line:
            self._end_head_deadline()
        return line

    def read_request(self, raw_requestline):
        try:
            return super().read_request(raw_requestline)
        finally:
            self._end_head_deadline()   # the head is in; the body has no limit

    def MessageClass(self, rfile, _seekable=0):   # pywsgi's name for its header parser
        return RequestHeaders(rfile)

    def _headers(self):
        # pywsgi's own formats each field as a line and splits it again.
        for name, value in self.headers.items():
            if '_' in name:
                continue   # HTTP_X_USER from X_User could pass for one from X-User
            key = name.replace('-', '_').upper()
            if key not in _CGI_HEADERS:
                yield 'HTTP_' + key, value

    def finalize_headers(self):
        if self.provided_date is None:
            # pywsgi formats the date for every response; this is formatted once a second.
            self.response_headers.append((b'Date', http_date()))
            self.provided_date = True
        super().finalize_headers()

    def _write_with_headers(self, data):
        # pywsgi sends the head and the body in two sendall calls: two syscalls, and
        # gevent asks the socket for its buffer size before each. A short body goes out
        # with its head in one.
        if len(data) > _JOIN_BODY_BELOW:
            return super()._write_with_headers(data)
        self.headers_sent = True
        self.finalize_headers()
        head = [b'HTTP/1.1 ', self.status, b'\r\n']
        for name, value in self.response_headers:
            head += (name, b': ', value, b'\r\n')
        head.append(b'\r\n')
        if data and self.response_use_chunked:
            head += (b'%x\r\n' % len(data), data, b'\r\n')
        else:
            head.append(data)
        self._sendall(b''.join(head))

    def _sendall(self, data):
        # Most writes fit in the socket's buffer: one send, without gevent's sendall.
        try:
            sent = self.socket.send(data)
            if sent < len(data):
                self.socket.sendall(memoryview(data)[sent:])
        except OSError as error:
            self.status = 'socket error: %s' % error
            if self.code > 0:
                self.code = -self.code
            raise
        self.response_length += len(data)

    def _end_head_deadline(self):
        if self._head_deadline is not None:
            self._head_deadline.cancel()

    def _handle_client_error(self, ex):
        # pywsgi's documented hook for bad requests. A head that took longer than
        # handshake_timeout is the client's fault: 408, no traceback.
        if isinstance(ex, TimeoutError):
            return ('408', _REQUEST_TIMEOUT)
        return super()._handle_client_error(ex)

    def get_environ(self):
        environ = super().get_environ()
        environ[TRANSPORT_KEY] = self
        self.server.requests_served += 1
        proxies = self.server.trusted_proxies
        if proxies:
            peer = environ['REMOTE_ADDR']
            client = forwarded_client(peer, environ.get('HTTP_X_FORWARDED_FOR'), proxies)
            if client != peer:
                environ['REMOTE_ADDR'] = client
                environ.pop('REMOTE_PORT', None)   # the proxy's, not the client's
            scheme = forwarded_scheme(peer, environ.get('HTTP_X_FORWARDED_PROTO'), proxies)
            if scheme is not None:
                environ['wsgi.url_scheme'] = scheme
        return environ

    def hand_over(self):
        """Give the connection to the websocket that answered 101: returns the bytes
        read past the request head (a client may send its first frame without waiting)
        and the socket. The reader is closed, freeing its buffer, and the response
        headers, sent already, are not kept for the websocket's life (the request head
        is: access logs may show its headers)."""
        timeout = self.socket.gettimeout()
        self.socket.settimeout(0.0)   # a read now takes what is there, never waits
        try:
            early = self.rfile.read1(READ_SIZE) or b''
        except OSError:
            early = b''
        finally:
            self.socket.settimeout(timeout)
        self.rfile.close()
        self.response_headers = []
        if self._head_deadline is not None:
            self._head_deadline.close()   # its libev timer, for the websocket's life
            self._head_deadline = None
        return early, self.socket

    def log_request(self):
        """One line per HTTP request, or per websocket when it ends, to ``access_log``."""
        log = self.server.access_log
        if log is None:
            return super().log_request()
        environ = self.environ or {}
        websocket = environ.get('wsgi.websocket')
        if websocket is not None and websocket.accepted:
            peer = environ.get('REMOTE_ADDR')
            if environ.get('REMOTE_PORT'):
                peer = '%s:%s' % (peer, environ['REMOTE_PORT'])
            if websocket.sent_close_code is not None:
                ending = 'closed %d by the server' % websocket.sent_close_code
            elif websocket.close_code == 1006:
                ending = 'dropped (1006)'
            else:
                ending = 'closed %s by the client' % websocket.close_code
            line = 'WebSocket %s from %s %s after %.1fs, %d in, %d out' % (
                environ.get('PATH_INFO'), peer or '-', ending,
                time.monotonic() - websocket.accepted_at,
                websocket.messages_in, websocket.messages_out)
        else:
            line = '"%s" %s %s %.1fms' % (
                self.requestline, (self._orig_status or '000').split()[0],
                self.response_length or '-', (self.time_finish - self.time_start) * 1000)
        # As runserver logs: status_code lets Django's ServerFormatter colour the line,
        # server_time is its time format (and spares the formatter a strftime per line).
        log.info(line, extra={'status_code': self.code or 0, 'server_time': log_time()})

    def handle_error(self, t, v, tb):
        if issubclass(t, gevent.GreenletExit):
            # Killed: a shutdown cut the request short. pywsgi's bare except would answer
            # 500 and go on; the connection ends unanswered instead, and the greenlet dies.
            self.close_connection = True
            raise v
        super().handle_error(t, v, tb)

    def run_application(self):
        super().run_application()
        if self.code == 101:
            # The connection became the websocket's, whose reader closes it once the
            # closing handshake is over. Let go of it: no more HTTP on it, no close here.
            self.close_connection = True
            self.socket = None


def raise_open_file_limit():
    """Raise the process's soft open-file limit to its hard limit (each connection is a
    file descriptor; soft limits are often 1024); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def connection_limit():
    """Connections one process can hold: nine tenths of its raised open-file limit (the
    rest is left for database connections, files, Redis)."""
    return max(1, raise_open_file_limit() * 9 // 10)


#: The close reasons a shutdown gives with its codes (RFC 6455 section 7.4.1; 1012 is
#: IANA's "Service Restart").
SHUTDOWN_REASONS = {1001: 'server shutting down', 1012: 'server restarting'}


class WebSocketServer(pywsgi.WSGIServer):
    """A gevent WSGI server whose application can accept websockets.

    ``websocket_config`` sets the limits of each websocket, ``server_config`` those of
    the server (connections at once, graceful timeout, trusted proxies), and
    ``origin_policy(origin, environ)`` decides which pages may connect; the middleware
    and websocket classes are hooks too. ``access_log``, a ``logging.Logger``, gets one
    line per request and per websocket instead of pywsgi's lines in ``log``.
    ``on_shutdown`` callables run when a graceful shutdown starts (to end streams).
    ``websockets`` holds the open websockets.
    """

    handler_class = WebSocketHandler
    middleware_class = WebSocketMiddleware

    #: Seconds accepting pauses when the process has no file descriptor left.
    accept_pause = 0.5

    def __init__(self, listener, application, *, websocket_config=None, server_config=None,
                 origin_policy=None, middleware_class=None, websocket_class=None,
                 access_log=None, on_shutdown=(), **kwargs):
        self.server_config = server_config or ServerConfig()
        if kwargs.get('spawn', 'default') == 'default':
            kwargs['spawn'] = self.server_config.max_connections or connection_limit()
        super().__init__(listener, application, **kwargs)
        self.access_log = access_log
        self.websockets = set()
        self.websocket_config = websocket_config or WebSocketConfig()
        self.trusted_proxies = trusted_networks(self.server_config.trusted_proxies)
        self.on_shutdown = list(on_shutdown)
        #: True once a graceful shutdown started: no new request or websocket.
        self.stopping = False
        #: Handlers waiting for a request on an open connection.
        self.waiting = set()
        #: HTTP requests and websocket handshakes handled so far.
        self.requests_served = 0
        self._shutdown = None
        if middleware_class is not None:
            self.middleware_class = middleware_class
        self.application = direct_call(self.middleware_class(
            self.application, server=self, config=self.websocket_config,
            origin_policy=origin_policy, websocket_class=websocket_class))

    def do_read(self):
        try:
            return super().do_read()
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE):
                raise
        # Out of file descriptors: the connection stays in the backlog. Pause instead
        # of retrying at once (an accept storm) or failing (a traceback per attempt).
        logger.warning('no file descriptor left to accept a connection (%d open); '
                       'accepting again in %s s', len(self.pool), self.accept_pause)
        self.stop_accepting()
        gevent.spawn_later(self.accept_pause, self._resume_accepting)
        return None

    def _resume_accepting(self):
        if not self.closed and not self.stopping:
            self.start_accepting()

    def close_websockets(self, code=1001, reason='', timeout=None):
        """Close every open websocket with ``code`` (1001: going away, 1012: restarting),
        all at once, waiting at most ``timeout`` seconds (default: close_timeout)."""
        closing = [gevent.spawn(websocket.close, code, reason)
                   for websocket in list(self.websockets)
                   if websocket.accepted and not websocket.closed]
        gevent.joinall(closing, timeout=timeout or self.websocket_config.close_timeout)

    def shutdown(self, code=1001, reason=None, timeout=None):
        """Stop gracefully, within ``timeout`` seconds (default: graceful_timeout).

        Stop accepting; end connections waiting for a request; run ``on_shutdown``
        (streams end there); close every websocket with ``code`` (1001: going away,
        1012: restarting, so clients reconnect to a new process) and wait for the
        closing handshakes; let in-flight requests finish. What is still open at the
        deadline is cut. Returns True if nothing had to be cut.
        """
        if reason is None:
            reason = SHUTDOWN_REASONS.get(code, '')
        if timeout is None:
            timeout = self.server_config.graceful_timeout
        deadline = time.monotonic() + timeout
        self.stopping = True
        self.close()
        for callback in self.on_shutdown:
            callback()
        while len(self.pool) and time.monotonic() < deadline:
            for handler in list(self.waiting):
                _end_reading(handler.socket)
            # Views still deciding may accept after the first round: close those too.
            self.close_websockets(code, reason, timeout=max(0.0, deadline - time.monotonic()))
            self.pool.join(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
        left = len(self.pool)
        if left:
            logger.warning('%d connection(s) still open after %s s: cut', left, timeout)
            self.pool.kill(block=True, timeout=1)
        return not left

    def serve_forever(self, stop_timeout=None):
        """Serve until ``stop()``; SIGTERM or SIGINT start a graceful ``shutdown`` (1001),
        a second one cuts it short."""
        if not self.started:
            self.start()
        with self._graceful_signals():
            self._stop_event.wait()
            if self._shutdown is None:
                gevent.spawn(self.stop, timeout=stop_timeout).join()
            else:
                # A second signal replaces the shutdown with a stop: wait for that one too.
                shutdown = None
                while shutdown is not self._shutdown:
                    shutdown = self._shutdown
                    shutdown.join()

    @contextmanager
    def _graceful_signals(self):
        if not gevent.get_hub().loop.default:
            # gevent delivers signals to the main thread's loop only. A server in another
            # native thread leaves them to that thread; one in a greenlet of the main
            # thread (a patched thread: the server under Django's autoreloader, whose
            # main thread watches files) takes them.
            yield
            return
        handlers = [gevent.signal_handler(signum, self._on_signal, signum)
                    for signum in (signal.SIGTERM, signal.SIGINT)]
        try:
            yield
        finally:
            for handler in handlers:
                handler.cancel()

    def _on_signal(self, signum):
        name = signal.Signals(signum).name
        if self._shutdown is None:
            logger.info('%s: shutting down gracefully (%d connection(s) open)',
                        name, len(self.pool))
            self._shutdown = gevent.spawn(self.shutdown)
        else:
            logger.warning('%s again: stopping now', name)
            self._shutdown.kill(block=False)
            self._shutdown = gevent.spawn(self.stop, timeout=0)


def _end_reading(sock):
    """Make a handler blocked reading a request see the end of the connection."""
    try:
        sock.shutdown(socket.SHUT_RD)
    except (OSError, AttributeError):
        pass   # already gone
