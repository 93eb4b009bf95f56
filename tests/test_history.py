"""History and recovery: the rules (no I/O), the memory broker, the Redis streams, and two
server processes on one real redis-server with websocket and SSE clients reconnecting."""
import json
import threading

import pytest
import redis
import requests
import websocket

from extensions import history
from extensions.history import (BEGINNING, HistoryRules, MemoryHistory, Policy, Position,
                                RedisHistory, Snapshot, parse_position, recoverable)
from extensions.pubsub import Delivery, MemoryBroker, SubscriberTooSlow

from .server_process import wait_until
from .services import redis_server, requires_redis, servers  # noqa: F401 (fixtures)

HISTORY = {'h:short': {'size': 3}, 'h:brief': {'ttl': 10}, 'h:*': {'size': 100}}


@pytest.fixture
def clock(monkeypatch):
    """The time histories see, in ms, moved by the test."""
    now = [1_700_000_000_000]
    monkeypatch.setattr(history, 'now_ms', lambda: now[0])
    return now


def drain(subscription, count):
    return [subscription.get(timeout=1) for _ in range(count)]


def messages(deliveries):
    return [delivery.message for delivery in deliveries]


def assert_quiet(subscription):
    with pytest.raises(TimeoutError):
        subscription.get(timeout=0.01)


# -- positions and rules ---------------------------------------------------------------------

@pytest.mark.parametrize('text, position', [
    ('0-0', Position(0, 0)),
    ('1700000000000-1700000000000000', Position(1700000000000, 1700000000000000)),
    ('5-7', Position(5, 7)),
    ('1700000000000-0', None),    # "kept nothing" markers are never handed out
    ('', None), ('-', None), ('12', None), ('a-1', None), ('1-b', None), ('1-2-3', None),
    (' 1-2', None), ('1-²', None), ('1' * 16 + '-1', None), (None, None), (42, None),
])
def test_parse_position(text, position):
    assert parse_position(text) == position


@pytest.mark.parametrize('setting, error', [
    ([], 'must be a dict'),
    ({'': {'size': 1}}, 'not a channel pattern'),
    ({'a': 5}, 'must be a dict with'),
    ({'a': {'length': 5}}, 'must be a dict with'),
    ({'a': {}}, 'give size, ttl or both'),
    ({'a': {'size': 0}}, 'size must be a positive integer'),
    ({'a': {'size': True}}, 'size must be a positive integer'),
    ({'a': {'size': 2.5}}, 'size must be a positive integer'),
    ({'a': {'ttl': -1}}, 'ttl must be a positive number'),
    ({'a': {'ttl': '60'}}, 'ttl must be a positive number'),
])
def test_bad_history_settings_are_refused_when_the_broker_is_made(setting, error):
    with pytest.raises(ValueError, match=error):
        MemoryBroker(history=setting)


def test_first_matching_pattern_wins():
    rules = HistoryRules(HISTORY)
    assert rules.policy_for('h:short') == Policy(size=3)
    assert rules.policy_for('h:other') == Policy(size=100)
    assert rules.policy_for('group:x') is None
    assert HistoryRules().policy_for('group:x') is None


def snapshot(first, last, since_kept=False, now=10_000):
    return Snapshot(now, first and Position(*first), last and Position(*last), since_kept, [])


@pytest.mark.parametrize('since, snap, expected', [
    ((0, 0), snapshot(None, None), True),                           # BEGINNING, always
    ((5, 50), snapshot(None, None), False),                         # history gone
    ((5, 50), snapshot((5, 48), (5, 50)), True),                    # the last one
    ((4, 50), snapshot((5, 48), (5, 50)), False),                   # same n, other history
    ((5, 51), snapshot((5, 48), (5, 50)), False),                   # beyond the last
    ((5, 47), snapshot((5, 48), (5, 50)), True),                    # right before the first
    ((5, 46), snapshot((5, 48), (5, 50)), False),                   # trimmed
    ((5, 49), snapshot((5, 48), (5, 50), since_kept=True), True),   # kept
    ((5, 49), snapshot((5, 48), (5, 50), since_kept=False), False),  # not one of ours
    ((5, 49), snapshot(None, (5, 50)), False),                      # all expired
    ((9, 0), snapshot(None, None), True),                           # kept nothing, still none
    ((9, 0), snapshot((9, 9000), (9, 9003)), True),                 # began after, all kept
    ((9, 0), snapshot((9, 9001), (9, 9003)), False),                # began after, trimmed
    ((10, 0), snapshot((9, 9000), (9, 9003)), False),               # began before
])
def test_recoverable(since, snap, expected):
    assert recoverable(Position(*since), snap, Policy(size=10)) is expected


