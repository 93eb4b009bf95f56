"""What protects the server process, with real sockets: at most ``max_connections`` at
once (the others wait in the listen backlog), clients slow to send their request head,
and running out of file descriptors.
"""
import gc
import http.client
import selectors
import socket
import time

import psutil
import pytest
import websocket

from extensions.adaptation import WebSocketServer
from extensions.config import ServerConfig, WebSocketConfig

from .conftest import ThreadedServer, echo_application
from .frames import TEXT, client_frame, read_frame
from .server_process import PYTHON, Process, wait_until

HANDSHAKE = (b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'
             b'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
             b'Sec-WebSocket-Version: 13\r\n\r\n')


def get(port, path, timeout=10):
    """(status, body, seconds) of a plain GET on a new connection."""
    started = time.monotonic()
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        return response.status, response.read(), time.monotonic() - started
    finally:
        connection.close()


def receive_until(sock, complete, limit=64 * 1024):
    """Bytes from ``sock`` until ``complete(data)`` is true; at most ``limit`` bytes."""
    data = b''
    while not complete(data) and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_clients_beyond_max_connections_wait_in_the_backlog():
    server = ThreadedServer(echo_application, server_config=ServerConfig(max_connections=2))
    first = websocket.create_connection(server.url + '/', timeout=10)
    second = websocket.create_connection(server.url + '/', timeout=10)
    third = socket.create_connection(('127.0.0.1', server.port), timeout=10)   # not refused
    try:
        third.sendall(HANDSHAKE)
        third.settimeout(1)
        with pytest.raises(TimeoutError):   # neither answered nor closed: it waits
            third.recv(1)
        first.close()
        third.settimeout(10)
        head = receive_until(third, lambda data: b'\r\n\r\n' in data)
        assert head.startswith(b'HTTP/1.1 101 '), head
        third.sendall(client_frame(TEXT, 'third'))
        assert read_frame(receive_until(third, read_frame))[:2] == (TEXT, b'third')
        second.send('second')
        assert second.recv() == 'second'
    finally:
        for client in (first, second, third):
            client.close()
        server.stop()


SLOW_CLIENTS = 1000
TRICKLE_ROUNDS = 6
TRICKLE_PERIOD = 0.5   # seconds between two bytes of a slow client's head


def endings(sockets, deadline):
    """What each socket received until it was closed, or until ``deadline``."""
    received = {sock: b'' for sock in sockets}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0, deadline - time.monotonic())):
                try:
                    chunk = key.fileobj.recv(4096)
                except ConnectionResetError:
                    chunk = b''
                received[key.fileobj] += chunk
                if not chunk:
                    selector.unregister(key.fileobj)
    return received


