"""permessage-deflate over the wire, with the clients that offer it by default:
python-websockets, aiohttp, Node's ws and Chromium, and with raw frames for what no
polite client sends (RSV1 where it was not negotiated, a decompression bomb)."""
import asyncio
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import zlib

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

from extensions.config import WebSocketConfig
from extensions.pubsub import MemoryBroker

from .chromium import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 (browser: a fixture)
from .conftest import ThreadedServer
from .frames import BINARY, CLOSE, TEXT, client_frame, close_payload, read_frames
from .server_process import ROOT
from .test_browser import site, wait_for_text  # noqa: F401 (site: a fixture)
from .test_compression import zip_bomb

NODE_CLIENT = ROOT / 'tests' / 'node' / 'ws_client.js'
NODE_READY = shutil.which('node') and (ROOT / 'tests' / 'node' / 'node_modules' / 'ws').is_dir()

broker = MemoryBroker()


def application(environ, start_response):
    """/echo and /plain (compression refused by the view) first say what was
    negotiated, then echo; /news forwards the 'news' channel and publishes what it gets
    (subscribed before it says what was negotiated: the client may publish then)."""
    ws = environ['wsgi.websocket']
    path = environ['PATH_INFO']
    ws.accept(compress=path != '/plain')
    negotiated = json.dumps(ws.compression and dataclasses.asdict(ws.compression))
    if path == '/news':
        with broker.subscribe('news', websocket=ws):
            ws.send(negotiated)
            for message in ws:
                broker.publish('news', message)
    else:
        ws.send(negotiated)
        for message in ws:
            ws.send(message)
    return []


@pytest.fixture(scope='module')
def server():
    server = ThreadedServer(application, websocket_config=WebSocketConfig(
        max_message_size=1 << 20, ping_interval=None))
    yield server
    server.stop()


BLOCK = os.urandom(6000).hex()


def messages():
    """Compressible messages, text and binary, large and small, and one whose repeats
    lie 12,000 bytes apart: a client ignoring the window we allowed it would fail it."""
    return ['{"n": %d, "text": "%s"}' % (i, 'hello from the client ' * (i * 20)) for i in range(10)] \
        + [bytes(range(256)) * (i * 10) for i in range(1, 5)] + [BLOCK * 2]


def test_python_websockets(server):
    with connect(server.url + '/echo', open_timeout=10) as ws:
        assert ws.response.headers['Sec-WebSocket-Extensions'] == \
            'permessage-deflate; client_max_window_bits=12'
        (extension,) = ws.protocol.extensions
        assert extension.name == 'permessage-deflate'
        assert json.loads(ws.recv(timeout=10)) == {
            'server_no_context_takeover': False, 'client_no_context_takeover': False,
            'server_max_window_bits': 12, 'client_max_window_bits': 12}
        for message in messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_python_websockets_without_context_takeover(server):
    factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                             client_no_context_takeover=True)
    with connect(server.url + '/echo', extensions=[factory], compression=None,
                 open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))['server_no_context_takeover'] is True
        for message in messages():
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_a_view_may_refuse_compression(server):
    with connect(server.url + '/plain', open_timeout=10) as ws:
        assert 'Sec-WebSocket-Extensions' not in ws.response.headers
        assert ws.protocol.extensions == []
        assert json.loads(ws.recv(timeout=10)) is None
        ws.send('still echoed')
        assert ws.recv(timeout=10) == 'still echoed'


def test_aiohttp(server):
    # aiohttp's server accepts permessage-deflate by default; its client offers it
    # when asked to, with its usual offer ("permessage-deflate; client_max_window_bits").
    import aiohttp

    async def exchange():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url + '/echo', compress=15,
                                          timeout=aiohttp.ClientWSTimeout(
                                              ws_receive=10, ws_close=10)) as ws:
                header = ws._response.headers['Sec-WebSocket-Extensions']
                negotiated = json.loads(await ws.receive_str())
                echoes = []
                for message in messages():
                    if isinstance(message, str):
                        await ws.send_str(message)
                        echoes.append(await ws.receive_str() == message)
                    else:
                        await ws.send_bytes(message)
                        echoes.append(await ws.receive_bytes() == message)
                return header, ws.compress, negotiated, echoes

    header, compress, negotiated, echoes = asyncio.run(asyncio.wait_for(exchange(), 30))
    assert header == 'permessage-deflate; client_max_window_bits=12'
    assert compress == 12 and negotiated['client_max_window_bits'] == 12
    assert all(echoes) and len(echoes) == len(messages())


@pytest.mark.skipif(not NODE_READY and not os.environ.get('CI'),
                    reason='node and tests/node/node_modules (make test installs them)')
