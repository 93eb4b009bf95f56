"""WebSocketServer with plain WSGI applications: the core, without Django."""
import http.client
import logging
import re
import socket
import time

import gevent
import pytest
import websocket

from extensions.adaptation import TRANSPORT_KEY
from extensions.config import WebSocketConfig
from extensions.exceptions import ConnectionClosed

from .conftest import ThreadedServer
from .server_process import wait_until
from .frames import CLOSE, PING, TEXT, client_frame, close_payload, read_frame, read_frames

#: What the views saw, for the tests to check: path -> value.
seen = {}


def application(environ, start_response):
    ws = environ.get('wsgi.websocket')
    path = environ['PATH_INFO']
    if ws is None:
        sock = environ[TRANSPORT_KEY].socket
        nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        body = ('plain server=%s nodelay=%d' % (type(environ['wsgi.server']).__name__,
                                                 bool(nodelay))).encode()
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', str(len(body)))])
        return [body]
    if path.startswith('/echo'):
        for message in ws:
            ws.send(message)
        seen[path] = (ws.close_code, ws.close_reason)
    elif path == '/decline':
        ws.close()
    elif path == '/boom':
        ws.receive()
        raise RuntimeError('boom')
    elif path == '/timeout':
        try:
            ws.receive(timeout=0.1)
        except TimeoutError:
            ws.send('timed out')
        ws.receive()
    elif path == '/late-send':
        ws.receive()   # None: the client closed
        try:
            ws.send('too late')
        except ConnectionClosed as error:
            seen[path] = error.code
    elif path == '/close-now':
        ws.accept()
        ws.close(4001, 'server says bye')
        seen[path] = (ws.close_code, ws.close_reason)
    elif path == '/many':
        try:
            ws.send_many(['refused', 3])
        except TypeError:
            ws.send_many(['one', b'\x00two', 'three' * 100_000])   # a long one: its own buffer
            ws.send_many([])
            seen[path] = ws.messages_out
        ws.receive()
    elif path == '/slow-reader':
        gevent.sleep(0.5)   # the client sends meanwhile; reading pauses at max_queue
        ws.send(str(sum(1 for _ in iter(ws.receive, 'done'))))
    start_response('200 OK', [])
    return [b'never sent once accepted']


@pytest.fixture(scope='module')
def server():
    server = ThreadedServer(application, access_log=logging.getLogger('tests.access'),
                            websocket_config=WebSocketConfig(
                                max_queue=4, ping_interval=0.3, ping_timeout=0.3,
                                handshake_timeout=0.5))
    yield server
    server.stop()


def http_get(server, path, headers=None):
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10)
    connection.request('GET', path, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def handshake_headers(**extra):
    headers = {'Upgrade': 'websocket', 'Connection': 'Upgrade',
               'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13'}
    headers.update(extra)
    return headers


def test_plain_requests_see_the_server_and_no_websocket(server):
    status, _, body = http_get(server, '/')
    assert (status, body) == (200, b'plain server=WebSocketServer nodelay=1')


@pytest.mark.parametrize('headers, status', [
    (handshake_headers(**{'Sec-WebSocket-Key': 'short'}), 400),
    (handshake_headers(Connection='keep-alive'), 400),
    (handshake_headers(**{'Sec-WebSocket-Version': '8'}), 426),
    (handshake_headers(Origin='http://evil.example'), 403),
])
def test_bad_handshakes_get_their_status(server, headers, status):
    got, response_headers, body = http_get(server, '/echo', headers)
    assert got == status, body
    if status == 426:
        assert response_headers['Sec-WebSocket-Version'] == '13'


def test_same_origin_and_no_origin_are_allowed(server):
    for options in ({'origin': 'http://127.0.0.1:%d' % server.port}, {'suppress_origin': True}):
        ws = websocket.create_connection(server.url + '/echo', **options)
        ws.send('hi')
        assert ws.recv() == 'hi'
        ws.close()


def test_echo_and_the_peers_close_code(server):
    # A path of its own: other tests' /echo views record their close when they end.
    ws = websocket.create_connection(server.url + '/echo/close-code')
    ws.send('text')
    assert ws.recv() == 'text'
    ws.send_binary(b'\x00\x01')
    assert ws.recv() == b'\x00\x01'
    ws.close(status=4000, reason=b'done')
    wait_until(lambda: '/echo/close-code' in seen, timeout=5)
    assert seen['/echo/close-code'] == (4000, 'done')


def test_closing_before_accepting_declines_with_403(server):
    status, _, body = http_get(server, '/decline', handshake_headers())
    assert (status, body) == (403, b'websocket declined by the view\n')


def test_exception_closes_1011_and_is_logged(server, caplog):
    ws = websocket.create_connection(server.url + '/boom')
    with caplog.at_level(logging.ERROR, logger='superserver.server'):
        ws.send('go')
        opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, data[:2]) == (CLOSE, close_payload(1011))
    assert any('websocket view /boom raised' in r.getMessage() and r.exc_info
               for r in caplog.records)


def test_pings_are_answered(server):
    ws = websocket.create_connection(server.url + '/echo')
    ws.ping('are you there')
    assert ws.recv_data(control_frame=True) == (0xA, b'are you there')
    ws.close()


def test_receive_timeout(server):
    ws = websocket.create_connection(server.url + '/timeout')
    assert ws.recv() == 'timed out'
    ws.close()


def test_send_after_the_peer_closed_raises(server):
    ws = websocket.create_connection(server.url + '/late-send')
    ws.close(status=1001)
    wait_until(lambda: '/late-send' in seen, timeout=5)
    assert seen['/late-send'] == 1001


