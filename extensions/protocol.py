"""The WebSocket protocol (RFC 6455), server side, without any I/O.

``ServerConnection`` is fed the bytes a client sends and returns what they mean
(messages, pings, pongs, the end of the stream); the frames to send back pile up in
an outgoing buffer that the I/O front-end (``extensions.websocket``) writes out. All
the rules of the protocol live here, so they are unit-tested by feeding bytes.

When the peer closes, or breaks the protocol, reading ends at once but our close
frame waits for ``send_close``: the application may first answer the messages that
came before (RFC 6455 section 7.1.7 fails the connection; it does not unsend them).

Why not ws4py's ``Stream``: it validates UTF-8 only once a whole frame has arrived
(Autobahn 6.4.3 asks for fail-fast inside a frame), buffers any frame whole however
large (no 1009), unmasks one byte at a time in Python and grows its buffers by
concatenation. This parser streams payloads through as they arrive instead, checking
sizes from the frame header and text as it goes. The opcodes are ws4py's.

With permessage-deflate negotiated (a ``compression.PerMessageDeflate`` codec), RSV1
marks the first frame of a compressed message (RFC 7692 section 6); compressed
payloads are inflated as they arrive, and the message size limit applies to what they
inflate to. Without it, any reserved bit fails the connection.
"""
import codecs
import enum
import struct
from dataclasses import dataclass

from ws4py.framing import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
)

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from .exceptions import ConnectionClosed, InvalidPayload, MessageTooBig, ProtocolError

__all__ = ['ServerConnection', 'State', 'Ping', 'Pong', 'Closed', 'SharedMessage',
           'close_code_is_valid', 'encode_frame', 'message_payload']

# A payload this small is joined to its header: one write instead of two.
_JOIN_BELOW = 16 * 1024
_UINT16 = struct.Struct('!H')
_UINT64 = struct.Struct('!Q')
_SHORT_HEADER = struct.Struct('!BB')
_MEDIUM_HEADER = struct.Struct('!BBH')
_LONG_HEADER = struct.Struct('!BBQ')


class State(enum.Enum):
    OPEN = 'open'            # messages flow both ways
    CLOSING = 'closing'      # we sent a close frame and wait for the peer's
    CLOSE_DUE = 'close due'  # the peer closed or failed: nothing more is read, and our
                             # close frame (send_close) is due after any last answers
    CLOSED = 'closed'        # both close frames exchanged


@dataclass(frozen=True, slots=True)
class Ping:
    data: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """Reading is over: the peer's close frame, or the violation we failed it for.

    ``code`` and ``reason`` are the peer's (1005 when its close frame had no code);
    when ``error`` is set they are the code and reason we closed with instead.
    """
    code: int
    reason: str
    error: ProtocolError | None = None


