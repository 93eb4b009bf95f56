"""Who the client is behind a proxy: extensions/proxies.py, then over the wire.

The whole 127.0.0.0/8 network is loopback, so a client bound to 127.0.0.2 is a peer
the server (trusting 127.0.0.1 only) does not trust.
"""
import http.client
import json
import logging
import re

import pytest
import websocket

from extensions.config import ServerConfig
from extensions.proxies import forwarded_client, forwarded_scheme, trusted_networks

from .conftest import ThreadedServer
from .server_process import wait_until

TRUSTED = trusted_networks(['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'])


@pytest.mark.parametrize('peer, forwarded_for, client', [
    # A trusted proxy, one hop: the client it names.
    ('127.0.0.1', '203.0.113.7', '203.0.113.7'),
    # Several hops, the inner proxies in a trusted network: the rightmost untrusted one.
    ('127.0.0.1', '203.0.113.7, 10.1.2.3', '203.0.113.7'),
    ('127.0.0.1', '203.0.113.7,10.1.2.3,10.200.0.1', '203.0.113.7'),
    # The client sent its own header: what it forged is left of its real address.
    ('127.0.0.1', '198.51.100.1, 203.0.113.7, 10.1.2.3', '203.0.113.7'),
    # An untrusted peer's header is ignored, whatever it says.
    ('198.51.100.9', '203.0.113.7', '198.51.100.9'),
    ('11.0.0.1', '10.0.0.1', '11.0.0.1'),
    # No header, an empty one, empty entries.
    ('127.0.0.1', None, '127.0.0.1'),
    ('127.0.0.1', '', '127.0.0.1'),
    ('127.0.0.1', ' , ,203.0.113.7 , ', '203.0.113.7'),
    # An IPv4 proxy reaching a dual-stack listener, as ::ffff:a.b.c.d.
    ('::ffff:127.0.0.1', '203.0.113.7', '203.0.113.7'),
    ('::ffff:198.51.100.9', '203.0.113.7', '::ffff:198.51.100.9'),
    # IPv6, written in any of its forms: the canonical one.
    ('::1', '2001:db8::1', '2001:db8::1'),
    ('::1', '2001:DB8:0:0::1, fd00::5', '2001:db8::1'),
    ('fd12::1', '203.0.113.7', '203.0.113.7'),
    # Garbage where the client's address should be: believe nothing.
    ('127.0.0.1', 'unknown', '127.0.0.1'),
    ('127.0.0.1', '203.0.113.7, garbage', '127.0.0.1'),
    ('127.0.0.1', '203.0.113.7:4711', '127.0.0.1'),
    ('127.0.0.1', '[2001:db8::1]', '127.0.0.1'),
    # Garbage left of the client's address is never read.
    ('127.0.0.1', 'garbage, 203.0.113.7', '203.0.113.7'),
    # Every hop is a trusted proxy: the leftmost is the client (an internal one).
    ('127.0.0.1', '10.0.0.1, 10.0.0.2', '10.0.0.1'),
])
def test_forwarded_client(peer, forwarded_for, client):
    assert forwarded_client(peer, forwarded_for, TRUSTED) == client


@pytest.mark.parametrize('peer, forwarded_proto, scheme', [
    ('127.0.0.1', 'https', 'https'),
    ('127.0.0.1', 'http', 'http'),
    ('127.0.0.1', 'HTTPS', 'https'),
    ('::1', ' https ', 'https'),
    ('10.9.8.7', 'https, http', 'https'),   # several proxies: the first one's
    # Only http and https, and only from a trusted peer.
    ('127.0.0.1', 'ftp', None),
    ('127.0.0.1', 'javascript', None),
    ('127.0.0.1', '', None),
    ('127.0.0.1', None, None),
    ('198.51.100.9', 'https', None),
    ('2001:db8::1', 'https', None),
])
def test_forwarded_scheme(peer, forwarded_proto, scheme):
    assert forwarded_scheme(peer, forwarded_proto, TRUSTED) == scheme


def test_networks_are_read_loosely_and_nothing_is_trusted_by_default():
    assert trusted_networks(['10.1.2.3/8']) == trusted_networks(['10.0.0.0/8'])
    assert forwarded_client('127.0.0.1', '203.0.113.7', trusted_networks([])) == '127.0.0.1'


def test_a_garbage_proxy_setting_fails_at_start():
    with pytest.raises(ValueError):
        trusted_networks(['127.0.0.1', 'my-proxy.example'])


def application(environ, start_response):
    """Plain requests get what the server believes of the client; websockets too."""
    seen = {'addr': environ['REMOTE_ADDR'], 'port': 'REMOTE_PORT' in environ,
            'scheme': environ['wsgi.url_scheme']}
    ws = environ.get('wsgi.websocket')
    if ws is not None:
        ws.send(json.dumps(seen))
        ws.receive()   # until the client closes
        return []
    body = json.dumps(seen).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]


@pytest.fixture(scope='module')
def server():
    server = ThreadedServer(application, access_log=logging.getLogger('tests.proxies'),
                            server_config=ServerConfig(trusted_proxies=('127.0.0.1',)))
    yield server
    server.stop()


@pytest.mark.parametrize('source, headers, seen', [
    ('127.0.0.1', {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https'},
     {'addr': '203.0.113.7', 'port': False, 'scheme': 'https'}),   # the proxy's port: gone
    ('127.0.0.1', {}, {'addr': '127.0.0.1', 'port': True, 'scheme': 'http'}),
    # From 127.0.0.2, not trusted: both headers are the client's own, and ignored.
    ('127.0.0.2', {'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https'},
     {'addr': '127.0.0.2', 'port': True, 'scheme': 'http'}),
])
def test_plain_request_over_the_wire(server, source, headers, seen):
    connection = http.client.HTTPConnection('127.0.0.1', server.port, timeout=10,
                                            source_address=(source, 0))
    connection.request('GET', '/', headers=headers)
    assert json.loads(connection.getresponse().read()) == seen
    connection.close()


def test_websocket_over_the_wire_and_its_access_log_line(server, caplog):
    caplog.set_level(logging.INFO, logger='tests.proxies')
    ws = websocket.create_connection(server.url + '/ws',
                                     header=['X-Forwarded-For: 198.51.100.1, 203.0.113.7'])
    assert json.loads(ws.recv()) == {'addr': '203.0.113.7', 'port': False, 'scheme': 'http'}
    ws.close()
    pattern = re.compile(r'^WebSocket /ws from 203\.0\.113\.7 closed 1000 by the client '
                         r'after [\d.]+s, 0 in, 1 out$')

    def lines():
        return [r.getMessage() for r in caplog.records if r.name == 'tests.proxies']

    logged = wait_until(lambda: any(pattern.search(line) for line in lines()), timeout=5,
                        interval=0.01)
    assert logged, 'no access-log line like %r in %r' % (pattern.pattern, lines())
