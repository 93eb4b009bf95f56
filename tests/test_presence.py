"""Presence: the in-process bookkeeping, the Redis scripts against a real redis-server, and
two (then three) server processes on one Redis: sums, join/leave events, a process killed
with SIGKILL, Redis restarted empty."""
import json
import signal
import time

import gevent
import pytest
import redis
import requests
import websocket
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from extensions import presence
from extensions.presence import (
    MemoryPresence,
    RedisPresence,
    RedisPresenceStore,
    member_of,
    presence_channel,
    presence_timeout,
)
from extensions.pubsub import MemoryBroker

from .server_process import ServerProcess, wait_until
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)

#: Seconds of silence after which a process's members are taken away, in the servers here.
TIMEOUT = 3


def event(kind, member, connections, channel='room'):
    return {'event': kind, 'channel': channel, 'member': member, 'connections': connections}


# -- one process, memory broker --------------------------------------------------------------

@pytest.fixture
def memory():
    """A MemoryPresence and a subscription to the events of channel 'room'."""
    broker = MemoryBroker()
    with broker.subscribe(presence_channel('room')) as events:
        yield MemoryPresence(broker), events


def received(events):
    """The events published so far, decoded."""
    found = []
    while True:
        try:
            found.append(json.loads(events.get(timeout=0)[1]))
        except TimeoutError:
            return found


def test_a_second_connection_is_no_second_join_and_the_last_one_leaves(memory):
    tracker, events = memory
    tracker.join('room', 'alice')
    tracker.join('room', 'alice')
    tracker.join('room', 'bob')
    tracker.join('elsewhere', 'alice')
    assert tracker.members('room') == {'alice': 2, 'bob': 1}
    assert received(events) == [event('join', 'alice', 1), event('join', 'bob', 1)]
    tracker.leave('room', 'alice')
    assert received(events) == []
    assert tracker.members('room') == {'alice': 1, 'bob': 1}
    tracker.leave('room', 'alice')
    tracker.leave('room', 'bob')
    assert received(events) == [event('leave', 'alice', 0), event('leave', 'bob', 0)]
    assert tracker.members('room') == {}
    assert tracker.members('elsewhere') == {'alice': 1}


def test_a_leave_without_a_join_changes_nothing(memory):
    tracker, events = memory
    tracker.leave('room', 'nobody')
    assert tracker.members('room') == {}
    assert received(events) == []


def test_members_is_a_copy(memory):
    tracker, _ = memory
    tracker.join('room', 'alice')
    tracker.members('room')['alice'] = 99
    assert tracker.members('room') == {'alice': 1}


def test_join_counts_while_its_block_runs_and_leaves_on_an_exception():
    channel = 'group:test-join-block'
    with pytest.raises(ZeroDivisionError):
        with presence.join(channel, 'alice'):
            with presence.join(channel, 'alice'):
                assert presence.presence(channel) == {'alice': 2}
            assert presence.presence(channel) == {'alice': 1}
            1 / 0
    assert presence.presence(channel) == {}


@pytest.mark.parametrize('channel, member, error', [
    ('room', b'alice', TypeError), ('room', None, TypeError), (b'room', 'alice', TypeError),
    ('room', '', ValueError), ('', 'alice', ValueError)])
def test_bad_names_are_refused_before_counting(channel, member, error):
    with pytest.raises(error, match='presence (channel|member) must'):
        with presence.join(channel, member):
            pass
    assert presence.presence('room') == {}


def test_member_of_a_user_is_the_username_and_of_a_visitor_the_session():
    class User:
        is_authenticated = True

        def get_username(self):
            return 'alice'

    request = RequestFactory().get('/')
    request.user, request.session = User(), SessionStore()
    assert member_of(request) == 'alice'
    request.user.is_authenticated = False
    member = member_of(request)   # a visitor without a session gets one
    assert member == 'session:%s' % request.session.session_key
    assert request.session.modified   # so its cookie is set
    assert member_of(request) == member