def close_code_is_valid(code):
    """May ``code`` travel in a close frame? (RFC 6455 section 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class ServerConnection:
    """One websocket connection as the server sees it, fed bytes, giving events.

    ``receive_data(data)`` returns a list of events: ``str`` (a text message),
    ``bytes`` (a binary message), ``Ping``, ``Pong`` and, last, ``Closed``. Pings are
    answered here; ``data_to_send()`` hands over the frames queued by these answers
    and by the ``send_*`` methods.
    """

    __slots__ = ('max_message_size', 'codec', 'state', '_due_code', '_outgoing', '_buffer',
                 '_frame', '_remaining', '_unmasked', '_control', '_message_opcode',
                 '_message_size', '_compressed', '_parts', '_decoder')

    def __init__(self, max_message_size=1 << 20, codec=None):
        self.max_message_size = max_message_size
        #: The ``PerMessageDeflate`` of a connection that negotiated it, else None.
        self.codec = codec
        self.state = State.OPEN
        self._due_code = None       # the close code to answer with in CLOSE_DUE
        self._outgoing = []
        self._buffer = bytearray()
        self._frame = None          # header of the frame being read, once complete
        self._remaining = 0         # payload bytes of that frame still to come
        self._unmasked = 0          # payload bytes of that frame unmasked so far
        self._control = bytearray()  # payload of a control frame being read
        self._message_opcode = None  # OPCODE_TEXT/BINARY while a message is open
        self._message_size = 0     # of the open message: inflated size if compressed
        self._compressed = False   # the open message is compressed
        self._parts = []
        self._decoder = None

    # -- incoming -------------------------------------------------------------------

    def receive_data(self, data):
        """Parse ``data`` and return the events it completes, in order."""
        if self.state in (State.CLOSE_DUE, State.CLOSED):
            return []
        events = []
        if self._buffer:
            self._buffer += data
            buf = self._buffer
        else:
            buf = data   # the usual case: parsed where it lies, copied only if cut
        offset = 0
        with memoryview(buf) as view:
            try:
                while self.state in (State.OPEN, State.CLOSING):
                    if self._frame is None:
                        header = self._read_header(buf, offset)
                        if header is None:
                            break
                        offset = self._start_frame(header, view, offset, events)
                        if self._frame is None:
                            continue   # a whole message, done already
                    chunk = view[offset:offset + self._remaining]
                    offset += len(chunk)
                    self._remaining -= len(chunk)
                    self._payload(chunk, events)
                    if self._remaining:
                        break
                    self._end_of_frame(events)
            except ProtocolError as error:
                self._fail(error, events)
            rest = view[offset:] if self.state in (State.OPEN, State.CLOSING) else b''
            # Nothing after the end is read (RFC 6455 section 5.5.1).
            self._buffer = bytearray(rest)
        return events

    def _read_header(self, buf, offset):
        """``(fin, opcode, length, mask, payload offset, compressed)`` of the frame header
        at ``offset``, or None until it is complete (RFC 6455 section 5.2)."""
        available = len(buf) - offset
        if available < 2:
            return None
        first, second = buf[offset], buf[offset + 1]
        fin, opcode, length = first & 0x80, first & 0x0F, second & 0x7F
        if first & 0x70:
            self._check_reserved_bits(first, opcode)
        if opcode > OPCODE_PONG or OPCODE_BINARY < opcode < OPCODE_CLOSE:
            raise ProtocolError('reserved opcode %#x' % opcode)
        if opcode >= OPCODE_CLOSE:
            # Control frames are short and never fragmented (RFC 6455 section 5.5).
            if not fin:
                raise ProtocolError('fragmented control frame')
            if length > 125:
                raise ProtocolError('control frame payload over 125 bytes')
        if not second & 0x80:
            raise ProtocolError('client frame not masked')  # RFC 6455 section 5.1
        start = offset + (2 if length < 126 else 4 if length == 126 else 10)
        if available < start - offset + 4:
            return None
        if length == 126:
            (length,) = _UINT16.unpack_from(buf, offset + 2)
        elif length == 127:
            (length,) = _UINT64.unpack_from(buf, offset + 2)
            if length >> 63:
                raise ProtocolError('payload length with the most significant bit set')
        return fin, opcode, length, bytes(buf[start:start + 4]), start + 4, first & 0x40

    def _check_reserved_bits(self, first, opcode):
        """RSV1 may only mark the first frame of a compressed data message, once
        permessage-deflate was negotiated (RFC 7692 section 6); RSV2 and RSV3 never."""
        if first & 0x30 or self.codec is None:
            raise ProtocolError('reserved bits set but no extension negotiated')
        if opcode == OPCODE_CONTINUATION:
            raise ProtocolError('RSV1 set on a continuation frame')
        if opcode >= OPCODE_CLOSE:
            raise ProtocolError('RSV1 set on a control frame')

    def _start_frame(self, header, view, offset, events):
        """Begin the frame of ``header``; a whole unfragmented message already in
        ``view`` is delivered at once. Returns the offset of what is left to read."""
        fin, opcode, length, mask, start, compressed = header
        if opcode == OPCODE_CONTINUATION:
            if self._message_opcode is None:
                raise ProtocolError('continuation frame outside a fragmented message')
        elif opcode < OPCODE_CLOSE:
            if self._message_opcode is not None:
                raise ProtocolError('new message started before the previous one ended')
            if fin and start + length <= len(view):
                events.append(self._whole_message(opcode, view[start:start + length], mask,
                                                  compressed))
                return start + length
            self._message_opcode = opcode
            self._message_size = 0
            self._compressed = compressed
            if opcode == OPCODE_TEXT:
                self._decoder = codecs.getincrementaldecoder('utf-8')()
        if opcode < OPCODE_CLOSE and not self._compressed:
            # Checked from the header alone: a payload too large is never buffered.
            # A compressed one is checked as it inflates, never buffered either.
            self._check_size(self._message_size + length)
            self._message_size += length
        self._frame = (fin, opcode, mask)
        self._remaining = length
        self._unmasked = 0
        return start

    def _check_size(self, size):
        limit = self.max_message_size
        if limit is not None and size > limit:
            raise MessageTooBig('message of at least %d bytes exceeds the limit of %d'
                                % (size, limit))

    def _whole_message(self, opcode, payload, mask, compressed):
        if compressed:
            self._message_size = 0
            payload = self._inflate(apply_mask(payload, mask), end=True)
        else:
            self._check_size(len(payload))
            payload = apply_mask(payload, mask)
        if opcode == OPCODE_BINARY:
            return payload
        try:
            return payload.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise _invalid_text(exc.reason) from None

    def _payload(self, chunk, events):
        """Unmask a piece of payload and route it to its message as it arrives."""
        if not chunk:
            return
        _, opcode, mask = self._frame
        shift = self._unmasked % 4
        self._unmasked += len(chunk)
        chunk = apply_mask(chunk, mask[shift:] + mask[:shift] if shift else mask)
        if opcode >= OPCODE_CLOSE:
            self._control += chunk
        else:
            self._message_data(self._inflate(chunk) if self._compressed else chunk)

    def _message_data(self, data):
        if self._message_opcode == OPCODE_TEXT:
            self._parts.append(self._decode(data))
        else:
            self._parts.append(data)

    def _inflate(self, data, end=False):
        """Inflate a piece of the open message, one byte past its size limit at most."""
        limit = self.max_message_size
        data = self.codec.decompress(
            data, 0 if limit is None else limit - self._message_size + 1, end)
        self._message_size += len(data)
        self._check_size(self._message_size)
        return data

    def _decode(self, chunk, final=False):
        """Decode UTF-8, failing at the first byte that cannot start valid text."""
        decoder = self._decoder
        try:
            text = decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            raise _invalid_text(exc.reason) from None
        pending = decoder.getstate()[0]
        # CPython's decoder already rejects every invalid prefix except a surrogate
        # (ED A0..BF), which it only refuses once the third byte arrives.
        if len(pending) > 1 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise _invalid_text('surrogate')
        return text

    def _end_of_frame(self, events):
        fin, opcode, _ = self._frame
        self._frame = None
        if opcode >= OPCODE_CLOSE:
            payload, self._control = bytes(self._control), bytearray()
            self._control_frame(opcode, payload, events)
        elif fin:
            if self._compressed:
                self._message_data(self._inflate(b'', end=True))
                self._compressed = False
            parts, self._parts = self._parts, []
            if self._message_opcode == OPCODE_TEXT:
                parts.append(self._decode(b'', final=True))
                events.append(''.join(parts))
            else:
                events.append(b''.join(parts))
            self._message_opcode = self._decoder = None

    def _control_frame(self, opcode, payload, events):
        if opcode == OPCODE_PING:
            events.append(Ping(payload))
            if self.state is State.OPEN:
                self._queue_frame(OPCODE_PONG, payload)
        elif opcode == OPCODE_PONG:
            events.append(Pong(payload))
        else:
            code, reason = self._parse_close(payload)
            # The answer echoes the code, as RFC 6455 section 5.5.1 suggests.
            self._end_reading(1000 if code == 1005 else code)
            events.append(Closed(code, reason))

    @staticmethod
    def _parse_close(payload):
        """The code and reason of a close frame (RFC 6455 section 5.5.1)."""
        if not payload:
            return 1005, ''
        if len(payload) == 1:
            raise ProtocolError('close frame with a one-byte payload')
        (code,) = struct.unpack_from('!H', payload)
        if not close_code_is_valid(code):
            raise ProtocolError('invalid close code %d' % code)
        try:
            reason = payload[2:].decode('utf-8')
        except UnicodeDecodeError:
            raise InvalidPayload('close reason is not valid UTF-8') from None
        return code, reason

    def _fail(self, error, events):
        """Fail the connection (RFC 6455 section 7.1.7): stop reading, close with the code."""
        self._end_reading(error.code)
        self._frame = None
        self._parts = []
        events.append(Closed(error.code, error.reason, error))

    def _end_reading(self, answer_code):
        if self.state is State.OPEN:
            self.state, self._due_code = State.CLOSE_DUE, answer_code
        else:   # CLOSING: our close frame is out already
            self.state = State.CLOSED

    # -- outgoing -------------------------------------------------------------------

    def send_text(self, text):
        self.send_data(OPCODE_TEXT, text.encode('utf-8'))

    def send_binary(self, data):
        self.send_data(OPCODE_BINARY, data)

    def send_data(self, opcode, payload):
        """Queue a text or binary message, compressed if the codec finds it long enough."""
        self._check_sendable()
        codec = self.codec
        if codec is not None and codec.compresses(len(payload)):
            self._outgoing += encode_frame(opcode, codec.compress(payload), compressed=True)
        else:
            self._outgoing += encode_frame(opcode, payload)

    def send_ping(self, data=b''):
        self._check_sendable()
        self._queue_frame(OPCODE_PING, data)   # never compressed (RFC 7692 section 6.1)

    def send_shared(self, message):
        """Queue a ``SharedMessage`` in the frame it shares with other connections."""
        self._check_sendable()
        self._outgoing += message.frame_for(self.codec)

    def _check_sendable(self):
        if self.state not in (State.OPEN, State.CLOSE_DUE):
            raise ConnectionClosed(1000 if self.state is State.CLOSING else 1006)

    def send_close(self, code=1000, reason=''):
        """Send our close frame: ``code`` starts the closing handshake; once the peer
        closed or failed (CLOSE_DUE), the due answer goes instead. Then nothing more."""
        payload = self._close_payload(code, reason)
        if self.state is State.OPEN:
            self._queue_frame(OPCODE_CLOSE, payload)
            self.state = State.CLOSING
        elif self.state is State.CLOSE_DUE:
            self._queue_frame(OPCODE_CLOSE, self._close_payload(self._due_code, ''))
            self.state = State.CLOSED

    @staticmethod
    def _close_payload(code, reason):
        if not close_code_is_valid(code):
            raise ValueError('%r is not a close code an endpoint may send' % code)
        payload = struct.pack('!H', code) + reason.encode('utf-8')
        if len(payload) > 125:
            raise ValueError('close reason longer than 123 bytes of UTF-8')
        return payload

    def _queue_frame(self, opcode, payload):
        self._outgoing += encode_frame(opcode, payload)

    def data_to_send(self):
        """Return the buffers queued for the peer, in order, and forget them."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing


