"""The opening handshake (RFC 6455 section 4.2), as pure functions of the WSGI environ.

``read_handshake`` validates an upgrade request and returns what the view may choose
from (the offered subprotocols and extensions); a bad request raises ``HandshakeError``
carrying the status to answer with. ``response_headers`` builds the 101 answer once the
view accepts. Extension offers are judged by ``compression.negotiate``: a bad one is
declined, never a reason to refuse the handshake.

Why not ws4py's ``WebSocketWSGIApplication``: it answers 101 at once (no deferred
handshake), crashes with AttributeError, so a 500, on a request without a key, and
accepts the draft version 8. The accept-key constant is ws4py's.
"""
import base64
import binascii
import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from ws4py import WS_KEY

from .exceptions import HandshakeError

__all__ = ['Handshake', 'choose_subprotocol', 'is_upgrade_request', 'read_handshake',
           'response_headers', 'same_origin']

VERSION = '13'


@dataclass(frozen=True, slots=True)
class Handshake:
    key: str
    subprotocols: tuple   # offered by the client, in its order of preference
    origin: str | None    # None for non-browser clients, which send no Origin
    extensions: str = ''  # the Sec-WebSocket-Extensions offers, as the client sent them


def _tokens(value):
    return [token.strip() for token in value.split(',') if token.strip()]


def is_upgrade_request(environ):
    """Does this request ask to become a websocket? Other requests are plain HTTP.

    Only GET can be upgraded (RFC 6455 section 4.1); any other method is served as the
    plain request it also is, ignoring the Upgrade header as RFC 9110 section 7.8 allows.
    """
    return (environ.get('REQUEST_METHOD') == 'GET'
            and 'websocket' in (t.lower() for t in _tokens(environ.get('HTTP_UPGRADE', ''))))


def read_handshake(environ):
    """Validate an upgrade request (RFC 6455 section 4.2.1) or raise ``HandshakeError``."""
    if environ.get('SERVER_PROTOCOL', 'HTTP/1.1') in ('HTTP/0.9', 'HTTP/1.0'):
        raise HandshakeError(400, 'websocket handshake needs HTTP/1.1')
    if 'upgrade' not in (t.lower() for t in _tokens(environ.get('HTTP_CONNECTION', ''))):
        raise HandshakeError(400, 'Connection header does not contain "upgrade"')
    version = environ.get('HTTP_SEC_WEBSOCKET_VERSION', '').strip()
    if version != VERSION:
        # RFC 6455 section 4.4: say which version we speak.
        raise HandshakeError(426, 'unsupported websocket version %r' % version,
                             [('Sec-WebSocket-Version', VERSION)])
    key = environ.get('HTTP_SEC_WEBSOCKET_KEY', '').strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except binascii.Error:
        nonce = b''
    if len(nonce) != 16:
        raise HandshakeError(400, 'Sec-WebSocket-Key is not 16 bytes in base64')
    return Handshake(
        key=key,
        subprotocols=tuple(_tokens(environ.get('HTTP_SEC_WEBSOCKET_PROTOCOL', ''))),
        origin=environ.get('HTTP_ORIGIN'),
        extensions=environ.get('HTTP_SEC_WEBSOCKET_EXTENSIONS', ''),
    )


def accept_key(key):
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode('ascii') + WS_KEY).digest()).decode('ascii')


def choose_subprotocol(offered, supported):
    """The client's most preferred subprotocol among ``supported``, or None."""
    return next((name for name in offered if name in supported), None)


def response_headers(handshake, subprotocol=None, extensions=None):
    """The headers of the 101 response accepting ``handshake``, with the negotiated
    ``extensions`` (a Sec-WebSocket-Extensions value) if any."""
    headers = [
        ('Upgrade', 'websocket'),
        ('Connection', 'Upgrade'),
        ('Sec-WebSocket-Accept', accept_key(handshake.key)),
    ]
    if subprotocol is not None:
        if subprotocol not in handshake.subprotocols:
            raise ValueError('subprotocol %r was not offered by the client (offered: %s)'
                             % (subprotocol, ', '.join(handshake.subprotocols) or 'none'))
        headers.append(('Sec-WebSocket-Protocol', subprotocol))
    if extensions:
        headers.append(('Sec-WebSocket-Extensions', extensions))
    return headers


def origin_host(origin):
    """``host[:port]`` of an Origin header, lower-cased, or None if it is not a URL."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ('http', 'https') or not parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(origin, environ):
    """Is ``origin`` the host the request was sent to? The default origin policy."""
    host = environ.get('HTTP_HOST', '').lower()
    return bool(host) and origin_host(origin) == host