def test_kept_nothing_recovers_only_while_nothing_can_have_expired():
    policy = Policy(ttl=5)
    assert recoverable(Position(9_000, 0), snapshot(None, None, now=13_999), policy)
    assert not recoverable(Position(9_000, 0), snapshot(None, None, now=14_000), policy)


# -- the memory broker -----------------------------------------------------------------------

def test_publish_returns_positions_on_history_channels_only():
    broker = MemoryBroker(history=HISTORY)
    first, second = broker.publish('h:a', 'one'), broker.publish('h:a', 'two')
    ms, n = Position.parse(first)
    assert Position.parse(second).n == n + 1 and n == ms * 1000   # a new history's ordinals
    assert broker.publish('plain', 'three') is None


def test_deliveries_are_pairs_with_a_position():
    broker = MemoryBroker(history=HISTORY)
    subscription = broker.subscribe('h:a', 'plain')
    position = broker.publish('h:a', 'kept')
    broker.publish('plain', b'\x00not kept')
    kept, plain = drain(subscription, 2)
    assert kept == ('h:a', 'kept') and isinstance(kept, Delivery)
    channel, message = plain
    assert (channel, message) == ('plain', b'\x00not kept')
    assert (kept.channel, kept.message, kept.position, kept.reset) == ('h:a', 'kept', position,
                                                                        False)
    assert (plain.position, plain.reset) == (None, False)
    assert subscription.recovered is None


def test_since_delivers_exactly_the_missed_ones_then_live_ones():
    broker = MemoryBroker(history=HISTORY)
    positions = [broker.publish('h:a', 'm%d' % i) for i in range(10)]
    subscription = broker.subscribe('h:a', since=positions[3])
    assert subscription.recovered is True
    broker.publish('h:a', 'm10')   # live, queued behind the history
    received = drain(subscription, 7)
    assert messages(received) == ['m%d' % i for i in range(4, 11)]
    assert [d.position for d in received[:6]] == positions[4:]
    assert_quiet(subscription)


def test_history_is_read_a_page_at_a_time_while_publishing_goes_on():
    """Messages published while the history is being read come once each, in order."""
    broker = MemoryBroker(history=HISTORY)
    broker.REPLAY_PAGE = 3
    for i in range(20):
        broker.publish('h:a', i)
    subscription = broker.subscribe('h:a', since=BEGINNING)
    received = []
    for i in range(20, 60):   # one more published for each one read
        received.append(subscription.get(timeout=1))
        broker.publish('h:a', i)
    received += drain(subscription, 20)
    assert messages(received) == [str(i) for i in range(60)]
    assert_quiet(subscription)


def test_a_position_trimmed_by_size_gets_a_reset_then_live_ones_only():
    broker = MemoryBroker(history=HISTORY)
    positions = [broker.publish('h:short', 'm%d' % i) for i in range(6)]
    assert messages(drain(broker.subscribe('h:short', since=positions[2]), 3)) == [
        'm3', 'm4', 'm5']   # right before the first of the 3 kept: recovered
    subscription = broker.subscribe('h:short', since=positions[1])
    assert subscription.recovered is False
    broker.publish('h:short', 'live')
    reset, live = drain(subscription, 2)
    assert reset.reset and (reset.channel, reset.message, reset.position) == (
        'h:short', None, None)
    assert live.message == 'live'
    assert_quiet(subscription)


