"""Plain HTTP through WebSocketServer: request heads read into the environ, bad heads
answered 400, and keep-alive connections served in turn."""
import io
import itertools
import json
import socket
import threading
from contextlib import contextmanager

import pytest

from extensions.requesthead import MAX_HEADERS, MAX_LINE, RequestHeaders

from .conftest import ThreadedServer


#: Numbers the responses in the order the server made them.
served = itertools.count()


def environ_echo(environ, start_response):
    """Answers the HTTP_* fields and the CGI header variables as JSON; X-Served says
    how many responses the server made before this one."""
    shown = {key: value for key, value in environ.items()
             if key.startswith('HTTP_') or key in ('CONTENT_TYPE', 'CONTENT_LENGTH')}
    body = json.dumps(shown).encode()
    environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body))),
                              ('X-Served', str(next(served)))])
    return [body]


@pytest.fixture(scope='module')
def server():
    server = ThreadedServer(environ_echo)
    yield server
    server.stop()


def exchange(server, head, body=b''):
    """Send a raw request; returns (status, JSON body or the raw body)."""
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as sock:
        sock.sendall(head + body)
        status, _, content = read_response(sock.makefile('rb'))
    try:
        return status, json.loads(content)
    except ValueError:
        return status, content


def read_response(stream):
    """One response with a Content-Length from ``stream``: (status, headers, body),
    the header names lower-cased."""
    status = int(stream.readline().split()[1])
    headers = {}
    for line in iter(stream.readline, b'\r\n'):
        name, _, value = line.decode('latin-1').partition(':')
        headers[name.lower()] = value.strip()
    return status, headers, stream.read(int(headers.get('content-length', 0)))


def test_fields_reach_the_environ_as_cgi_variables(server):
    status, shown = exchange(server, (
        b'POST /form HTTP/1.1\r\nHost: example.test\r\n'
        b'Content-Type: text/plain\r\nContent-Length: 3\r\n'
        b'Accept: text/html\r\naccept: application/json\r\n'
        b'Cookie: a=1\r\nCookie: b=2\r\n'
        b'X-Folded: first\r\n  second\r\n'
        b'X-Spaced:   padded value   \r\n'
        b'X_Forwarded_For: 10.9.9.9\r\n'
        b'Connection: close\r\n\r\n'), b'abc')
    assert status == 200
    assert shown == {
        'HTTP_HOST': 'example.test',
        'CONTENT_TYPE': 'text/plain',
        'CONTENT_LENGTH': '3',
        'HTTP_ACCEPT': 'text/html,application/json',   # repeated fields joined
        'HTTP_COOKIE': 'a=1; b=2',
        'HTTP_X_FOLDED': 'first second',
        'HTTP_X_SPACED': 'padded value',
        'HTTP_CONNECTION': 'close',
        # X_Forwarded_For is dropped: it would pass for X-Forwarded-For.
    }


@pytest.mark.parametrize('head', [
    b'GET / HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n',
    b'GET / HTTP/1.1\r\nHost : a\r\n\r\n',
    b'GET / HTTP/1.1\r\n: nameless\r\n\r\n',
    b'GET / HTTP/1.1\r\n folded first\r\nHost: a\r\n\r\n',
    b'GET / HTTP/1.1\r\n' + b'X-Many: 1\r\n' * (MAX_HEADERS + 1) + b'\r\n',
    b'GET / HTTP/1.1\r\nX-Long: ' + b'x' * MAX_LINE + b'\r\n\r\n',
], ids=['no-colon', 'space-before-colon', 'no-name', 'leading-fold', 'too-many', 'too-long'])
def test_a_bad_head_gets_400_and_the_server_goes_on(server, head):
    status, _ = exchange(server, head)
    assert status == 400
    status, shown = exchange(server, b'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    assert (status, shown['HTTP_HOST']) == (200, 'a')


def test_the_parser_keeps_order_and_finds_names_in_any_case():
    stream = io.BufferedReader(io.BytesIO(
        b'Host: h\r\nContent-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody'))
    headers = RequestHeaders(stream)
    assert headers.status == ''
    assert headers.items() == [('Host', 'h'), ('Content-Type', 'text/plain'),
                               ('X-A', '1'), ('x-a', '2')]
    assert (headers.get('HOST'), headers.get('x-a'), headers.typeheader) == ('h', '1',
                                                                             'text/plain')
    assert headers.get('missing', 'default') == 'default' and 'missing' not in headers
    del headers['X-A']
    assert headers.items() == [('Host', 'h'), ('Content-Type', 'text/plain')]
    assert headers.get('x-a') is None
    assert stream.read() == b'body'   # nothing past the head was read


def test_a_head_cut_short_ends_without_error():
    headers = RequestHeaders(io.BufferedReader(io.BytesIO(b'Host: h\r\n')))
    assert (headers.status, headers.items()) == ('', [('Host', 'h')])


@contextmanager
def loop_held(threaded):
    """Hold the server thread's event loop while the body runs: what the body sends is
    all there when the server next looks."""
    holding, release = threading.Event(), threading.Event()

    def hold():
        holding.set()
        release.wait(10)

    threaded.hub.loop.run_callback_threadsafe(hold)
    assert holding.wait(10), 'the server loop did not run the callback'
    try:
        yield
    finally:
        release.set()


def test_keep_alive_connections_are_served_in_turn(server):
    """A client whose next requests are already in the server's buffer must not keep
    the others waiting: 200 pipelined requests on one connection and one on another
    arrive together; the other is answered long before the 200 are."""
    pipelined = 200
    request = b'GET / HTTP/1.1\r\nHost: a\r\n\r\n'
    with socket.create_connection(('127.0.0.1', server.port), timeout=10) as busy, \
            socket.create_connection(('127.0.0.1', server.port), timeout=10) as other:
        busy_stream, other_stream = busy.makefile('rb'), other.makefile('rb')
        for sock, stream in ((busy, busy_stream), (other, other_stream)):
            sock.sendall(request)   # a first request: both handlers wait for the next
            assert read_response(stream)[0] == 200
        with loop_held(server):
            # libev runs the watchers of one poll last-ready first: busy's, sent last.
            other.sendall(request)
            busy.sendall(request * pipelined)
        other_turn = int(read_response(other_stream)[1]['x-served'])
        busy_turns = [int(read_response(busy_stream)[1]['x-served']) for _ in range(pipelined)]
    served_before = sum(turn < other_turn for turn in busy_turns)
    assert served_before < pipelined // 4, served_before
