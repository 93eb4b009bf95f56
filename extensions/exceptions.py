"""Every error superserver raises, in one tree; each carries what to send.

Three kinds, three paths (see STYLE.md):

- ``HandshakeError``: the client's upgrade request is unacceptable. It carries the
  HTTP status, headers and a short text to answer with; no traceback is logged.
- ``ProtocolError``: the peer broke RFC 6455 after the handshake. It carries the close
  code (RFC 6455 section 7.4.1) the connection is failed with.
- ``ConnectionClosed``: the application used a websocket that is already closed. It
  carries the close code and reason the connection ended with.

They subclass ws4py's exceptions so code written against ws4py keeps catching them.
"""
from ws4py.exc import HandshakeError as Ws4pyHandshakeError
from ws4py.exc import ProtocolException, StreamClosed


class WebSocketError(Exception):
    """Base class of every superserver websocket error."""


class HandshakeError(WebSocketError, Ws4pyHandshakeError):
    """The opening handshake is refused with an HTTP ``status`` (RFC 6455 section 4.2.1)."""

    def __init__(self, status, reason, headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


class ProtocolError(WebSocketError, ProtocolException):
    """The peer violated the protocol: fail the connection with ``code``."""

    code = 1002  # protocol error

    def __init__(self, reason, code=None):
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class InvalidPayload(ProtocolError):
    """A text message or close reason that is not valid UTF-8 (RFC 6455 section 8.1)."""

    code = 1007


class MessageTooBig(ProtocolError):
    """A message larger than the connection accepts (RFC 6455 section 7.4.1, 1009)."""

    code = 1009


class ConnectionClosed(WebSocketError, StreamClosed):
    """The websocket is closed; ``code`` and ``reason`` say how it ended."""

    def __init__(self, code, reason=''):
        super().__init__('websocket closed with code %s%s' % (code, ': ' + reason if reason else ''))
        self.code = code
        self.reason = reason