def test_a_position_expired_by_age_gets_a_reset(clock):
    broker = MemoryBroker(history=HISTORY)
    old = broker.publish('h:brief', 'old')
    broker.publish('h:brief', 'missed')
    clock[0] += 6_000
    recent = broker.publish('h:brief', 'recent')
    clock[0] += 5_000   # 'missed' is 11 s old now: expired; 'recent' 5 s
    assert broker.subscribe('h:brief', since=old).get(timeout=1).reset
    assert drain(broker.subscribe('h:brief', since=BEGINNING), 1)[0].position == recent
    clock[0] += 5_001   # nothing is kept, the history is gone
    assert broker.subscribe('h:brief', since=recent).get(timeout=1).reset
    assert broker.subscribe('h:brief', since=BEGINNING).recovered is True
    anew = Position.parse(broker.publish('h:brief', 'anew'))
    assert anew.n == anew.ms * 1000   # ordinals start again, above the old ones


def test_a_position_from_another_run_or_malformed_gets_a_reset(clock):
    earlier = MemoryBroker(history=HISTORY)
    positions = [earlier.publish('h:a', 'x') for _ in range(3)]
    clock[0] += 1
    broker = MemoryBroker(history=HISTORY)
    for _ in range(5):
        broker.publish('h:a', 'y')
    for since in (*positions, 'garbage', '1-0', '99999999999999-1'):
        subscription = broker.subscribe('h:a', since=since)
        assert subscription.recovered is False
        assert subscription.get(timeout=1).reset, since
        assert_quiet(subscription)


def test_beginning_delivers_everything_kept():
    broker = MemoryBroker(history=HISTORY)
    assert broker.subscribe('h:short', since=BEGINNING).recovered is True   # nothing yet
    for i in range(5):
        broker.publish('h:short', i)
    assert messages(drain(broker.subscribe('h:short', since=BEGINNING), 3)) == ['2', '3', '4']


def test_since_for_several_channels():
    broker = MemoryBroker(history=HISTORY)
    a = [broker.publish('h:a', 'a%d' % i) for i in range(3)]
    b = [broker.publish('h:b', 'b%d' % i) for i in range(3)]
    subscription = broker.subscribe('h:a', 'h:b', 'plain', since={'h:a': a[0], 'h:b': b[1],
                                                                  'plain': None})
    broker.publish('plain', 'p')
    assert sorted(messages(drain(subscription, 4))) == ['a1', 'a2', 'b2', 'p']
    with pytest.raises(ValueError, match='for one channel'):
        broker.subscribe('h:a', 'h:b', since=a[0])
    with pytest.raises(ValueError, match="'h:c', which is not subscribed"):
        broker.subscribe('h:a', since={'h:c': a[0]})


def test_since_on_a_channel_without_history_is_a_programming_error():
    broker = MemoryBroker(history=HISTORY)
    with pytest.raises(ValueError, match="'plain' keeps no history"):
        broker.subscribe('plain', since=BEGINNING)
    assert broker._local == {}


def test_live_ones_overflowing_during_recovery_are_too_slow():
    broker = MemoryBroker(max_pending=3, history=HISTORY)
    for i in range(10):
        broker.publish('h:a', i)
    subscription = broker.subscribe('h:a', since=BEGINNING)
    for i in range(4):
        broker.publish('h:a', 'live')
    with pytest.raises(SubscriberTooSlow):
        drain(subscription, 10)


def test_memory_histories_vanish_after_their_ttl(clock):
    kept = MemoryHistory()
    policy = Policy(ttl=1)
    for n in range(100):
        kept.append('brief:%d' % n, 'x', policy)
    clock[0] += MemoryHistory.SWEEP_INTERVAL
    kept.append('brief:last', 'x', policy)
    assert list(kept._channels) == ['brief:last']


# -- Redis streams ---------------------------------------------------------------------------

@pytest.fixture
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    return client


