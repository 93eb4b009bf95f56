"""ServerConnection, fed bytes directly: every rule of RFC 6455 without a socket."""
import os

import pytest
from websockets.utils import apply_mask
from ws4py.framing import Frame
from ws4py.streaming import Stream

from extensions.exceptions import ConnectionClosed, InvalidPayload, MessageTooBig
from extensions.protocol import Closed, Ping, Pong, ServerConnection, State

from .frames import BINARY, CLOSE, CONT, PING, PONG, TEXT, client_frame, close_payload, read_frame


def sent_frames(connection):
    """The frames the connection queued for the client, as (opcode, payload) pairs."""
    data, frames = b''.join(connection.data_to_send()), []
    while (frame := read_frame(data)) is not None:
        opcode, payload, data = frame
        frames.append((opcode, payload))
    assert data == b''
    return frames


def answer(connection):
    """Nothing goes out until the due close is sent; return what send_close() sends."""
    assert connection.state is State.CLOSE_DUE
    assert connection.data_to_send() == []
    connection.send_close()
    assert connection.state is State.CLOSED
    return sent_frames(connection)


def failed_with(events, code):
    assert isinstance(events[-1], Closed), events
    assert events[-1].error is not None and events[-1].code == code, events[-1]
    return events[-1]


def test_text_and_binary_messages():
    connection = ServerConnection()
    data = client_frame(TEXT, 'héllo') + client_frame(BINARY, b'\x00\xff') + client_frame(TEXT, '')
    assert connection.receive_data(data) == ['héllo', b'\x00\xff', '']


def test_fed_one_byte_at_a_time():
    connection = ServerConnection()
    data = client_frame(TEXT, 'κόσμε' * 50) + client_frame(BINARY, os.urandom(70000))
    events = []
    for i in range(len(data)):
        events += connection.receive_data(data[i:i + 1])
    assert events[0] == 'κόσμε' * 50 and len(events[1]) == 70000


def test_fragments_are_assembled_with_a_ping_between_them():
    connection = ServerConnection()
    events = connection.receive_data(
        client_frame(TEXT, 'frag', fin=False) + client_frame(PING, b'are you there')
        + client_frame(CONT, 'men', fin=False) + client_frame(CONT, 'ted'))
    assert events == [Ping(b'are you there'), 'fragmented']
    assert sent_frames(connection) == [(PONG, b'are you there')]


def test_pong_is_reported_not_answered():
    connection = ServerConnection()
    assert connection.receive_data(client_frame(PONG, b'x')) == [Pong(b'x')]
    assert connection.data_to_send() == []


@pytest.mark.parametrize('size', [0, 125, 126, 65535, 65536, 200_000])
def test_outgoing_frame_lengths(size):
    connection = ServerConnection()
    connection.send_binary(b'x' * size)
    assert sent_frames(connection) == [(BINARY, b'x' * size)]


def test_utf8_fails_fast_inside_a_frame():
    # Autobahn 6.4.3: the first chop of the frame is valid, the second is not. The
    # connection must fail before the rest of the frame arrives.
    payload = 'κόσμε'.encode() + b'\xf4\x90\x80\x80' + b'edited'
    frame = client_frame(TEXT, payload)
    header = 6  # 2 bytes + 4 of mask
    connection = ServerConnection()
    assert connection.receive_data(frame[:header + 10]) == []
    events = connection.receive_data(frame[header + 10:header + 12])
    failed_with(events, 1007)
    assert answer(connection) == [(CLOSE, close_payload(1007))]


def test_utf8_surrogate_fails_fast_after_two_bytes():
    connection = ServerConnection()
    frame = client_frame(TEXT, b'ab\xed\xa0\x80', fin=False)
    events = connection.receive_data(frame[:6 + 4])  # ...up to \xed\xa0, no \x80 yet
    failed_with(events, 1007)


def test_utf8_sequence_cut_between_fragments_is_valid():
    connection = ServerConnection()
    euro = '€'.encode()
    events = connection.receive_data(client_frame(TEXT, euro[:1], fin=False)
                                     + client_frame(CONT, euro[1:]))
    assert events == ['€']


def test_utf8_truncated_at_end_of_message():
    connection = ServerConnection()
    failed_with(connection.receive_data(client_frame(TEXT, '€'.encode()[:2])), 1007)


def test_message_too_big_fails_from_the_header_alone():
    connection = ServerConnection(max_message_size=1000)
    header_only = client_frame(BINARY, length=5 * 2**20)[:14]   # no payload at all
    error = failed_with(connection.receive_data(header_only), 1009).error
    assert isinstance(error, MessageTooBig)
    assert connection.receive_data(b'x' * 100_000) == []   # the rest is not buffered
    assert len(connection._buffer) == 0
    assert answer(connection) == [(CLOSE, close_payload(1009))]


def test_message_limit_counts_all_fragments():
    connection = ServerConnection(max_message_size=10)
    events = connection.receive_data(client_frame(TEXT, 'x' * 6, fin=False)
                                     + client_frame(CONT, 'x' * 6))
    failed_with(events, 1009)


def test_limit_none_accepts_anything():
    connection = ServerConnection(max_message_size=None)
    assert connection.receive_data(client_frame(BINARY, b'x' * 3_000_000)) == [b'x' * 3_000_000]


