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
    #: Accept permessage-deflate (RFC 7692) when the client offers it. A view may still
    #: refuse it for its socket: ``ws.accept(compress=False)``.
    compression: bool = True
    #: Keep each side's compression window from one message to the next. False asks
    #: both sides to compress each message alone: worse ratios, no zlib memory held
    #: between messages, and a broadcast compressed once for all its sockets.
    compression_context_takeover: bool = True
    #: The largest LZ77 window, 2**bits bytes, our compressor uses and (when the client
    #: lets us cap it) the client's; 9 to 15. Larger: better ratios, more memory.
    compression_max_window_bits: int = 12
    #: zlib's memLevel for our compressor, 1 to 9: its hash table and buffers take
    #: 2**(memory_level + 9) bytes.
    compression_memory_level: int = 5
    #: zlib's level, 1 to 9: 1 is several times faster than the usual 6 and
    #: compresses websocket messages nearly as well. Messages a window long or longer
    #: are compressed with ISA-L at this level, or its highest, 3.
    compression_level: int = 1
    #: Messages shorter than this many bytes are sent uncompressed.
    compression_min_size: int = 128
    #: A message that deflate shrinks by less than this fraction (images, PDFs) costs
    #: more CPU than it saves: the next ones go uncompressed for a while (1, 2, 4...
    #: up to 64 messages), then compression is tried again. 0: compress every message.
    compression_min_saving: float = 0.2

    def __post_init__(self):
        for name, low, high in (('compression_max_window_bits', 9, 15),
                                ('compression_memory_level', 1, 9),
                                ('compression_level', 1, 9)):
            value = getattr(self, name)
            if not (isinstance(value, int) and low <= value <= high):
                raise ValueError('%s must be an integer from %d to %d, not %r'
                                 % (name, low, high, value))


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
