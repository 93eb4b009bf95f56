"""The load generator: picows websockets on uvloop, one scenario against one server.

``python -m bench.client SPEC`` runs what the JSON object SPEC describes (``scenario``
and that scenario's arguments, below) and prints its figures as one JSON line. The
harness runs it on a core of its own; picows parses and masks frames in C, so the
client stays faster than the servers it measures: the "client ceiling" rows show how
much faster, against a picows server.
"""
import asyncio
import json
import os
import resource
import signal
import sys
import time
import urllib.request
from contextlib import suppress
from urllib.parse import quote, urlsplit

import psutil
from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

from extensions.history import BEGINNING

try:
    import uvloop
except ImportError:   # plain asyncio: slower, still correct
    uvloop = None

#: Handshakes under way at once: asyncio's listen backlog holds 100 (gevent's 128), and
#: more would have the kernel drop SYNs, which costs a client a second each.
IN_FLIGHT = 100
#: Seconds one connection may take to open (TCP and handshake, IN_FLIGHT at a time).
CONNECT_TIMEOUT = 60
#: Seconds an echo or a broadcast round may take.
REPLY_TIMEOUT = 30
#: Seconds the closing handshakes of a scenario's connections may take.
CLOSE_TIMEOUT = 10
DATA = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION)


async def within(seconds, awaitable, what):
    """The result of ``awaitable``, or a TimeoutError that says ``what`` went wrong."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise TimeoutError('%s within %g s' % (what, seconds)) from None


class Connection(WSListener):
    """One websocket. Whole messages go to ``on_message`` (by default, to whoever awaits
    ``receive``); a dropped connection calls ``on_lost``."""

    def __init__(self):
        self.transport = None
        self.on_message = self._wake
        self.on_lost = self._wake_lost
        self.close_code = None   # the server's, once it closed
        self._parts = []
        self._waiter = None

    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code()
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type in DATA:
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                message = self._parts[0] if len(self._parts) == 1 else b''.join(self._parts)
                self._parts.clear()
                self.on_message(message)

    def on_ws_disconnected(self, transport):
        self.on_lost()

    async def receive(self):
        if self.transport.is_disconnected:
            raise self.lost()
        self._waiter = asyncio.get_running_loop().create_future()
        return await within(REPLY_TIMEOUT, self._waiter, 'no message')

    def lost(self):
        """The error of a connection the server ended."""
        return ConnectionError('the server closed the connection (close code: %s)'
                               % (self.close_code or 'none'))

    def close(self):
        """Start the closing handshake; ``transport.wait_disconnected()`` ends it."""
        self.on_lost = lambda: None
        self.transport.send_close(WSCloseCode.OK)

    def _wake(self, message):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(message)

    def _wake_lost(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self.lost())


async def open_connections(urls, max_seconds=None, listener=Connection):
    """(connections, failures): a websocket to each of ``urls``, opened IN_FLIGHT at a
    time, and why the others did not open (those still opening after ``max_seconds``
    are given up). Sends the Origin a browser would. ``listener()`` makes each
    connection's ``Connection``."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(url):
        origin = 'http://%s' % urlsplit(url).netloc
        async with gate:
            _, connection = await asyncio.wait_for(
                ws_connect(listener, url, extra_headers={'Origin': origin},
                           websocket_handshake_timeout=CONNECT_TIMEOUT),
                CONNECT_TIMEOUT)
            return connection

    done, pending = await asyncio.wait([asyncio.ensure_future(one(url)) for url in urls],
                                       timeout=max_seconds)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = [task.exception() for task in done if task.exception() is not None]
    failures += [TimeoutError('not open after %s s' % max_seconds)] * len(pending)
    return [task.result() for task in done if task.exception() is None], failures


async def open_all(urls, listener=Connection):
    """A websocket to each of ``urls``, or the first reason one did not open."""
    connections, failures = await open_connections(urls, listener=listener)
    if failures:
        raise ConnectionError('%d of %d connections did not open, first: %r'
                              % (len(failures), len(urls), failures[0]))
    return connections