@pytest.mark.parametrize('timeout', [0, -1, '15', True, None])
def test_a_timeout_that_is_no_positive_number_is_refused(settings, timeout):
    settings.SUPERSERVER_PRESENCE_TIMEOUT = timeout
    with pytest.raises(ImproperlyConfigured, match='SUPERSERVER_PRESENCE_TIMEOUT must be a '
                                                   'positive number of seconds, not'):
        presence_timeout()


def test_the_timeout_defaults_to_15_seconds(settings):
    del settings.SUPERSERVER_PRESENCE_TIMEOUT
    assert presence_timeout() == 15
    settings.SUPERSERVER_PRESENCE_TIMEOUT = 0.5
    assert presence_timeout() == 0.5


# -- the Redis scripts, one store per pretended process ---------------------------------------

@pytest.fixture
def client(redis_server):
    """A client of an empty Redis, left empty for the server processes' tests."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.flushall()


def published(pubsub, count):
    """The next ``count`` presence events, decoded."""
    found = []
    for _ in range(count):
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None, 'only %r came' % found
        found.append(json.loads(message['data']))
    return found


def long_ago(client, process):
    """Make ``process`` silent for an hour longer than its timeout."""
    client.zadd(RedisPresenceStore.PREFIX + 'processes',
                {process: client.time()[0] - 3600})


@pytest.fixture
def events(client):
    """The events of channel 'room' as Redis publishes them."""
    pubsub = client.pubsub()
    pubsub.subscribe(presence_channel('room'))
    assert pubsub.get_message(timeout=5)['type'] == 'subscribe'
    yield pubsub
    pubsub.close()


@requires_redis
def test_totals_are_the_sum_of_the_processes_and_events_cross_zero(client, events):
    first, second = (RedisPresenceStore(client, name, 60) for name in ('first', 'second'))
    first.sync([('room', 'alice', 2), ('room', 'bob', 1)])
    second.sync([('room', 'alice', 1)])
    second.sync([('room', 'alice', 1)])   # the same count again: nothing changes
    assert first.members('room') == second.members('room') == {'alice': 3, 'bob': 1}
    first.sync([('room', 'alice', 0), ('room', 'bob', 0)])
    second.sync([('room', 'alice', 0)])
    assert first.members('room') == {}
    assert published(events, 4) == [event('join', 'alice', 2), event('join', 'bob', 1),
                                    event('leave', 'bob', 0), event('leave', 'alice', 0)]
    assert events.get_message(timeout=0.2) is None
    assert client.keys('superserver:presence:members:*') == []


@requires_redis
def test_a_silent_process_is_reaped_once_by_concurrent_reapers(client, events):
    silent, first, second = (RedisPresenceStore(client, name, 60)
                             for name in ('silent', 'first', 'second'))
    silent.sync([('room', 'alice', 2), ('room', 'carol', 1), ('other', 'carol', 1)])
    first.sync([('room', 'alice', 1)])
    assert published(events, 2) == [event('join', 'alice', 2), event('join', 'carol', 1)]
    long_ago(client, 'silent')
    assert first.beat() == (False, 1)
    assert second.beat() == (True, 0)   # nothing left to reap, nor to count twice
    assert first.members('room') == {'alice': 1}
    assert first.members('other') == {}
    assert published(events, 1) == [event('leave', 'carol', 0)]
    assert events.get_message(timeout=0.2) is None
    assert client.keys('superserver:presence:process:silent') == []


@requires_redis
def test_each_process_is_silent_for_its_own_timeout_before_it_is_reaped(client):
    patient = RedisPresenceStore(client, 'patient', 3600)
    patient.sync([('room', 'alice', 1)])
    assert RedisPresenceStore(client, 'hasty', 0).beat() == (True, 0)
    assert patient.members('room') == {'alice': 1}


@requires_redis
def test_a_process_that_lost_its_entries_is_told_to_send_them_again(client, events):
    store = RedisPresenceStore(client, 'process', 60)
    assert store.sync([('room', 'alice', 1)])   # new: registered now
    assert not store.sync([('room', 'bob', 1)])
    assert store.beat() == (False, 0)
    client.flushall()   # as a Redis restarted without persistence
    assert store.beat() == (True, 0)
    client.flushall()
    assert store.sync([('room', 'bob', 1)])


@requires_redis
def test_withdraw_takes_a_process_s_connections_at_once(client, events):
    leaving, staying = (RedisPresenceStore(client, name, 60) for name in ('leaving', 'staying'))
    leaving.sync([('room', 'alice', 1), ('room', 'bob', 3)])
    staying.sync([('room', 'bob', 1)])
    leaving.withdraw()
    leaving.withdraw()   # once is enough; twice changes nothing
    assert staying.members('room') == {'bob': 1}
    assert published(events, 3)[2] == event('leave', 'alice', 0)
    assert events.get_message(timeout=0.2) is None


@requires_redis
def test_names_that_look_like_json_or_keys_stay_apart(client):
    store = RedisPresenceStore(client, 'process', 60)
    names = ['a", "b', 'a:b', 'members:x', 'ünïcode ✓', '\\', '[1]']
    store.sync([(channel, member, 1) for channel in names for member in names])
    for channel in names:
        assert store.members(channel) == {member: 1 for member in names}
    assert store.entries() == {(channel, member) for channel in names for member in names}
    assert RedisPresenceStore(client, 'process', 0).beat() == (False, 0)   # not itself
    long_ago(client, 'process')
    assert RedisPresenceStore(client, 'reaper', 60).beat() == (True, 1)
    assert all(store.members(channel) == {} for channel in names)


@requires_redis
def test_joins_at_once_go_to_redis_in_a_few_scripts_and_each_waits_for_its_own(client,
                                                                              redis_server):
    tracker = RedisPresence(redis_server.url, timeout=60)
    try:
        tracker.join('room', 'first')   # starts the greenlet, beats
        assert tracker.members('room') == {'first': 1}   # in Redis when join returns
        client.config_resetstat()
        joined = []

        def enter(number):
            tracker.join('room', 'member %d' % (number % 1000))
            joined.append(client.hget(RedisPresenceStore.PREFIX + 'members:room',
                                      'member %d' % (number % 1000)))

        gevent.joinall([gevent.spawn(enter, number) for number in range(2000)], timeout=60)
        assert len(joined) == 2000 and all(joined)   # each saw itself
        assert len(tracker.members('room')) == 1001
        scripts = int(client.info('commandstats')['cmdstat_evalsha']['calls'])
        assert scripts <= 20, scripts   # batches of up to RedisPresence.BATCH entries
        for number in range(2000):
            tracker.leave('room', 'member %d' % (number % 1000))
        # gevent.sleep: the greenlet that sends the leaves runs while this one waits
        assert wait_until(lambda: gevent.sleep(0.02) or tracker.members('room') == {'first': 1})
    finally:
        tracker.withdraw()
    assert tracker.store.members('room') == {}


# -- server processes on one Redis -------------------------------------------------------------

def server(project_env, redis_server, timeout=TIMEOUT):
    return ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', env={
        **project_env, 'SUPERSERVER_TEST_BROKER': redis_server.url,
        'SUPERSERVER_TEST_PRESENCE_TIMEOUT': str(timeout)})


@pytest.fixture(scope='module')
def servers(project_env, redis_server):
    """Servers A and B on the same Redis."""
    pair = [server(project_env, redis_server) for _ in range(2)]
    yield pair
    for process in pair:
        process.stop()


def enter(process, room, member=None, cookie=None):
    """A websocket in ``room``, once its connection is counted."""
    query = '?member=%s' % member if member else ''
    ws = websocket.create_connection(process.ws_url + '/presence/ws/%s/%s' % (room, query),
                                     timeout=30, cookie=cookie)
    assert ws.recv() == 'joined'
    return ws


def watch(process, room):
    ws = websocket.create_connection(process.ws_url + '/presence/ws/%s/watch/' % room,
                                     timeout=30)
    assert ws.recv() == 'watching'
    return ws


def members(process, room):
    response = requests.get(process.url + '/presence/%s/' % room, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()['members']


def next_event(ws):
    return json.loads(ws.recv())


def everywhere(processes, room, expected, timeout=20):
    """Whether every process reports ``expected`` as the room's members within ``timeout``."""
    return wait_until(lambda: all(members(p, room) == expected for p in processes),
                      timeout=timeout, interval=0.1)


