"""The limits every websocket connection runs under, with their defaults.

``WebSocketConfig`` is plain data so the server can be used without Django;
``extensions.conf`` reads it from Django settings.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSocketConfig:
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
