"""permessage-deflate (RFC 7692) without I/O: the offers, the negotiation and the codec.

- ``parse_extensions(header)`` reads a ``Sec-WebSocket-Extensions`` header into offers.
- ``negotiate(header, config)`` accepts the client's first acceptable permessage-deflate
  offer and says what to answer, or declines them all (None): the connection then goes
  on uncompressed. A server never fails a handshake over an offer (RFC 7692 section 5).
- ``PerMessageDeflate`` compresses and inflates the messages of one connection with
  zlib, its compressor and decompressor made on the first message that needs each, so
  an idle connection holds no zlib state. Messages a window long or longer are
  deflated with ISA-L (python-isal), three to five times faster than zlib at a like
  ratio; its state is too large to keep per connection, so it is made per message.

Not here: which frames carry RSV1 and when inflating starts and ends, which is framing
(``protocol.py``); when to negotiate, which is the view's (``websocket.py``).
"""
import re
import zlib
from dataclasses import dataclass

from isal import isal_zlib

from .exceptions import ProtocolError

__all__ = ['EXTENSION', 'Deflate', 'PerMessageDeflate', 'negotiate', 'parse_extensions']

EXTENSION = 'permessage-deflate'
# What a sync flush ends with; senders leave it out and receivers put it back (7.2.1).
_TAIL = b'\x00\x00\xff\xff'
_PARAMETERS = frozenset({'server_no_context_takeover', 'client_no_context_takeover',
                         'server_max_window_bits', 'client_max_window_bits'})
# A connection whose messages deflate poorly skips this many at most before trying again.
MAX_SKIP = 64
# ISA-L's levels are 0 to 3: zlib's 1 and 2 match its own, 3 to 9 its best.
MAX_ISAL_LEVEL = 3
# zlib refuses to compress with a 256-byte window (its deflate turns 8 into 9), so an
# offer asking for server_max_window_bits=8 is declined.
MIN_WINDOW_BITS = 9