@pytest.mark.parametrize('data, reason', [
    (client_frame(TEXT, 'x', rsv=1), 'reserved bits'),
    (client_frame(TEXT, 'x', rsv=4), 'reserved bits'),
    (client_frame(3, 'x'), 'reserved opcode'),
    (client_frame(0xB, 'x'), 'reserved opcode'),
    (client_frame(PING, 'x', fin=False), 'fragmented control'),
    (client_frame(PING, b'x' * 126), 'over 125'),
    (client_frame(TEXT, 'x', mask=False), 'not masked'),
    (client_frame(CONT, 'x'), 'continuation'),
    (client_frame(TEXT, 'x', fin=False) + client_frame(TEXT, 'y'), 'new message'),
    (client_frame(CLOSE, b'\x03'), 'one-byte'),
])
def test_protocol_violations_close_with_1002(data, reason):
    connection = ServerConnection()
    closed = failed_with(connection.receive_data(data), 1002)
    assert reason in closed.reason
    assert answer(connection) == [(CLOSE, close_payload(1002))]


def test_messages_before_a_violation_are_delivered_and_may_be_answered():
    # Autobahn 3.2: a message and a bad frame arrive together. The echo of the message
    # may still go out; then the due 1002, whatever code the application asks for.
    connection = ServerConnection()
    events = connection.receive_data(client_frame(TEXT, 'first') + client_frame(5, 'bad'))
    assert events[0] == 'first'
    failed_with(events, 1002)
    connection.send_text('echo: first')
    connection.send_close(1000)
    assert sent_frames(connection) == [(TEXT, b'echo: first'), (CLOSE, close_payload(1002))]
    with pytest.raises(ConnectionClosed):
        connection.send_text('too late')


@pytest.mark.parametrize('code', [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_echoed(code):
    connection = ServerConnection()
    events = connection.receive_data(client_frame(CLOSE, close_payload(code, b'bye')))
    assert events == [Closed(code, 'bye')]
    assert answer(connection) == [(CLOSE, close_payload(code))]


@pytest.mark.parametrize('code', [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
def test_invalid_close_codes_fail_with_1002(code):
    connection = ServerConnection()
    failed_with(connection.receive_data(client_frame(CLOSE, close_payload(code))), 1002)


def test_empty_close_is_1005_and_answered_1000():
    connection = ServerConnection()
    assert connection.receive_data(client_frame(CLOSE)) == [Closed(1005, '')]
    assert answer(connection) == [(CLOSE, close_payload(1000))]


def test_close_reason_must_be_utf8():
    connection = ServerConnection()
    error = failed_with(connection.receive_data(client_frame(CLOSE, close_payload(1000, b'\xff'))),
                        1007).error
    assert isinstance(error, InvalidPayload)


def test_nothing_is_read_after_the_close():
    connection = ServerConnection()
    events = connection.receive_data(client_frame(CLOSE, close_payload(1000))
                                     + client_frame(TEXT, 'late'))
    assert events == [Closed(1000, '')]
    assert connection.receive_data(client_frame(TEXT, 'later')) == []


def test_closing_handshake_started_by_the_server():
    connection = ServerConnection()
    connection.send_close(4001, 'done')
    assert connection.state is State.CLOSING
    assert sent_frames(connection) == [(CLOSE, close_payload(4001, b'done'))]
    # The peer may still send data before its close frame (RFC 6455 section 5.5.1).
    events = connection.receive_data(client_frame(TEXT, 'in flight')
                                     + client_frame(CLOSE, close_payload(4001)))
    assert events == ['in flight', Closed(4001, '')]
    assert connection.data_to_send() == []   # no second close frame
    assert connection.state is State.CLOSED


def test_no_data_after_close_sent():
    connection = ServerConnection()
    connection.send_close()
    with pytest.raises(ConnectionClosed):
        connection.send_text('too late')
    connection.send_close()   # a second close does nothing
    assert len(sent_frames(connection)) == 1


@pytest.mark.parametrize('code, reason', [(1005, ''), (1006, ''), (999, ''), (1000, 'x' * 124)])
def test_close_refuses_what_may_not_be_sent(code, reason):
    with pytest.raises(ValueError):
        ServerConnection().send_close(code, reason)


# -- why the parser is ours and not ws4py's -------------------------------------------------

def test_ws4py_stream_does_not_fail_fast_inside_a_frame():
    payload = 'κόσμε'.encode() + b'\xf4\x90\x80\x80' + b'edited'
    frame = client_frame(TEXT, payload)
    stream = Stream()
    stream.parser.send(frame[:18])    # the invalid bytes are in, the frame is not complete
    assert stream.errors == []        # ws4py waits for the whole frame; we fail here (above)


def test_ws4py_stream_has_no_message_size_limit():
    stream = Stream()
    stream.parser.send(client_frame(BINARY, length=5 * 2**30)[:14])   # a 5 GiB frame header
    assert stream.errors == []        # it would buffer all of it; we close with 1009 (above)


def test_masking_matches_ws4py():
    key, data = os.urandom(4), os.urandom(1000)
    assert apply_mask(data, key) == bytes(Frame(masking_key=key).mask(data))
