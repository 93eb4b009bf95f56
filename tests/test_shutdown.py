"""Graceful shutdown of the standalone server: ``make_server(...).serve_forever()`` and
``./manage.py superserver --noreload`` on SIGTERM and SIGINT, and the core's ``shutdown``."""
import http.client
import re
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import gevent
import pytest
import requests
import websocket

from extensions.adaptation import WebSocketHandler
from extensions.config import ServerConfig, WebSocketConfig

from .conftest import ThreadedServer, echo_application
from .server_process import PYTHON, ROOT, Process, ServerProcess, wait_until
from .in_flight import InFlight, closing, slow_request

#: What a project's own script does, as the README says: patch first, then serve.
SERVE_FOREVER = '''
import gevent_specific
import os
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.project.settings')
from extensions.wsgi import make_server
server = make_server(('127.0.0.1', 0))
server.start()
print('serving at http://127.0.0.1:%d' % server.server_port, flush=True)
server.serve_forever()
print('serve_forever returned', flush=True)
'''


class ServeForeverProcess(Process):
    def __init__(self, env):
        super().__init__([PYTHON, '-c', SERVE_FOREVER], env={'PYTHONPATH': str(ROOT), **env})
        self.url = self.wait_for(r'serving at (http://\S+)').group(1)


def echoing_sockets(server, count=20):
    sockets = [websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10)
               for _ in range(count)]
    for ws in sockets:
        ws.send('before')
        assert ws.recv() == 'before'
    return sockets


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_shuts_down_gracefully_on(signum, project_env):
    server = ServeForeverProcess(project_env)
    try:
        in_flight = InFlight(server, echoing_sockets(server))
        server.signal(signum)
        in_flight.assert_nobody_lost()
        assert server.wait(15) == 0
        server.wait_for('serve_forever returned')   # once the reader has the last lines
    finally:
        server.stop()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_manage_py_superserver_noreload_shuts_down_gracefully_on(signum, project_env):
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', env=project_env)
    try:
        in_flight = InFlight(server, echoing_sockets(server))
        server.signal(signum)
        in_flight.assert_nobody_lost()
        assert server.wait(15) == 0
    finally:
        server.stop()


def test_the_grace_period_is_a_setting_and_what_outlasts_it_is_cut(project_env):
    server = ServeForeverProcess({**project_env, 'SUPERSERVER_TEST_GRACEFUL_TIMEOUT': '1'})
    try:
        cut = {}
        request = slow_request(server, 30, cut)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(10) == 0
        assert time.monotonic() - started < 5   # the grace period is 1 s
        request.join(10)
        print('\nthe request cut by the shutdown got:', cut)
        assert 'error' in cut or cut['response'].status_code != 200   # not its answer
        server.wait_for(r'1 connection\(s\) still open after 1(\.0)? s: cut')
    finally:
        server.stop()


def test_a_second_signal_stops_at_once(project_env):
    server = ServeForeverProcess(project_env)   # graceful_timeout: the default 30 s
    try:
        cut = {}
        request = slow_request(server, 60, cut)
        server.signal(signal.SIGTERM)
        # The graceful shutdown is under way once the server stopped listening; it
        # waits for the request.
        assert wait_until(lambda: refused(server.url)), 'still listening after SIGTERM'
        assert server.process.poll() is None
        started = time.monotonic()
        server.signal(signal.SIGINT)
        assert server.wait(10) == 0
        assert time.monotonic() - started < 5   # not the 30 s grace period
        request.join(10)
        assert isinstance(cut.get('error'), requests.ConnectionError), cut   # not a 500
        # serve_forever returns once the stop has ended the request (its access log line),
        # not as soon as the graceful shutdown it replaced is killed.
        server.wait_for('serve_forever returned')
        before = server.output().partition('serve_forever returned')[0]
        assert re.search(r'"GET /slow/\?seconds=60 HTTP/1.1" 000 ', before), before
    finally:
        server.stop()


def refused(url):
    """Whether nothing listens on ``url``'s port any more."""
    try:
        socket.create_connection(('127.0.0.1', urlsplit(url).port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        pass   # the listener closed with this connection in its backlog: ask again
    return False


# -- the core, without Django ------------------------------------------------------------

def test_shutdown_ends_idle_keep_alive_connections_and_refuses_new_websockets():
    server = ThreadedServer(echo_application, websocket_config=WebSocketConfig(close_timeout=2),
                            server_config=ServerConfig(graceful_timeout=5))
    try:
        idle = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
        idle.request('GET', '/')
        assert idle.getresponse().read() == b'/'   # kept alive, now waiting
        ws = websocket.create_connection(server.url + '/', timeout=10)
        # Shut down in the server's thread, as a signal would.
        done = threading.Event()
        result = {}

        def shut_down():
            result['clean'] = server.server.shutdown(1001, 'bye')
            done.set()

        server.hub.loop.run_callback_threadsafe(gevent.spawn, shut_down)
        assert closing(ws) == (1001, 'bye')
        ws.close()
        assert done.wait(10) and result['clean']
        # The idle keep-alive connection was closed, not left to hold the shutdown.
        idle.request('GET', '/')
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            idle.getresponse()
    finally:
        server.stop()


def test_a_handshake_whose_head_arrives_during_a_shutdown_gets_503():
    line_read = threading.Event()

    class Handler(WebSocketHandler):
        def read_request(self, raw_requestline):
            line_read.set()   # the request line is in; the headers are read next
            return super().read_request(raw_requestline)

    server = ThreadedServer(echo_application, handler_class=Handler)
    try:
        with socket.create_connection(('127.0.0.1', server.port), timeout=10) as client:
            client.sendall(b'GET / HTTP/1.1\r\n')   # the request line; headers to come
            assert line_read.wait(10), 'the server did not read the request line'
            server.server.stopping = True   # as shutdown() sets it
            client.sendall(b'Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                           b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                           b'Sec-WebSocket-Version: 13\r\n\r\n')
            answer = client.recv(4096)
        assert answer.startswith(b'HTTP/1.1 503 ') and b'Retry-After: 1' in answer
    finally:
        server.server.stopping = False
        server.stop()