def test_node_ws(server):
    result = subprocess.run(['node', str(NODE_CLIENT), server.url + '/echo', '20'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report['extensions'] == 'permessage-deflate'   # ws gives the names only
    assert json.loads(report['view'])['client_max_window_bits'] == 12
    assert report['echoed'] == 20 and report['code'] == 1000
    # Both ways compressed: the bytes on the socket are a fraction of the payloads.
    assert report['bytesRead'] < report['payloadBytes'] / 5
    assert report['bytesWritten'] < report['payloadBytes'] / 5


def test_a_broadcast_reaches_compressed_and_plain_sockets(server):
    factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True)
    with connect(server.url + '/news', open_timeout=10) as taking_over, \
            connect(server.url + '/news', extensions=[factory], compression=None,
                    open_timeout=10) as shared, \
            connect(server.url + '/news', compression=None, open_timeout=10) as plain:
        assert json.loads(plain.recv(timeout=10)) is None
        assert json.loads(shared.recv(timeout=10))['server_no_context_takeover'] is True
        assert json.loads(taking_over.recv(timeout=10))['server_no_context_takeover'] is False
        for i in range(5):
            news = 'news number %d, ' % i * 50
            plain.send(news)
            for ws in (taking_over, shared, plain):
                assert ws.recv(timeout=10) == news


# -- raw frames -------------------------------------------------------------------------------

def raw_connection(server, path, offer):
    """A socket after a handshake offering ``offer``; returns it and the response head."""
    sock = socket.create_connection(('127.0.0.1', server.port), timeout=10)
    sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'
                  'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: %s\r\n\r\n'
                  % (path, offer)).encode())
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    return sock, head.decode(), rest


def test_frames_on_the_wire(server):
    sock, head, rest = raw_connection(server, '/echo', 'permessage-deflate; server_max_window_bits=10')
    with sock:
        assert 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10' in head
        text = 'compress me, ' * 100
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        sock.sendall(client_frame(TEXT, payload, rsv=4) + client_frame(CLOSE, close_payload(1000)))
        frames = read_frames(sock, rest, CLOSE)
    (hello_first, hello), (echo_first, echo), (close_first, close) = frames
    assert hello_first == echo_first == 0xC1   # FIN, RSV1, text
    decompressor = zlib.decompressobj(-10)     # the window we asked for
    assert json.loads(decompressor.decompress(hello + b'\x00\x00\xff\xff')) == {
        'server_no_context_takeover': False, 'client_no_context_takeover': False,
        'server_max_window_bits': 10, 'client_max_window_bits': 15}
    assert decompressor.decompress(echo + b'\x00\x00\xff\xff') == text.encode()
    assert close_first == 0x88 and close == close_payload(1000)   # never compressed


def test_rsv1_without_negotiation_is_a_protocol_error(server):
    sock, head, rest = raw_connection(server, '/plain', 'permessage-deflate')
    with sock:
        assert 'Sec-WebSocket-Extensions' not in head
        sock.sendall(client_frame(TEXT, b'\xf2\x48\xcd\xc9\xc9\x07\x00', rsv=4))
        frames = read_frames(sock, rest, CLOSE)
    assert frames[-1][1] == close_payload(1002)


def test_zip_bomb_closes_with_1009_and_the_server_goes_on(server):
    sock, head, rest = raw_connection(server, '/echo', 'permessage-deflate')
    with sock:
        sock.sendall(client_frame(BINARY, zip_bomb(), rsv=4))
        frames = read_frames(sock, rest, CLOSE)
    assert frames[-1][1] == close_payload(1009)
    with connect(server.url + '/echo', open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send('still here')
        assert ws.recv(timeout=10) == 'still here'


def test_a_bad_offer_does_not_fail_the_handshake(server):
    sock, head, rest = raw_connection(
        server, '/echo', 'permessage-deflate; server_max_window_bits=99; client_max_window_bits')
    with sock:
        assert head.startswith('HTTP/1.1 101') and 'Sec-WebSocket-Extensions' not in head
        sock.sendall(client_frame(TEXT, 'plain') + client_frame(CLOSE, close_payload(1000)))
        frames = read_frames(sock, rest, CLOSE)
    assert frames[1] == (0x81, b'plain')


# -- a browser --------------------------------------------------------------------------------

@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not os.environ.get('CI'),
                    reason='chromium and chromedriver are not installed (make test installs them)')
def test_chromium_negotiates_compression(site, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    driver = browser()
    driver.get(site.url + '/')
    # The demo page notes the extensions the browser agreed to.
    wait_for_text(driver, '#log li.event', 'permessage-deflate; client_max_window_bits=12')
    field = driver.find_element(By.ID, 'message')
    field.clear()
    long_text = 'Chromium compresses this. ' * 40
    field.send_keys(long_text)
    driver.find_element(By.ID, 'send').click()
    wait_for_text(driver, '#log li.received', long_text.strip())