@requires_redis
def test_redis_publish_keeps_and_publishes_with_the_position(redis_client):
    kept = RedisHistory(redis_client)
    pubsub = redis_client.pubsub()
    pubsub.subscribe('h:a')
    assert wait_until(lambda: pubsub.get_message(timeout=0.1))   # the confirmation
    positions = [kept.publish('h:a', b'm%d' % i, Policy(size=3)) for i in range(5)]
    first = Position.parse(positions[0])
    assert [Position.parse(p) for p in positions] == [
        Position(Position.parse(p).ms, first.n + i) for i, p in enumerate(positions)]
    assert first.n == first.ms * 1000
    payloads = [pubsub.get_message(timeout=5)['data'] for _ in range(5)]
    assert [RedisHistory.unwrap(data) for data in payloads] == [
        (p, b'm%d' % i) for i, p in enumerate(positions)]
    assert RedisHistory.unwrap(b'plain') == (None, b'plain')
    assert redis_client.xlen('superserver:history:h:a') == 3   # trimmed to size
    snap = kept.read('h:a', Position.parse(positions[2]), 10, Policy(size=3))
    assert snap.first == Position.parse(positions[2]) and snap.last == Position.parse(
        positions[4]) and snap.since_kept
    assert snap.entries == [(Position.parse(positions[3]), b'm3'),
                            (Position.parse(positions[4]), b'm4')]
    assert not recoverable(Position.parse(positions[0]),
                           kept.read('h:a', Position.parse(positions[0]), 10, Policy(size=3)),
                           Policy(size=3))
    pubsub.close()


@requires_redis
def test_redis_history_expires_by_age_and_vanishes(redis_client):
    kept = RedisHistory(redis_client)
    policy = Policy(ttl=0.3)
    position = Position.parse(kept.publish('h:b', b'soon gone', policy))
    assert kept.read('h:b', BEGINNING_POSITION, 10, policy).entries == [(position, b'soon gone')]
    # Past its ttl it is no longer kept, and the key vanishes.
    assert wait_until(lambda: not kept.read('h:b', BEGINNING_POSITION, 10, policy).entries)
    assert wait_until(lambda: not redis_client.exists('superserver:history:h:b'))
    assert not recoverable(position, kept.read('h:b', position, 10, policy), policy)
    anew = Position.parse(kept.publish('h:b', b'anew', policy))
    assert anew.n == anew.ms * 1000 > position.n


BEGINNING_POSITION = Position.parse(BEGINNING)


# -- two server processes on one Redis ------------------------------------------------------

class Room:
    """A websocket on /history/ws/<name>/: JSON frames, the history first."""

    def __init__(self, server, name, since=None):
        url = server.ws_url + '/history/ws/%s/' % name
        self.ws = websocket.create_connection(url + ('?since=%s' % since if since else ''),
                                              timeout=20)
        self.subscribed = None   # the view's {"subscribed", "recovered"}, once it came
        if since is None:   # live only: subscribed once the view says so
            self.subscribed = json.loads(self.ws.recv())
            assert self.subscribed == {'subscribed': True, 'recovered': None}

    def next(self):
        """The next message or reset envelope."""
        while True:
            frame = json.loads(self.ws.recv())
            if 'subscribed' not in frame:
                self.last_position = frame.get('position')
                return frame
            self.subscribed = frame

    def close(self):
        self.ws.close()


class Stream:
    """An event stream on /history/sse/<name>/, read as a browser does."""

    def __init__(self, server, name, last_event_id=None):
        headers = {'Accept': 'text/event-stream'}
        if last_event_id is not None:
            headers['Last-Event-ID'] = last_event_id
        self.response = requests.get(server.url + '/history/sse/%s/' % name, stream=True,
                                     timeout=20, headers=headers)
        assert self.response.status_code == 200
        self._lines = self.response.iter_lines(decode_unicode=True)
        assert next(self._lines) == ': stream open'   # subscribed

    def next(self):
        """The next event: its fields, data lines joined."""
        event = {}
        for line in self._lines:
            if line.startswith(':'):
                continue
            if not line:
                if event:
                    self.last_position = event.get('id')
                    return event
                continue
            field, _, value = line.partition(': ')
            event[field] = event[field] + '\n' + value if field in event else value
        raise AssertionError('the stream ended')

    def close(self):
        self.response.close()


class Publisher(threading.Thread):
    """Publishes '0', '1', ... to a room, through A and B in turn, until stopped."""

    def __init__(self, servers, name, limit=5000):
        super().__init__(daemon=True)
        self.urls = [server.url + '/history/publish/%s/' % name for server in servers]
        self.limit = limit
        self.count = 0
        self.stopped = threading.Event()

    def run(self):
        session = requests.Session()
        while not self.stopped.is_set() and self.count < self.limit:
            response = session.post(self.urls[self.count % 2], data=str(self.count), timeout=10)
            assert response.status_code == 200, response.text
            self.count += 1

    def stop(self):
        self.stopped.set()
        self.join(30)
        assert not self.is_alive()
        return self.count


