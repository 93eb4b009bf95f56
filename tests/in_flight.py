"""Clients with something in flight when a server stops, and what each must see:
websockets their close frame, an SSE stream a clean end, a slow request its answer."""
import re
import threading

import requests
import websocket

from .project.views import SLOW_REQUEST


def closing(ws):
    """The (code, reason) of the close frame the server sends next; data frames skipped."""
    for _ in range(1000):
        opcode, frame = ws.recv_data_frame(False)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], 'big'), frame.data[2:].decode()
    raise AssertionError('no close frame')


def first_sse_data(response):
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith('data: '):
            return line[len('data: '):]
    raise AssertionError('the stream ended before any event')


def slow_request(server, seconds, outcome):
    """A thread requesting /slow/ from ``server`` (a ``Process``), started once the view
    runs (it says so in the server's output); ``outcome`` gets its ``response`` or the
    ``error`` that ended it."""
    start = len(server.lines)

    def request():
        try:
            outcome['response'] = requests.get(server.url + '/slow/?seconds=%s' % seconds,
                                               timeout=seconds + 30)
        except requests.RequestException as error:
            outcome['error'] = error

    thread = threading.Thread(target=request)
    thread.start()
    server.wait_for(re.escape(SLOW_REQUEST), start=start)
    return thread


class InFlight:
    """Open ``sockets`` (websockets), an SSE stream (/sse/process/) and a 2 s request
    (/slow/) on ``server``, all under way when the test stops it."""

    def __init__(self, server, sockets):
        self.sockets = sockets
        self.stream = requests.get(server.url + '/sse/process/', stream=True, timeout=10)
        first_sse_data(self.stream)
        self.slow = {}
        self.request = slow_request(server, 2, self.slow)

    def assert_nobody_lost(self, code=1001, reason='server shutting down'):
        assert {closing(ws) for ws in self.sockets} == {(code, reason)}
        # The stream ends cleanly, not with a broken chunked encoding.
        assert all(line.startswith((':', 'data: ')) or not line
                   for line in self.stream.iter_lines(decode_unicode=True))
        self.request.join(20)
        response = self.slow.get('response')
        assert response is not None, self.slow
        assert (response.status_code, response.text) == (200, 'slept')