# RFC 7230 section 3.2.6, as RFC 6455 section 9.1 uses it.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SPACE = re.compile(r'[ \t]*')
_REST_OF_ELEMENT = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|[^,"])*')
_WINDOW_BITS = re.compile(r'8|9|1[0-5]')


@dataclass(frozen=True, slots=True)
class Deflate:
    """What a connection compresses with, as agreed in the handshake.

    ``server_max_window_bits`` is the window our compressor uses (at most what the
    client allowed, and at most our own cap); ``client_max_window_bits`` the largest the
    client may use, so the window our decompressor needs.
    """
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15


class _Declined(ValueError):
    """This offer cannot be accepted; the next one may be."""


# -- the offers ---------------------------------------------------------------------------

def parse_extensions(header):
    """The offers of a Sec-WebSocket-Extensions header, in the client's order, as
    ``(name, [(parameter, value or None), ...])`` with names in lower case.

    An element that does not parse is left out, so a malformed offer is declined like
    any other the server does not understand, and the ones after it still count.
    """
    offers, position = [], 0
    while position < len(header):
        offer, position = _parse_element(header, position)
        if offer is not None:
            offers.append(offer)
    return offers


def _parse_element(header, position):
    """The offer at ``position`` (None if empty or malformed) and where the next starts."""
    position = _SPACE.match(header, position).end()
    if header.startswith(',', position):
        return None, position + 1   # an empty list element (RFC 7230 section 7)
    try:
        name, position = _token(header, position)
        parameters = []
        while True:
            position = _SPACE.match(header, position).end()
            if position == len(header) or header[position] == ',':
                return (name.lower(), parameters), position + 1
            if header[position] != ';':
                raise _Declined('expected ";" or ","')
            key, position = _token(header, _SPACE.match(header, position + 1).end())
            position = _SPACE.match(header, position).end()
            value = None
            if header.startswith('=', position):
                value, position = _value(header, _SPACE.match(header, position + 1).end())
            parameters.append((key.lower(), value))
    except _Declined:
        return None, _REST_OF_ELEMENT.match(header, position).end() + 1


def _token(header, position):
    match = _TOKEN.match(header, position)
    if match is None:
        raise _Declined('expected a token')
    return match.group(), match.end()


def _value(header, position):
    """A parameter value: a token, or a quoted string, unescaped (RFC 7692 section 7.1)."""
    match = _QUOTED.match(header, position)
    if match is not None:
        return re.sub(r'\\(.)', r'\1', match.group(1)), match.end()
    return _token(header, position)


# -- the negotiation ------------------------------------------------------------------------

def negotiate(header, config):
    """Accept the first acceptable permessage-deflate offer of ``header``.

    Returns ``(response, deflate)``: the Sec-WebSocket-Extensions value to answer with,
    and the ``Deflate`` it agrees to. Returns None when compression is off in
    ``config`` (a ``WebSocketConfig``), nothing was offered, or every offer had to be
    declined (an unknown, repeated or invalid parameter, or a window zlib cannot use).
    """
    if not header or not config.compression:
        return None
    for name, parameters in parse_extensions(header):
        if name == EXTENSION:
            try:
                return _accept(parameters, config)
            except _Declined:
                continue
    return None


def _accept(parameters, config):
    """The answer to one offer (RFC 7692 section 7.1), or ``_Declined``."""
    offer = {}
    for key, value in parameters:
        if key not in _PARAMETERS:
            raise _Declined('unknown parameter %s' % key)
        if key in offer:
            raise _Declined('parameter %s given twice' % key)   # section 7
        offer[key] = value
    for flag in ('server_no_context_takeover', 'client_no_context_takeover'):
        if offer.get(flag) is not None:
            raise _Declined('%s takes no value' % flag)
    cap = config.compression_max_window_bits
    takeover = config.compression_context_takeover
    response = [EXTENSION]
    # Section 7.1.1: the server may refuse context takeover on either side, whatever
    # was offered; what the client refused (server_no_context_takeover) it must honour.
    server_no_takeover = 'server_no_context_takeover' in offer or not takeover
    client_no_takeover = 'client_no_context_takeover' in offer or not takeover
    if server_no_takeover:
        response.append('server_no_context_takeover')
    if client_no_takeover:
        response.append('client_no_context_takeover')
    # Section 7.1.2.1: a smaller window than allowed is always fine for our compressor;
    # the parameter is answered only when it was offered.
    server_bits = cap
    if 'server_max_window_bits' in offer:
        server_bits = min(cap, _window_bits(offer['server_max_window_bits']))
        if server_bits < MIN_WINDOW_BITS:
            raise _Declined('zlib cannot compress with a window of 2**%d' % server_bits)
        response.append('server_max_window_bits=%d' % server_bits)
    # Section 7.1.2.2: the client's window can be capped only if it said it can be.
    client_bits = 15
    if 'client_max_window_bits' in offer:
        value = offer['client_max_window_bits']
        offered = 15 if value is None else _window_bits(value)
        client_bits = min(cap, offered)
        if client_bits < offered:
            response.append('client_max_window_bits=%d' % client_bits)
    deflate = Deflate(server_no_takeover, client_no_takeover, server_bits, client_bits)
    return '; '.join(response), deflate


def _window_bits(value):
    """8 to 15, written without leading zeros (RFC 7692 section 7.1.2)."""
    if value is None or not _WINDOW_BITS.fullmatch(value):
        raise _Declined('window bits %r not in 8..15' % value)
    return int(value)


# -- the codec ------------------------------------------------------------------------------

class PerMessageDeflate:
    """Compresses the messages of one connection and inflates the peer's.

    The zlib objects are made on the first message that needs each: an idle connection
    holds none. Without context takeover they are dropped after each message, so only
    connections in the middle of a message hold zlib memory, and the frames of a
    message compressed for one such connection can be sent to all that share ``key``.

    A message that deflate shrinks by less than ``min_saving`` (images, PDFs, anything
    compressed already) costs more CPU than the bytes it saves: the next 1, then 2, 4...
    up to MAX_SKIP messages go uncompressed, then one is tried again. Uncompressed
    messages leave both compression contexts as they were (RFC 7692 section 6).
    """

    __slots__ = ('deflate', 'level', 'memory_level', 'min_size', 'min_saving', 'key',
                 '_compressor', '_history', '_decompressor', '_skip', '_backoff')

    def __init__(self, deflate, level=1, memory_level=5, min_size=0, min_saving=0.0):
        self.deflate = deflate
        self.level = level
        self.memory_level = memory_level
        #: Messages shorter than this go uncompressed (RSV1 clear, section 6).
        self.min_size = min_size
        self.min_saving = min_saving
        #: What a compressed message depends on, when it depends on nothing else (no
        #: context takeover): connections with equal keys may share its frame.
        self.key = ((min(level, MAX_ISAL_LEVEL), deflate.server_max_window_bits)
                    if deflate.server_no_context_takeover else None)
        self._compressor = None
        self._history = None    # the peer's window after a bulk message, for the next
        self._decompressor = None
        self._skip = 0      # messages still to send uncompressed
        self._backoff = 0   # how many the next poor one skips

    @classmethod
    def from_config(cls, deflate, config):
        return cls(deflate, config.compression_level, config.compression_memory_level,
                   config.compression_min_size, config.compression_min_saving)

    def compresses(self, size):
        """Is the next message, of ``size`` bytes, to be sent compressed? Asked once
        per message: it counts the skipped ones."""
        if size < self.min_size:
            return False
        if self._skip:
            self._skip -= 1
            return False
        return True

    def compress(self, payload):
        """The compressed payload of a message, its 00 00 ff ff tail removed (7.2.1).

        A message at least a window long, or any message when no context is taken
        over, is deflated alone by ISA-L. Shorter messages with context takeover go
        through the connection's zlib compressor and reuse what came before them.
        """
        bits = self.deflate.server_max_window_bits
        window = 1 << bits
        if self.deflate.server_no_context_takeover or len(payload) >= window:
            compressor = isal_zlib.compressobj(min(self.level, MAX_ISAL_LEVEL),
                                               isal_zlib.DEFLATED, -bits)
            data = compressor.compress(payload) + compressor.flush(isal_zlib.Z_SYNC_FLUSH)
            if not self.deflate.server_no_context_takeover:
                # The peer's window now holds the end of this message and nothing
                # older: the next short message's compressor starts from there.
                self._compressor = None
                self._history = bytes(payload[-window:])
        else:
            compressor = self._compressor
            if compressor is None:
                history = {'zdict': self._history} if self._history else {}
                compressor = self._compressor = zlib.compressobj(
                    self.level, zlib.DEFLATED, -bits, self.memory_level, **history)
                self._history = None
            data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if len(data) - 4 > len(payload) * (1 - self.min_saving):
            self._skip = self._backoff = min(MAX_SKIP, self._backoff * 2 or 1)
        else:
            self._backoff = 0
        return data[:-4]

    def decompress(self, data, max_length=0, end=False):
        """Inflate a piece of a message, ``end`` its last: at most ``max_length`` bytes
        (0: no limit), so a decompression bomb costs no more than the caller allows.

        At the end, the tail the sender left out is put back (7.2.2) and the stream is
        forgotten unless the client takes its context over to the next message (a
        stream ended by a final block, section 7.2.3.4, is forgotten too). A corrupt
        stream fails the connection with 1007, as RFC 7692 section 8 allows.
        """
        decompressor = self._decompressor
        if decompressor is None:
            # At least 2**9: a zlib-based sender asked for 8 bits may still use 9.
            decompressor = self._decompressor = zlib.decompressobj(
                -max(MIN_WINDOW_BITS, self.deflate.client_max_window_bits))
        try:
            data = decompressor.decompress(data, max_length)
            if end:
                room = max_length - len(data)
                if room > 0 or not max_length:
                    rest = decompressor.decompress(_TAIL, room)
                    if rest:
                        data += rest
        except zlib.error as error:
            raise ProtocolError('invalid compressed data: %s' % error, code=1007) from None
        if end and (self.deflate.client_no_context_takeover or decompressor.eof):
            self._decompressor = None
        return data