def test_send_many_sends_in_order_and_nothing_if_one_is_of_a_wrong_type(server):
    ws = websocket.create_connection(server.url + '/many')
    assert [ws.recv() for _ in range(3)] == ['one', b'\x00two', 'three' * 100_000]
    ws.close()
    assert seen['/many'] == 3


def test_full_queue_pauses_reading_and_loses_nothing(server):
    ws = websocket.create_connection(server.url + '/slow-reader')
    for i in range(50):   # max_queue is 4: the rest waits in TCP buffers
        ws.send('x' * 10_000)
    ws.send('done')
    assert ws.recv() == '50'
    ws.close()


def test_dead_peer_is_dropped_by_keepalive(server):
    ws = websocket.create_connection(server.url + '/echo')
    ws.sock.settimeout(10)
    # Raw frames from the socket: websocket-client would answer the pings it reads.
    frames = read_frames(ws.sock, b'', CLOSE)
    assert frames[0][0] == 0x80 | PING
    assert frames[-1] == (0x80 | CLOSE, close_payload(1011, b'keepalive ping timeout'))


@pytest.mark.parametrize('sent, answer', [
    (b'', b''),                                   # an idle connection is just closed
    (b'GET / HTTP/1.1\r\n', b'HTTP/1.1 408 '),    # a head cut short gets 408
])
def test_slow_request_head_is_cut_off(server, sent, answer):
    sock = socket.create_connection(('127.0.0.1', server.port))
    sock.sendall(sent)   # ...and nothing more
    sock.settimeout(5)
    started = time.monotonic()
    data = b''
    while chunk := sock.recv(100):
        data += chunk
    assert data.startswith(answer) and (answer or not data)
    assert time.monotonic() - started < 3
    sock.close()


def test_close_frame_survives_data_sent_after_it(server):
    # The client sends a bad frame and more data behind it. The server's close frame
    # must still arrive: it half-closes and reads on instead of resetting the connection.
    ws = websocket.create_connection(server.url + '/echo')
    sock = ws.sock
    sock.sendall(client_frame(TEXT, 'x', rsv=2) + client_frame(TEXT, 'y' * 100_000) * 20)
    data = b''
    sock.settimeout(5)
    while chunk := sock.recv(65536):
        data += chunk
    assert read_frame(data)[:2] == (CLOSE, close_payload(1002))


def test_close_returns_when_the_peer_answers_not_when_tcp_ends(server):
    ws = websocket.create_connection(server.url + '/close-now')
    assert ws.recv_data(control_frame=True) == (CLOSE, close_payload(4001, b'server says bye'))
    # websocket-client has answered the close frame but keeps its TCP socket open. The
    # view's close() must return now, not after close_timeout (5 s).
    wait_until(lambda: '/close-now' in seen, timeout=3)
    assert seen['/close-now'] == (1000, '')   # websocket-client answers 1000
    ws.shutdown()


def test_messages_before_a_violation_are_answered_before_the_close(server):
    # Autobahn 3.2 and kin: a message and a bad frame in one write. The view's echo of
    # the message goes out first, then the close with 1002.
    ws = websocket.create_connection(server.url + '/echo')
    ws.sock.sendall(client_frame(TEXT, 'Hello, world!') + client_frame(TEXT, 'x', rsv=2)
                    + client_frame(PING, b'never answered'))
    assert ws.recv_data(control_frame=True) == (TEXT, b'Hello, world!')
    assert ws.recv_data(control_frame=True) == (CLOSE, close_payload(1002))
    ws.shutdown()


def access_lines(caplog, pattern):
    """The server's access-log lines matching ``pattern``, once there is one (5 s)."""
    return wait_until(lambda: [r.getMessage() for r in caplog.records
                               if r.name == 'tests.access' and re.search(pattern, r.getMessage())],
                      timeout=5)


@pytest.mark.parametrize('path, logged', [
    ('/echo-then-client-closes', r'closed 4000 by the client'),
    ('/echo-then-client-drops', r'dropped \(1006\)'),
    ('/close-now', r'closed 4001 by the server'),
])
def test_access_log_says_who_closed(server, caplog, path, logged):
    caplog.set_level(logging.INFO, logger='tests.access')
    ws = websocket.create_connection(server.url + path)
    if path.endswith('closes'):
        ws.close(status=4000)
    else:
        if path == '/close-now':
            ws.recv_data(control_frame=True)   # the server's close; websocket-client answers
        ws.shutdown()
    pattern = r'^WebSocket %s from 127\.0\.0\.1:\d+ %s after [\d.]+s, \d+ in, \d+ out$' % (
        path, logged)
    assert access_lines(caplog, pattern), 'no access-log line like %r in %r' % (
        pattern, [r.getMessage() for r in caplog.records])


@pytest.mark.parametrize('frame, code', [
    (client_frame(TEXT, b'x', rsv=4), 1002),          # RSV1 without an extension
    (client_frame(TEXT, b'\xff'), 1007),              # not UTF-8
    (client_frame(TEXT, length=2**21), 1009),         # over max_message_size (1 MiB)
], ids=['1002', '1007', '1009'])
def test_access_log_says_the_server_failed_a_violating_client(server, caplog, frame, code):
    caplog.set_level(logging.INFO, logger='tests.access')
    path = '/echo-violation-%d' % code
    ws = websocket.create_connection(server.url + path)
    ws.sock.sendall(frame)
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], 'big')) == (CLOSE, code)
    ws.shutdown()
    lines = access_lines(caplog, re.escape(path))
    assert lines and re.search(r' closed %d by the server after ' % code, lines[0]), lines