def _invalid_text(reason):
    return InvalidPayload('invalid UTF-8 in text message: %s' % reason)


def encode_frame(opcode, payload, compressed=False):
    """A server frame (unmasked, final, RSV1 if ``compressed``) as buffers to send in
    order: one, or for a large payload the header and the payload itself, uncopied."""
    first = (0xC0 if compressed else 0x80) | opcode
    length = len(payload)
    if length < 126:
        header = _SHORT_HEADER.pack(first, length)
    elif length < 1 << 16:
        header = _MEDIUM_HEADER.pack(first, 126, length)
    else:
        header = _LONG_HEADER.pack(first, 127, length)
    if length < _JOIN_BELOW:
        return [header + payload]
    return [header, payload]


def message_payload(message):
    """``(opcode, payload)`` of a text (``str``) or binary (bytes-like) message."""
    if isinstance(message, str):
        return OPCODE_TEXT, message.encode('utf-8')
    if isinstance(message, (bytes, bytearray, memoryview)):
        return OPCODE_BINARY, message
    raise TypeError('websocket messages are str or bytes, not %s' % type(message).__name__)


class SharedMessage:
    """A message for many connections (a broadcast), encoded on first use, each form of
    its frame made once and shared by every connection that sends it in that form.

    Connections that send it uncompressed share one frame; those that compress without
    context takeover share one per codec ``key`` (the same settings give the same
    bytes). A connection that keeps its compression context compresses it itself: its
    compressor's state is its own, so its bytes are too.
    """

    __slots__ = ('message', '_payload', '_frames')

    def __init__(self, message):
        self.message = message
        self._payload = None
        self._frames = {}   # codec key (None: uncompressed) -> frame

    def frame_for(self, codec):
        """The frame for a connection compressing with ``codec`` (None: it does not)."""
        if self._payload is None:
            self._payload = message_payload(self.message)   # TypeError for anything else
        opcode, payload = self._payload
        if codec is None or not codec.compresses(len(payload)):
            key = None
        elif codec.key is None:
            return encode_frame(opcode, codec.compress(payload), compressed=True)
        else:
            key = codec.key
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = (
                encode_frame(opcode, payload) if key is None
                else encode_frame(opcode, codec.compress(payload), compressed=True))
        return frame
