"""The opening handshake as pure functions of the environ."""
import pytest
from ws4py.server.wsgiutils import WebSocketWSGIApplication

from extensions.exceptions import HandshakeError
from extensions.handshake import (
    accept_key,
    is_upgrade_request,
    read_handshake,
    response_headers,
    same_origin,
)

KEY = 'dGhlIHNhbXBsZSBub25jZQ=='   # RFC 6455 section 1.3


def environ(**overrides):
    env = {
        'REQUEST_METHOD': 'GET',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'HTTP_HOST': 'example.com',
        'HTTP_UPGRADE': 'websocket',
        'HTTP_CONNECTION': 'keep-alive, Upgrade',
        'HTTP_SEC_WEBSOCKET_KEY': KEY,
        'HTTP_SEC_WEBSOCKET_VERSION': '13',
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def refused(env):
    with pytest.raises(HandshakeError) as info:
        read_handshake(env)
    return info.value


def test_accept_key_of_the_rfc_example():
    assert accept_key(KEY) == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


def test_valid_handshake():
    handshake = read_handshake(environ(HTTP_SEC_WEBSOCKET_PROTOCOL='chat, superchat',
                                       HTTP_ORIGIN='http://example.com'))
    assert handshake.key == KEY
    assert handshake.subprotocols == ('chat', 'superchat')
    assert handshake.origin == 'http://example.com'


@pytest.mark.parametrize('overrides', [
    {'HTTP_UPGRADE': 'WebSocket'},
    {'HTTP_UPGRADE': 'h2c, websocket'},
])
def test_upgrade_requests(overrides):
    assert is_upgrade_request(environ(**overrides))


@pytest.mark.parametrize('overrides', [
    {'HTTP_UPGRADE': None},
    {'HTTP_UPGRADE': 'h2c'},
    {'REQUEST_METHOD': 'POST'},    # served as plain HTTP, the Upgrade header ignored
])
def test_not_upgrade_requests(overrides):
    assert not is_upgrade_request(environ(**overrides))


@pytest.mark.parametrize('overrides, status', [
    ({'HTTP_SEC_WEBSOCKET_KEY': None}, 400),
    ({'HTTP_SEC_WEBSOCKET_KEY': 'c2hvcnQ='}, 400),           # 5 bytes
    ({'HTTP_SEC_WEBSOCKET_KEY': 'not base64 at all!!!!!!'}, 400),
    ({'HTTP_CONNECTION': 'keep-alive'}, 400),
    ({'HTTP_CONNECTION': None}, 400),
    ({'SERVER_PROTOCOL': 'HTTP/1.0'}, 400),
    ({'HTTP_SEC_WEBSOCKET_VERSION': '8'}, 426),
    ({'HTTP_SEC_WEBSOCKET_VERSION': None}, 426),
])
def test_bad_handshakes(overrides, status):
    assert refused(environ(**overrides)).status == status


def test_wrong_version_names_ours():
    assert ('Sec-WebSocket-Version', '13') in refused(environ(HTTP_SEC_WEBSOCKET_VERSION='8')).headers


def test_response_headers_with_a_chosen_subprotocol():
    handshake = read_handshake(environ(HTTP_SEC_WEBSOCKET_PROTOCOL='chat, superchat'))
    headers = dict(response_headers(handshake, 'superchat'))
    assert headers['Sec-WebSocket-Accept'] == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
    assert headers['Sec-WebSocket-Protocol'] == 'superchat'
    assert 'Sec-WebSocket-Protocol' not in dict(response_headers(handshake))


def test_a_subprotocol_not_offered_cannot_be_chosen():
    handshake = read_handshake(environ(HTTP_SEC_WEBSOCKET_PROTOCOL='chat'))
    with pytest.raises(ValueError, match='not offered'):
        response_headers(handshake, 'mqtt')


@pytest.mark.parametrize('origin, host, expected', [
    ('http://example.com', 'example.com', True),
    ('https://EXAMPLE.com', 'example.com', True),
    ('http://example.com:8000', 'example.com:8000', True),
    ('http://example.com:8000', 'example.com', False),
    ('http://evil.example', 'example.com', False),
    ('null', 'example.com', False),
    ('file://', 'example.com', False),
    ('http://example.com:bad', 'example.com', False),
])
def test_same_origin(origin, host, expected):
    assert same_origin(origin, {'HTTP_HOST': host}) is expected


# -- why the handshake is ours and not ws4py's ------------------------------------------------

def test_ws4py_handshake_crashes_without_a_key():
    app = WebSocketWSGIApplication()
    with pytest.raises(AttributeError):   # a 500 where the client deserves a 400
        app(environ(HTTP_SEC_WEBSOCKET_KEY=None), lambda status, headers: None)
