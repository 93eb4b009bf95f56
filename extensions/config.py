"""What a server and its websockets run under, with their defaults.

Plain data, so the server can be used without Django; ``extensions.conf`` reads both
from Django settings (``SUPERSERVER_`` + the field name in capitals).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSocketConfig:
    """The limits every websocket connection runs under."""

    #: Largest message accepted, in bytes; a larger one closes with 1009. None: no limit.
    max_message_size: int | None = 1 << 20
    #: Messages received but not yet read by the view. When full, reading pauses and
    #: TCP pushes back on the client (pongs wait too: a view that stops reading for
    #: longer than the keepalive allows sees its peer dropped).
    max_queue: int = 64
    #: Seconds between keepalive pings, and to wait for the pong before dropping a
    #: dead peer (close 1011). None: no keepalive.
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    #: Seconds to wait for the peer's half of the closing handshake.
    close_timeout: float = 5.0
    #: Seconds a client has to send a request line and headers. None: no limit.
    handshake_timeout: float | None = 10.0


@dataclass(frozen=True)
class ServerConfig:
    """What protects the process, and how it stops."""

    #: Connections (HTTP, SSE and websockets) served at once; further clients wait in
    #: the listen backlog. None: nine tenths of the open-file limit, raised to its
    #: hard limit when the server starts.
    max_connections: int | None = None
    #: Seconds a graceful shutdown gives in-flight requests, streams and closing
    #: handshakes before the remaining connections are cut.
    graceful_timeout: float = 30.0
    #: Addresses or networks (``'127.0.0.1'``, ``'10.0.0.0/8'``) of proxies whose
    #: X-Forwarded-For header is believed: a request from one of them gets the
    #: client's address in REMOTE_ADDR and the access log.
    trusted_proxies: tuple = ()
