"""Build and read raw client frames, for tests that need bytes a normal client never sends."""
import os
import struct

from websockets.utils import apply_mask

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def client_frame(opcode, payload=b'', fin=True, rsv=0, mask=True, length=None):
    """A client frame: masked unless told otherwise, ``length`` to lie about the size."""
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    n = len(payload) if length is None else length
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack('!BB', first, mask_bit | n)
    elif n < 1 << 16:
        header = struct.pack('!BBH', first, mask_bit | 126, n)
    else:
        header = struct.pack('!BBQ', first, mask_bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + apply_mask(payload, key)


def close_payload(code, reason=b''):
    return struct.pack('!H', code) + reason


def read_frame(data):
    """(opcode, payload, rest) of the first unmasked server frame in ``data``, or None."""
    if len(data) < 2:
        return None
    opcode, n = data[0] & 0x0F, data[1] & 0x7F
    offset = 2
    if n == 126:
        (n,) = struct.unpack_from('!H', data, 2)
        offset = 4
    elif n == 127:
        (n,) = struct.unpack_from('!Q', data, 2)
        offset = 10
    if len(data) < offset + n:
        return None
    return opcode, bytes(data[offset:offset + n]), bytes(data[offset + n:])


def read_frames(sock, data, until_opcode):
    """Server frames as (first byte, payload), read from ``sock`` after ``data``, until one
    with ``until_opcode``. Raw: pings are not answered, as a client library would."""
    frames = []
    for _ in range(1000):
        while (frame := read_frame(data)) is None:
            chunk = sock.recv(65536)
            assert chunk, frames
            data += chunk
        frames.append((data[0], frame[1]))
        data = frame[2]
        if frame[0] == until_opcode:
            return frames
    raise AssertionError('no frame with opcode %d' % until_opcode)