@requires_redis
def test_presence_is_the_sum_of_both_processes_seen_from_either(servers):
    a, b = servers
    watcher = watch(b, 'sum')
    alice = [enter(a, 'sum', 'alice'), enter(a, 'sum', 'alice'), enter(b, 'sum', 'alice')]
    bob = enter(b, 'sum', 'bob')
    assert everywhere(servers, 'sum', {'alice': 3, 'bob': 1})
    group = 'group:sum'
    assert next_event(watcher) == event('join', 'alice', 1, group)
    assert next_event(watcher) == event('join', 'bob', 1, group)
    for ws in alice[:2]:
        ws.close()
    assert everywhere(servers, 'sum', {'alice': 1, 'bob': 1})
    bob.close()   # the next event is bob's: alice's first two tabs went without one
    assert next_event(watcher) == event('leave', 'bob', 0, group)
    alice[2].close()
    assert next_event(watcher) == event('leave', 'alice', 0, group)
    assert everywhere(servers, 'sum', {})
    watcher.close()


@requires_redis
def test_a_joining_socket_gets_the_events_of_the_others(servers):
    a, b = servers
    first = websocket.create_connection(a.ws_url + '/presence/ws/others/?member=first&events',
                                        timeout=30)
    messages = [first.recv(), first.recv()]   # its own join, and 'joined', in either order
    messages.remove('joined')
    assert json.loads(messages[0]) == event('join', 'first', 1, 'group:others')
    second = enter(b, 'others', 'second')
    assert next_event(first) == event('join', 'second', 1, 'group:others')
    second.close()
    assert next_event(first) == event('leave', 'second', 0, 'group:others')
    first.close()