def test_slow_clients_do_not_hold_up_the_others():
    handshake_timeout = 10
    server = ThreadedServer(echo_application,
                            websocket_config=WebSocketConfig(handshake_timeout=handshake_timeout))
    assert server.server.pool.size > SLOW_CLIENTS   # the default limit does not stop them
    started = time.monotonic()
    slow = [socket.create_connection(('127.0.0.1', server.port), timeout=10)
            for _ in range(SLOW_CLIENTS)]
    opened = time.monotonic() - started
    try:
        for sock in slow:
            sock.sendall(b'GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
        waits = []
        for _ in range(TRICKLE_ROUNDS):
            for sock in slow:
                sock.sendall(b'a')
            status, body, seconds = get(server.port, '/prompt')
            assert (status, body) == (200, b'/prompt')
            waits.append(seconds)
            time.sleep(TRICKLE_PERIOD)
        silent_since = time.monotonic()
        received = endings(slow, deadline=silent_since + handshake_timeout + 10)
        ended_after = time.monotonic() - silent_since
        answers = {data[:len(b'HTTP/1.1 408 ')] for data in received.values()}
    finally:
        for sock in slow:
            sock.close()
        server.stop()
    print('\nslowloris: %d slow clients opened in %.2f s; another client answered in '
          '%.3f s at most (%.3f s median); the slow ones got %s, all within %.1f s of '
          'their last byte (handshake_timeout %d s)'
          % (SLOW_CLIENTS, opened, max(waits), sorted(waits)[len(waits) // 2],
             sorted(answers), ended_after, handshake_timeout))
    assert max(waits) < handshake_timeout / 2
    assert answers <= {b'HTTP/1.1 408 ', b''}


def test_a_trickled_head_gets_408_at_its_deadline():
    server = ThreadedServer(echo_application, websocket_config=WebSocketConfig(handshake_timeout=1))
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=10)
    started = time.monotonic()
    answer = b''
    try:
        sock.sendall(b'GET / HTTP/1.1\r\nX-Slow: ')
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            for _ in range(16):   # a byte every 0.25 s, for 4 s at most
                if selector.select(timeout=0.25):
                    answer = sock.recv(100)
                    break
                sock.sendall(b'a')
    finally:
        sock.close()
        server.stop()
    answered_after = time.monotonic() - started
    assert answer.startswith(b'HTTP/1.1 408 ') and answered_after < 3, (answer, answered_after)


def test_closed_websockets_give_back_their_descriptors_at_once():
    server = ThreadedServer(echo_application)
    process = psutil.Process()   # the server's thread is in this process
    gc.collect()
    gc.disable()   # as a quiet server is between its rare full collections
    try:
        before = process.num_fds()
        clients = [websocket.create_connection(server.url + '/', timeout=10)
                   for _ in range(100)]
        for client in clients:
            client.close()
        wait_until(lambda: process.num_fds() <= before, timeout=5, interval=0.1)
        after_the_close = process.num_fds()
    finally:
        gc.enable()
        gc.collect()
        after_a_collection = process.num_fds()
        server.stop()
    assert after_the_close <= before, (
        '%d descriptors before, %d 5 s after 100 websockets closed, %d after gc.collect()'
        % (before, after_the_close, after_a_collection))


#: A server process with 64 file descriptors and room for 1,000 connections: it runs out
#: of descriptors long before its connection limit stops accepting.
SHORT_OF_DESCRIPTORS = '''
import gevent_specific  # noqa: F401
import logging
import resource
import sys

from extensions.adaptation import WebSocketServer
from extensions.config import ServerConfig, WebSocketConfig


def hello(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
    return [b'hello']


resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                    format='%(levelname)s %(name)s: %(message)s')
server = WebSocketServer(('127.0.0.1', 0), hello, log=None,
                         server_config=ServerConfig(max_connections=1000),
                         websocket_config=WebSocketConfig(handshake_timeout=60))
server.start()
print('listening on port', server.server_port, flush=True)
server.serve_forever()
'''
NO_DESCRIPTOR = 'no file descriptor left'


def test_out_of_file_descriptors_pauses_accepting():
    server = Process([PYTHON, '-c', SHORT_OF_DESCRIPTORS])
    clients = []
    try:
        port = int(server.wait_for(r'listening on port (\d+)').group(1))
        process = psutil.Process(server.pid)
        clients = [socket.create_connection(('127.0.0.1', port), timeout=10)
                   for _ in range(100)]
        server.wait_for(NO_DESCRIPTOR, timeout=10)
        first_warning = time.monotonic()
        cpu_before = sum(process.cpu_times()[:2])
        time.sleep(2)
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        warnings = sum(NO_DESCRIPTOR in line for line in server.lines)
        warned_for = time.monotonic() - first_warning
        fds = process.num_fds()
        for client in clients:
            client.close()
        status, body, seconds = get(port, '/after')
        alive = server.process.poll() is None
    finally:
        for client in clients:
            client.close()
        server.stop()
    print('\nEMFILE: 100 clients at a process limited to 64 descriptors (%d open): '
          '%d warnings in %.1f s (accept_pause %s s), CPU %.1f%% of a core over 2 s; '
          'a new client served %.3f s after the others closed'
          % (fds, warnings, warned_for, WebSocketServer.accept_pause, cpu / 2 * 100, seconds))
    assert alive and (status, body) == (200, b'hello')
    assert 'Traceback' not in server.output()
    assert 1 <= warnings <= warned_for / WebSocketServer.accept_pause + 2
    assert cpu / 2 < 0.5