def publish(server, name, text):
    response = requests.post(server.url + '/history/publish/%s/' % name, data=text, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()['position']


def assert_whole(received, count):
    """Messages '0' to count - 1, each once, in order, with rising positions."""
    data = [item['data'] for item in received]
    wrong = next((i for i, text in enumerate(data) if text != str(i)), None)
    around = received[max(0, (wrong or 0) - 3):(wrong or 0) + 3]
    assert wrong is None and len(data) == count, (
        'out of order or doubled at %s of %d: %s' % (wrong, count, around))
    ordinals = [Position.parse(item['position']).n for item in received]
    assert ordinals == sorted(set(ordinals))


def reconnecting_reader(connect, first, missed, live, publisher):
    """Read ``first`` messages, disconnect, wait until ``missed`` more were published,
    reconnect from the last position and read until the publisher, stopped after
    ``live`` more came, has nothing more: everything received, in order."""
    try:
        client = connect(None)
        received = [client.next() for _ in range(first)]
        client.close()
        assert wait_until(lambda: publisher.count >= first + missed, timeout=60)
        client = connect(client.last_position)
        while len(received) < first + missed + live:
            received.append(client.next())
    finally:
        total = publisher.stop()
    while len(received) < total:
        received.append(client.next())
    client.close()
    return received, total


@requires_redis
def test_a_websocket_reconnecting_to_the_other_process_gets_what_it_missed(servers):
    a, b = servers
    name = 'history-ws'
    publisher = Publisher(servers, name)

    def connect(since):
        room = Room(b if since else a, name, since)
        if since is None:
            publisher.start()   # once A forwards: it gets every message from the first
        return room

    received, total = reconnecting_reader(connect, 20, 500, 50, publisher)
    assert_whole(received, total)
    assert total >= 570
    assert all(item['channel'] == 'group:' + name for item in received)


@requires_redis
def test_an_event_stream_reconnecting_with_last_event_id_gets_what_it_missed(servers):
    a, b = servers
    name = 'history-sse'
    publisher = Publisher(servers, name)

    def connect(last_event_id):
        stream = Stream(b if last_event_id else a, name, last_event_id)
        if last_event_id is None:
            publisher.start()
        return stream

    events, total = reconnecting_reader(connect, 20, 500, 50, publisher)
    assert_whole([{'data': event['data'], 'position': event['id']} for event in events], total)


@requires_redis
def test_too_old_positions_get_a_reset_then_live_messages(servers):
    a, b = servers
    positions = [publish(a, 'short-room', 'm%d' % i) for i in range(10)]
    room = Room(b, 'short-room', positions[4])   # kept: m5 to m9
    assert [room.next()['data'] for _ in range(5)] == ['m5', 'm6', 'm7', 'm8', 'm9']
    room.close()
    published_live = set()
    for since in (positions[3], 'not-a-position'):
        room = Room(b, 'short-room', since)
        assert room.next() == {'channel': 'group:short-room', 'reset': True}
        published_live.add(publish(a, 'short-room', 'live'))
        assert room.next()['data'] == 'live'
        assert room.subscribed == {'subscribed': True, 'recovered': False}
        room.close()
        stream = Stream(a, 'short-room', since)
        assert stream.next() == {'event': 'reset', 'data': 'group:short-room'}
        position = publish(b, 'short-room', 'live')
        # After a reset come live messages, as to a subscription without history: the
        # one just published through a may still be on its way from Redis to a's
        # subscriber, and arrive live. None of the history may.
        event = stream.next()
        while event['id'] in published_live - {position}:
            event = stream.next()
        assert event == {'id': position, 'data': 'live'}
        published_live.add(position)
        stream.close()


@requires_redis
def test_a_redis_blip_loses_nothing_while_redis_keeps_its_data(servers, redis_server):
    """The servers' subscription connections are cut again and again while messages are
    published: each time it is made again, the subscribers catch up from the stream."""
    a, b = servers
    name = 'history-blip'
    room, stream = Room(a, name), Stream(b, name)
    client = redis.Redis.from_url(redis_server.url)

    def listeners():
        return [c for c in client.client_list() if int(c['sub']) > 0]

    publisher = Publisher(servers, name, limit=300)
    publisher.start()
    cuts = 0
    while publisher.is_alive():
        cuts += client.client_kill_filter(_type='pubsub')
        publisher.join(0.05)
    assert cuts > 0
    assert wait_until(lambda: len(listeners()) == 2, timeout=20)
    # One last cut, and messages published while both servers are away.
    marks = [len(server.lines) for server in servers]
    assert client.client_kill_filter(_type='pubsub') == 2
    for n in range(300, 310):
        publish(servers[n % 2], name, str(n))
    for server, mark in zip(servers, marks):
        server.wait_for(r'Redis at \S+ is back; subscribing again to \d+ channel\(s\): all '
                        r'confirmed', start=mark)
    for n in range(310, 320):
        publish(servers[n % 2], name, str(n))
    assert_whole([room.next() for _ in range(320)], 320)
    assert_whole([{'data': event['data'], 'position': event['id']}
                  for event in (stream.next() for _ in range(320))], 320)
    room.close()
    stream.close()


@requires_redis
def test_redis_restarted_empty_gives_subscribers_a_reset(servers, redis_server):
    """Last: it empties Redis. A Redis that lost its data cannot say what was published
    while it was away: subscribers are told, and go on with live messages."""
    a, b = servers
    name = 'history-restart'
    room, stream = Room(a, name), Stream(b, name)
    before = publish(a, name, 'before')
    assert room.next()['data'] == stream.next()['data'] == 'before'
    marks = [len(server.lines) for server in servers]
    redis_server.stop()
    redis_server.start()
    for server, mark in zip(servers, marks):
        server.wait_for(r'Redis at \S+ is back; subscribing again to \d+ channel\(s\): all '
                        r'confirmed', start=mark)
    assert room.next() == {'channel': 'group:' + name, 'reset': True}
    assert stream.next() == {'event': 'reset', 'data': 'group:' + name}
    after = publish(b, name, 'after')
    assert room.next() == {'channel': 'group:' + name, 'position': after, 'data': 'after'}
    assert stream.next() == {'id': after, 'data': 'after'}
    room.close()
    stream.close()
    # A position from before the restart is too old now.
    room = Room(b, name, before)
    assert room.next() == {'channel': 'group:' + name, 'reset': True}
    room.close()


def test_recovery_over_the_memory_broker(django_server):
    positions = [publish(django_server, 'history-memory', 'm%d' % i) for i in range(5)]
    room = Room(django_server, 'history-memory', positions[1])
    assert [room.next()['data'] for _ in range(3)] == ['m2', 'm3', 'm4']
    live = publish(django_server, 'history-memory', 'live')
    assert room.next() == {'channel': 'group:history-memory', 'position': live, 'data': 'live'}
    assert room.subscribed == {'subscribed': True, 'recovered': True}
    room.close()
    stream = Stream(django_server, 'history-memory', positions[3])
    assert [stream.next() for _ in range(2)] == [{'id': positions[4], 'data': 'm4'},
                                                 {'id': live, 'data': 'live'}]
    stream.close()


@requires_redis
def test_three_hundred_subscriptions_recovering_at_once_in_one_process_all_recover(servers):
    """Their history reads reach Redis at the same moment. redis-py's own pool refuses a
    101st connection ("Too many connections": each refused reader would get a reset);
    the broker's pool makes a read wait for a free connection instead."""
    a, _ = servers
    name = 'history-crowd'
    since = publish(a, name, 'before')
    missed = ['missed %d' % n for n in range(20)]
    for text in missed:
        publish(a, name, text)
    response = requests.get(a.url + '/history/recover-at-once/%s/' % name, timeout=120,
                            params={'since': since, 'count': len(missed), 'readers': 300})
    assert response.status_code == 200, response.text
    assert response.json()['read'] == [missed] * 300