async def echoes(connection, message):
    connection.transport.send(WSMsgType.TEXT, message)
    return await connection.receive() == message


async def close_all(connections):
    """Close with the closing handshake, as a browser leaving would (bounded: a server
    that does not answer is disconnected when this process ends)."""
    for connection in connections:
        connection.close()
    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(
            *(connection.transport.wait_disconnected() for connection in connections)),
            CLOSE_TIMEOUT)


class EchoLoop:
    """One connection's round trips until the deadline: send, wait for the echo, again.
    Driven by the frame callbacks, with no task per message."""

    def __init__(self, connection, kind, payload, deadline):
        self.connection, self.kind, self.payload, self.deadline = (
            connection, kind, payload, deadline)
        self.latencies = []
        self.wrong = 0
        self.done = asyncio.get_running_loop().create_future()
        connection.on_message = self._echoed
        connection.on_lost = self._lost

    def start(self):
        self._send(time.perf_counter())

    def _send(self, now):
        self.sent_at = now
        self.connection.transport.send(self.kind, self.payload)

    def _echoed(self, message):
        now = time.perf_counter()
        self.latencies.append(now - self.sent_at)
        self.wrong += message != self.payload
        if now < self.deadline:
            self._send(now)
        elif not self.done.done():
            self.done.set_result(now)

    def _lost(self):
        if not self.done.done():
            self.done.set_exception(self.connection.lost())


def percentile(ordered, fraction):
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def echo(url, connections, size, binary, duration):
    """S1, S2: every connection sends ``size`` bytes and waits for their echo, in a loop,
    for ``duration`` seconds."""
    clients = await open_all([url] * connections)
    for client in clients:   # the server's first-message paths, out of the timing
        if not await echoes(client, b'warm-up'):
            raise AssertionError('the warm-up message did not come back as it was sent')
    kind, payload = ((WSMsgType.BINARY, os.urandom(size)) if binary
                     else (WSMsgType.TEXT, b'x' * size))
    started = time.perf_counter()
    loops = [EchoLoop(client, kind, payload, started + duration) for client in clients]
    for loop in loops:
        loop.start()
    ended = max(await within(duration + REPLY_TIMEOUT,
                             asyncio.gather(*(loop.done for loop in loops)), 'echoes missing'))
    await close_all(clients)
    if wrong := sum(loop.wrong for loop in loops):
        raise AssertionError('%d echoes differed from what was sent' % wrong)
    latencies = sorted(latency for loop in loops for latency in loop.latencies)
    seconds = ended - started
    return {'messages': len(latencies), 'seconds': seconds,
            'messages_per_s': len(latencies) / seconds,
            'mb_per_s': len(latencies) * size / seconds / 1e6,
            'p50_ms': percentile(latencies, 0.50) * 1000,
            'p99_ms': percentile(latencies, 0.99) * 1000}