@requires_redis
def test_members_are_users_or_sessions_and_tabs_are_connections(servers):
    a, b = servers
    visitor = requests.Session()
    me = visitor.get(a.url + '/presence/whoami/', timeout=10).text
    assert me.startswith('session:') and visitor.cookies['sessionid'] == me[len('session:'):]
    user = requests.Session()
    login = b.url + '/accounts/login/'
    user.get(login, timeout=10)
    response = user.post(login, timeout=10, allow_redirects=False, headers={'Origin': b.url},
                         data={'username': 'alice', 'password': 'wonderland',
                               'csrfmiddlewaretoken': user.cookies['csrftoken']})
    assert response.status_code == 302, response.text
    assert user.get(a.url + '/presence/whoami/', timeout=10).text == 'alice'

    def cookie(session):
        return '; '.join('%s=%s' % item for item in session.cookies.items())

    tabs = [enter(a, 'who', cookie=cookie(visitor)), enter(b, 'who', cookie=cookie(visitor)),
            enter(b, 'who', cookie=cookie(user))]
    assert everywhere(servers, 'who', {me: 2, 'alice': 1})
    for ws in tabs:
        ws.close()


@requires_redis
def test_the_members_of_a_killed_process_leave_within_the_timeout(servers, project_env,
                                                                  redis_server):
    a, b = servers
    doomed = server(project_env, redis_server)
    try:
        watcher = watch(b, 'killed')
        kept = [enter(doomed, 'killed', 'carol'), enter(doomed, 'killed', 'carol'),
                enter(doomed, 'killed', 'dave'), enter(a, 'killed', 'dave')]
        assert everywhere(servers, 'killed', {'carol': 2, 'dave': 2})
        assert [next_event(watcher) for _ in range(2)] == [
            event('join', 'carol', 1, 'group:killed'), event('join', 'dave', 1, 'group:killed')]
        doomed.signal(signal.SIGKILL)
        killed = time.monotonic()
        doomed.wait(10)
        # carol was only there, dave is still on A: one leave event, and only one
        assert next_event(watcher) == event('leave', 'carol', 0, 'group:killed')
        gone_after = time.monotonic() - killed
        assert members(a, 'killed') == members(b, 'killed') == {'dave': 1}   # 2 - 1
        print('\nthe killed process\'s members left %.1f s after SIGKILL (timeout %d s)'
              % (gone_after, TIMEOUT))
        # silent for the timeout, found at the next beat of A or B (a third of it), plus
        # the scheduling of a loaded machine
        assert gone_after < TIMEOUT * 4 / 3 + 5
    finally:
        doomed.stop()
    for ws in kept[:3]:
        ws.shutdown()   # their server is gone
    kept[3].close()
    assert next_event(watcher) == event('leave', 'dave', 0, 'group:killed')
    watcher.settimeout(1)
    with pytest.raises(websocket.WebSocketTimeoutException):
        print(watcher.recv())   # nothing else
    watcher.close()