async def idle(url, connections, max_seconds, samples, settle, server_pid):
    """S3: ``connections`` idle websockets at once (as many as open in ``max_seconds``):
    how long they take to open, how much the server's RSS grows, and whether ``samples``
    of them still echo. The server is given ``settle`` seconds before each RSS reading."""
    server = psutil.Process(server_pid)
    warm_up = await open_all([url])   # lazy imports and caches, out of the baseline
    if not await echoes(warm_up[0], b'warm-up'):
        raise AssertionError('the warm-up message did not come back as it was sent')
    await close_all(warm_up)
    await asyncio.sleep(settle)
    rss_before = server.memory_info().rss
    started = time.perf_counter()
    clients, failures = await open_connections([url] * connections, max_seconds)
    opened_in = time.perf_counter() - started
    await asyncio.sleep(settle)
    rss_after = server.memory_info().rss
    sample = clients[::max(1, len(clients) // samples)][:samples]
    echoed = await asyncio.gather(
        *(echoes(client, b'sample %d' % number) for number, client in enumerate(sample)),
        return_exceptions=True)
    # Not closed one by one: this process ends, and with it every connection, at once.
    return {'opened': len(clients), 'failed': len(failures),
            'note': '{:,} of {:,} did not open, first: {!r}'.format(
                len(failures), connections, failures[0]) if failures else None,
            'open_s': opened_in,
            'rss_before_mib': rss_before / 2**20, 'rss_after_mib': rss_after / 2**20,
            'kib_per_connection': (rss_after - rss_before) / 1024 / max(1, len(clients)),
            'sampled': len(sample), 'sample_echoed': sum(result is True for result in echoed)}


class Tally:
    """Deliveries of the current broadcast; it is done when every client has it."""

    def __init__(self, clients):
        self.clients = clients
        self.wrong = 0

    def expect(self, payload):
        self.payload, self.received = payload, 0
        self.done = asyncio.get_running_loop().create_future()

    def delivered(self, message):
        if message != self.payload:
            self.wrong += 1
        else:
            self.received += 1
            if self.received == self.clients:
                self.done.set_result(None)


async def broadcast(url, clients, rounds, size, max_seconds):
    """S4: ``clients`` websockets on a broadcast endpoint; in each of ``rounds`` (fewer
    if they take more than ``max_seconds``) the first client sends ``size`` bytes, which
    the server sends to every client (itself too); the next starts when all have them."""
    connections = await open_all([url] * clients)
    tally = Tally(len(connections))
    for connection in connections:
        connection.on_message = tally.delivered

    async def one_round(number):
        payload = b'round %d ' % number
        tally.expect(payload.ljust(size, b'.'))
        connections[0].transport.send(WSMsgType.TEXT, tally.payload)
        await within(REPLY_TIMEOUT, tally.done, 'round %d did not reach every client' % number)

    await one_round(0)   # untimed: every client is a listener, first-message paths ran
    started = time.perf_counter()
    done = 0
    while done < rounds and time.perf_counter() - started < max_seconds:
        done += 1
        await one_round(done)
    seconds = time.perf_counter() - started
    await close_all(connections)
    if tally.wrong:
        raise AssertionError('%d deliveries were not the round\'s message' % tally.wrong)
    return {'rounds': done, 'seconds': seconds, 'deliveries_per_s': done * clients / seconds,
            'round_ms': seconds / done * 1000}


def post(url, method='POST'):
    """The body of a request to ``url`` (the harness's own servers, on loopback)."""
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=60) as answer:
        return answer.read()


async def poll(url, wanted, max_seconds):
    """Seconds until the JSON at ``url`` holds ``wanted`` (a dict's items), polled."""
    loop, started = asyncio.get_running_loop(), time.perf_counter()
    while time.perf_counter() - started < max_seconds:
        answer = json.loads(await loop.run_in_executor(None, post, url, 'GET'))
        if answer.items() >= wanted.items():
            return time.perf_counter() - started
        await asyncio.sleep(0.05)
    raise TimeoutError('%s did not show %s within %g s (last: %s)'
                       % (url, wanted, max_seconds, answer))


def cpu_seconds(pids):
    """CPU time (user and system) the processes ``pids`` have used so far."""
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


class Catchup(Connection):
    """A reconnected client's recovery: every message it missed, then done."""

    def __init__(self, expected):
        super().__init__()
        self.expected, self.received, self.wrong = expected, 0, 0
        self.done = asyncio.get_running_loop().create_future()
        self.on_message = self.delivered

    def delivered(self, frame):
        data = json.loads(frame).get('data')
        self.wrong += data != 'message %d' % self.received
        self.received += 1
        if self.received == self.expected and not self.done.done():
            self.done.set_result(time.perf_counter())


async def recovery(urls, messages, publish_url, pids, max_seconds):
    """R1: a websocket to each of ``urls`` (a view forwarding a channel with history,
    with positions); each notes the position of a first message, all leave, ``messages``
    are published, and all come back at once asking for what came after that position.
    How long until every client has every message it missed, in order."""
    loop = asyncio.get_running_loop()
    # From the beginning of the (new) history: the first message comes even if it is
    # published before the server's subscription is made.
    connections = await open_all(['%s?since=%s' % (url, BEGINNING) for url in urls])
    firsts = [loop.create_future() for _ in connections]
    for connection, first in zip(connections, firsts):
        connection.on_message = lambda frame, first=first: (
            first.done() or first.set_result(json.loads(frame).get('position') or frame))
    await loop.run_in_executor(None, post, publish_url + '?count=1&text=first')
    positions = await within(REPLY_TIMEOUT, asyncio.gather(*firsts), 'the first message')
    await close_all(connections)
    await loop.run_in_executor(None, post, publish_url + '?count=%d' % messages)
    cpu_before, started = cpu_seconds(pids), time.perf_counter()
    catchups = await open_all([url + '?since=' + quote(position)
                               for url, position in zip(urls, positions)],
                              listener=lambda: Catchup(messages))
    ended = max(await within(max_seconds, asyncio.gather(*(c.done for c in catchups)),
                             'every client recovering every message'))
    cpu = cpu_seconds(pids) - cpu_before
    await close_all(catchups)
    if wrong := sum(catchup.wrong for catchup in catchups):
        raise AssertionError('%d recovered messages were not the ones missed, in order' % wrong)
    seconds = ended - started
    return {'clients': len(urls), 'messages': messages, 'seconds': seconds,
            'deliveries_per_s': len(urls) * messages / seconds, 'server_cpu_s': cpu}


async def presence(urls, per_process, presence_urls, pids, redis_url, idle_seconds,
                   max_seconds):
    """P1: ``per_process`` websockets to each of two processes (``urls``) of a view that
    joins the presence of a channel as the member its query names. How long until each
    process sees them all, how long a query of the presence takes, what they cost Redis
    and the idle servers, and how long until the members of the second process are gone
    once it is killed (-9: it cannot say goodbye)."""
    import redis
    client = redis.Redis.from_url(redis_url)
    memory_before = client.info('memory')['used_memory']
    loop, started = asyncio.get_running_loop(), time.perf_counter()
    connections = await open_all(['%s?member=m%d-%d' % (url, process, number)
                                  for process, url in enumerate(urls)
                                  for number in range(per_process)])
    opened_s = time.perf_counter() - started
    everyone = {'members': len(connections), 'connections': len(connections)}
    seen_s = [await poll(url, everyone, max_seconds) for url in presence_urls]
    queries = []
    for _ in range(20):
        answer = json.loads(await loop.run_in_executor(None, post, presence_urls[0], 'GET'))
        queries.append(answer['query_ms'])
    memory_after = client.info('memory')['used_memory']
    cpu_before = [cpu_seconds([pid]) for pid in pids]
    await asyncio.sleep(idle_seconds)
    idle_cpu = [cpu_seconds([pid]) - before for pid, before in zip(pids, cpu_before)]
    os.kill(pids[1], signal.SIGKILL)
    gone_s = await poll(presence_urls[0], {'members': per_process}, max_seconds)
    await close_all([c for c in connections if not c.transport.is_disconnected])
    return {'connections': len(connections), 'open_s': opened_s, 'seen_s': max(seen_s),
            'query_ms': sorted(queries)[len(queries) // 2],
            'redis_bytes_per_connection': (memory_after - memory_before) / len(connections),
            'idle_cpu_percent': [cpu / idle_seconds * 100 for cpu in idle_cpu],
            'killed_gone_s': gone_s}


SCENARIOS = {'echo': echo, 'idle': idle, 'broadcast': broadcast, 'recovery': recovery,
             'presence': presence}


def raise_open_file_limit():
    """Soft open-file limit up to the hard one: 10,000 connections need as many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(spec):
    raise_open_file_limit()
    scenario = SCENARIOS[spec.pop('scenario')]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        print(json.dumps(runner.run(scenario(**spec))))


if __name__ == '__main__':
    main(json.loads(sys.argv[1]))