@requires_redis
def test_a_process_stopped_gracefully_takes_its_members_at_once(servers, project_env,
                                                                 redis_server):
    a, b = servers
    stopping = server(project_env, redis_server, timeout=600)   # reaping would take long
    watcher = watch(a, 'stopped')
    guests = [enter(stopping, 'stopped', 'erin'), enter(b, 'stopped', 'frank')]
    assert everywhere(servers, 'stopped', {'erin': 1, 'frank': 1})
    stopping.stop()
    assert [next_event(watcher) for _ in range(3)][2] == event('leave', 'erin', 0,
                                                               'group:stopped')
    assert members(a, 'stopped') == {'frank': 1}
    for ws in guests:
        ws.close()
    watcher.close()


@requires_redis
def test_redis_restarted_empty_gets_presence_again_from_the_live_processes(servers,
                                                                           redis_server):
    a, b = servers
    stay = [enter(a, 'restart', 'alice'), enter(b, 'restart', 'bob')]
    leaves = enter(b, 'restart', 'carol')
    marks = [len(process.lines) for process in servers]
    redis_server.stop()
    response = requests.get(a.url + '/presence/restart/', timeout=30)
    assert response.status_code == 503
    assert 'Redis at redis://127.0.0.1:%d/0 is unreachable' % redis_server.port in response.text
    # Joining and leaving go on while Redis is down; they are sent when it is back.
    leaves.close()
    joins = enter(a, 'restart', 'dave')
    for process, mark in zip(servers, marks):
        process.wait_for('presence is kept here and sent when it is back', start=mark)
    # No snapshot and no append-only file to load: the new Redis starts empty. (Its keys
    # cannot be read to show it: the processes write their presence as soon as it answers.)
    assert list(redis_server.directory.iterdir()) == []
    redis_server.start()
    assert everywhere(servers, 'restart', {'alice': 1, 'bob': 1, 'dave': 1}, timeout=30), \
        members(a, 'restart')
    for process, mark in zip(servers, marks):
        process.wait_for('Redis at \\S+ is back; presence of this process sent again',
                         start=mark)
    for ws in [*stay, joins]:
        ws.close()
    assert everywhere(servers, 'restart', {})


@requires_redis
def test_redis_restarted_from_an_older_snapshot_is_put_right_by_the_live_processes(
        servers, redis_server):
    a, b = servers
    stays, leaves = enter(a, 'snapshot', 'alice'), enter(b, 'snapshot', 'bob')
    assert everywhere(servers, 'snapshot', {'alice': 1, 'bob': 1})
    marks = [len(process.lines) for process in servers]
    snapshot = redis_server.directory / 'dump.rdb'
    redis.Redis.from_url(redis_server.url).save()   # bob is in it...
    try:
        leaves.close()
        assert everywhere(servers, 'snapshot', {'alice': 1})   # ...and has left since
        redis_server.stop()
        redis_server.start()   # from the snapshot: bob is back in Redis, not in B
    finally:
        snapshot.unlink()
    for process, mark in zip(servers, marks):
        process.wait_for('Redis at \\S+ restarted or lost this process; its presence is sent '
                         'again', start=mark)
    assert everywhere(servers, 'snapshot', {'alice': 1})
    stays.close()
    assert everywhere(servers, 'snapshot', {})
