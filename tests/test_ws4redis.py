"""django-websocket-redis projects on superserver (extensions.ws4redis).

Two server processes serve tests/ws4redis_project on one real redis-server; clients are
websocket-client, plain Redis clients, publishers in processes of their own (ours and
ws4redis's own, still installed), and ws4redis.js itself in headless Chromium.
"""
import json
import os
import subprocess
import textwrap
import time
from importlib.util import find_spec
from pathlib import Path

import pytest
import redis
import requests
import websocket
from django.test import override_settings

from extensions.ws4redis import checks
from extensions.ws4redis.finders import UpstreamFinder
from extensions.ws4redis.subscriber import requested

from .conftest import manage
from .server_process import PYTHON, ROOT, ServerProcess, free_port, wait_until
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)
from .chromium import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401 (browser: a fixture)

UPSTREAM = find_spec('ws4redis')   # django-websocket-redis, from the test extra
# Skipped on a developer's machine without it; never in CI, where it must run.
pytestmark = [requires_redis, pytest.mark.skipif(
    UPSTREAM is None and not os.environ.get('CI'),
    reason="django-websocket-redis is not installed (pip install -e '.[test]')")]

HEARTBEAT = '--heartbeat--'   # WS4REDIS_HEARTBEAT of tests/ws4redis_project
TIMEOUT = 10
JQUERY = ROOT / 'tests' / 'node' / 'node_modules' / 'jquery'   # tests/ws4redis_project's
UPSTREAM_SCRIPT = UPSTREAM and Path(UPSTREAM.submodule_search_locations[0],
                                    'static', 'js', 'ws4redis.js')
USERS = '''
from django.contrib.auth.models import Group, User
alice = User.objects.create_user('alice', password='alice-pw')
alice.groups.add(Group.objects.create(name='staff'))
User.objects.create_user('bob', password='bob-pw')
'''


@pytest.fixture(scope='module')
def ws4redis_env(tmp_path_factory, redis_server):
    """tests/ws4redis_project on a migrated SQLite database with alice (group staff) and
    bob, on the test's redis-server."""
    env = {'DJANGO_SETTINGS_MODULE': 'tests.ws4redis_project.settings',
           'SUPERSERVER_TEST_DATABASE': str(tmp_path_factory.mktemp('ws4redis') / 'db.sqlite3'),
           'SUPERSERVER_TEST_BROKER': redis_server.url}
    manage('migrate', '--noinput', env=env)
    manage('shell', '-c', USERS, env=env)
    return env


def serve(env):
    return ServerProcess('--noreload', '--nodebugger', '--insecure', '127.0.0.1:0', env=env)


@pytest.fixture(scope='module')
def servers(ws4redis_env):
    """Servers A and B, both on the same Redis."""
    pair = [serve(ws4redis_env) for _ in range(2)]
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture(scope='module')
def store(redis_server):
    """A plain Redis client: what any other program sees of the channels."""
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def connect(server, path, session=None):
    """A websocket on ``WEBSOCKET_URL + path``, with a session cookie if given."""
    return websocket.create_connection(server.ws_url + '/ws/' + path, timeout=TIMEOUT,
                                       cookie=session and 'sessionid=' + session)


def next_message(ws):
    """The next message that is not a heartbeat."""
    for _ in range(10):   # at most one heartbeat per 4 s comes unasked
        message = ws.recv()
        if message != HEARTBEAT:
            return message
    raise AssertionError('nothing but heartbeats')


def closing_code(ws):
    """The code of the close frame that comes next, after any heartbeats."""
    for _ in range(10):
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], 'big')
        assert data == HEARTBEAT.encode()
    raise AssertionError('nothing but heartbeats')


def log_in(server, name):
    """The session key of ``name`` logged in through the project's login view."""
    session = requests.Session()
    response = session.post(server.url + '/login/', timeout=TIMEOUT,
                            data={'username': name, 'password': name + '-pw'})
    assert response.status_code == 204, response.text
    return session.cookies['sessionid']


def listening(store, *channels):
    """A plain Redis subscription to ``channels``, confirmed."""
    pubsub = store.pubsub()
    pubsub.subscribe(*channels)
    for _ in channels:
        assert pubsub.get_message(timeout=TIMEOUT)['type'] == 'subscribe'
    return pubsub


def published(pubsub):
    message = pubsub.get_message(timeout=TIMEOUT)
    assert message is not None, 'nothing published'
    return message['channel'].decode(), message['data'].decode()


def in_project(env, code):
    """Run ``code`` in a process of its own with the project's settings (as a Celery
    worker or a shell would); its output, parsed as JSON lines."""
    script = 'import django\ndjango.setup()\n' + textwrap.dedent(code)
    result = subprocess.run([PYTHON, '-c', script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- the pure parts ---------------------------------------------------------------------

@pytest.mark.parametrize('query, keys, echo', [
    (['subscribe-broadcast', 'publish-user', 'echo'], ['subscribe-broadcast', 'publish-user'],
     True),
    ([' Subscribe-Group ', 'PUBLISH-SESSION'], ['subscribe-group', 'publish-session'], False),
    (['token', 'subscribe-everything', 'publish'], [], False),
])
def test_query_keys_are_stripped_lowered_and_unknown_ones_ignored(query, keys, echo):
    assert requested(query) == (keys, echo)


def test_finder_serves_the_installed_upstream_script():
    finder = UpstreamFinder()
    assert finder.find('js/ws4redis.js') == str(UPSTREAM_SCRIPT)
    assert finder.find('js/ws4redis.js', find_all=True) == [str(UPSTREAM_SCRIPT)]
    assert finder.find('js/other.js') is None
    assert [path for path, _ in finder.list([])] == ['js/ws4redis.js']


def check_ids(check, **settings):
    with override_settings(**settings):
        return [message.id for message in check(None)]


def test_checks():
    redis_broker = 'redis://127.0.0.1:6379/0'
    assert check_ids(checks.check_broker, SUPERSERVER_BROKER='memory://') == [
        'superserver_ws4redis.E001']
    assert check_ids(checks.check_broker, SUPERSERVER_BROKER=redis_broker) == []
    assert check_ids(checks.check_broker, SUPERSERVER_BROKER=redis_broker,
                     WS4REDIS_CONNECTION={'host': 'localhost', 'port': 6379, 'db': 0,
                                          'password': None}) == []
    for other in ({'host': 'localhost', 'port': 6380}, {'host': 'localhost', 'db': 1},
                  {'unix_socket_path': '/run/redis.sock'}):
        assert check_ids(checks.check_broker, SUPERSERVER_BROKER=redis_broker,
                         WS4REDIS_CONNECTION=other) == ['superserver_ws4redis.W002']
    assert check_ids(checks.check_subscriber) == []
    assert check_ids(checks.check_subscriber, WS4REDIS_SUBSCRIBER='app.MySubscriber') == [
        'superserver_ws4redis.E004']
    assert check_ids(checks.check_hooks, WS4REDIS_ALLOWED_CHANNELS='no.such.hook',
                     WS4REDIS_PROCESS_REQUEST=42) == ['superserver_ws4redis.E005'] * 2
    assert check_ids(checks.check_hooks, WS4REDIS_ALLOWED_CHANNELS=lambda r, c: c,
                     WS4REDIS_PROCESS_REQUEST='json.loads') == []


def test_project_passes_its_checks(ws4redis_env):
    assert 'no issues' in manage('check', env=ws4redis_env)


# -- publishers ---------------------------------------------------------------------------

CHANNEL_NAMES = '''
import json
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from ws4redis.publisher import RedisPublisher as UpstreamPublisher
from ws4redis.redis_store import SELF as UPSTREAM_SELF
from extensions.ws4redis.publisher import RedisPublisher
from extensions.ws4redis.redis_store import SELF

request = RequestFactory().get('/')
request.user = User.objects.get(username='alice')
request.session = SessionStore()
request.session['ws4redis:memberof'] = ['staff', 'admins']
request.session.create()
cases = [dict(facility='news', broadcast=True), dict(broadcast=True),
         dict(facility='f', users=['a', 'b'], groups=('g',), sessions=['s1', 's2']),
         dict(facility='f', request=request, users=[SELF, 'c'], groups=[SELF],
              sessions=[SELF], broadcast=True)]
for case in cases:
    upstream = {key: [UPSTREAM_SELF if item is SELF else item for item in value]
                if isinstance(value, (list, tuple)) else value for key, value in case.items()}
    print(json.dumps([sorted(UpstreamPublisher(**upstream)._publishers),
                      sorted(RedisPublisher(**case).channels)]))
'''


@pytest.mark.parametrize('prefix', ['', 'myapp'])
def test_publisher_channel_names_are_upstreams(ws4redis_env, prefix):
    pairs = in_project({**ws4redis_env, 'WS4REDIS_TEST_PREFIX': prefix}, CHANNEL_NAMES)
    assert len(pairs) == 4
    for upstream, ours in pairs:
        assert upstream == ours
    assert pairs[3][1][0] == ('%s:broadcast:f' % prefix if prefix else 'broadcast:f')


def test_broadcasts_from_our_publisher_and_from_an_old_ws4redis_one(servers, ws4redis_env):
    clients = [connect(server, 'news?subscribe-broadcast') for server in servers]
    in_project(ws4redis_env, '''
        from extensions.ws4redis.publisher import RedisPublisher
        from extensions.ws4redis.redis_store import RedisMessage
        RedisPublisher(facility='news', broadcast=True).publish_message(RedisMessage('new «ok»'))
        from ws4redis.publisher import RedisPublisher
        from ws4redis.redis_store import RedisMessage
        RedisPublisher(facility='news', broadcast=True).publish_message(RedisMessage('old API'))
    ''')
    for ws in clients:
        assert next_message(ws) == 'new «ok»'
        assert next_message(ws) == 'old API'
        ws.close()


def test_kept_message_comes_first_to_a_new_client_and_is_fetched(servers, ws4redis_env, store):
    fetched = in_project(ws4redis_env, '''
        import json
        from django.contrib.auth.models import User
        from django.contrib.sessions.backends.db import SessionStore
        from django.test import RequestFactory
        from extensions.ws4redis.publisher import RedisPublisher
        from extensions.ws4redis.redis_store import RedisMessage

        RedisPublisher(facility='kept', broadcast=True).publish_message(
            RedisMessage('kept for later'), expire=30)
        RedisPublisher(facility='unkept', broadcast=True).publish_message(
            RedisMessage('gone'), expire=0)
        publisher = RedisPublisher(facility='kept', groups=['staff'])
        publisher.publish_message(RedisMessage('for the staff'))
        request = RequestFactory().get('/')
        request.user = User.objects.get(username='alice')
        request.session = SessionStore()
        request.session['ws4redis:memberof'] = ['staff']
        for audience in ('broadcast', 'group', 'any', 'user'):
            message = publisher.fetch_message(request, 'kept', audience)
            print(json.dumps(message and message.decode()))
    ''')
    assert fetched == ['kept for later', 'for the staff', 'for the staff', None]
    assert 0 < store.ttl('broadcast:kept') <= 30
    assert 30 < store.ttl('group:staff:kept') <= 60   # WS4REDIS_EXPIRE
    assert store.get('broadcast:unkept') is None
    a, b = servers
    ws = connect(b, 'kept?subscribe-broadcast')
    assert next_message(ws) == 'kept for later'
    # What a client publishes is kept too.
    speaker = connect(a, 'kept?publish-broadcast')
    speaker.send('from a client')
    assert next_message(ws) == 'from a client'
    latecomer = connect(a, 'kept?subscribe-broadcast')
    assert next_message(latecomer) == 'from a client'
    for client in (ws, speaker, latecomer):
        client.close()


# -- the websocket ----------------------------------------------------------------------------

def test_plain_request_gets_426_and_the_script_is_served_unchanged(servers):
    a, _ = servers
    assert requests.get(a.url + '/ws/news', timeout=TIMEOUT).status_code == 426
    script = requests.get(a.url + '/static/js/ws4redis.js', timeout=TIMEOUT)
    assert script.status_code == 200
    assert script.content == UPSTREAM_SCRIPT.read_bytes()


def test_heartbeats_are_sent_answered_and_never_published(servers, store):
    a, _ = servers
    ws = connect(a, 'beats?subscribe-broadcast&publish-broadcast&echo')
    pubsub = listening(store, 'broadcast:beats')
    assert ws.recv() == HEARTBEAT   # unasked: at least every 4 s
    ws.send(HEARTBEAT)
    asked = time.monotonic()
    assert ws.recv() == HEARTBEAT   # answered at once, not at the next 4 s beat
    assert time.monotonic() - asked < 3
    assert store.get('broadcast:beats') is None   # neither kept...
    ws.send('after the beat')
    assert published(pubsub) == ('broadcast:beats', 'after the beat')   # ...nor published
    assert next_message(ws) == 'after the beat'   # echo, and no heartbeat echoed before it
    assert store.get('broadcast:beats') == b'after the beat'
    pubsub.close()


def test_echo_as_ws4redis(servers, store):
    """Without ``echo`` a client does not get back what equals its last message (as
    ws4redis compares: whoever published it, until the client's next heartbeat)."""
    a, b = servers
    quiet = connect(a, 'echo?subscribe-broadcast&publish-broadcast')
    loud = connect(b, 'echo?subscribe-broadcast&publish-broadcast&echo')
    listener = connect(b, 'echo?subscribe-broadcast')
    quiet.send('from quiet')
    assert next_message(listener) == 'from quiet'   # across processes
    assert next_message(loud) == 'from quiet'
    loud.send('from loud')
    assert next_message(listener) == 'from loud'
    assert next_message(loud) == 'from loud'        # its own, echoed
    assert next_message(quiet) == 'from loud'       # its own was not
    quiet.send('same')
    assert next_message(listener) == 'same'
    store.publish('broadcast:echo', 'same')          # equal to quiet's last: not sent
    store.publish('broadcast:echo', 'marker')
    assert next_message(quiet) == 'marker'
    quiet.send(HEARTBEAT)                            # a heartbeat forgets the last message

    def same_comes_through():
        store.publish('broadcast:echo', 'same')
        store.publish('broadcast:echo', 'marker')
        if next_message(quiet) == 'marker':
            return False                             # the heartbeat was not handled yet
        assert next_message(quiet) == 'marker'
        return True

    assert wait_until(same_comes_through, timeout=5, interval=0)


def test_audiences_of_a_logged_in_user(servers, store):
    a, b = servers
    session = log_in(a, 'alice')   # the login stores her groups in the session
    ws = connect(b, 'aud?subscribe-user&subscribe-group&subscribe-session&subscribe-broadcast',
                 session=session)
    channels = ['broadcast:aud', 'group:staff:aud', 'user:alice:aud', 'session:%s:aud' % session]
    for channel in channels:
        assert store.publish(channel, 'to ' + channel) == 1   # B's one Redis connection
        assert next_message(ws) == 'to ' + channel
    pubsub = listening(store, *channels)
    speaker = connect(a, 'aud?publish-user&publish-group&publish-session&publish-broadcast',
                      session=session)
    speaker.send('to all of them')
    assert sorted(published(pubsub) for _ in channels) == sorted(
        (channel, 'to all of them') for channel in channels)
    assert [next_message(ws) for _ in channels] == ['to all of them'] * 4
    pubsub.close()


def test_anonymous_client_has_only_the_broadcast(servers, store):
    a, _ = servers
    ws = connect(a, 'anon?subscribe-user&subscribe-group&subscribe-session&subscribe-broadcast')
    assert store.pubsub_channels('*:anon') == [b'broadcast:anon']
    ws.close()


def test_one_redis_connection_per_process_for_all_sockets(servers, store):
    sockets = [connect(server, 'many-%d?subscribe-broadcast&subscribe-session' % n)
               for n in range(10) for server in servers]
    assert len([c for c in store.client_list() if int(c['sub']) > 0]) == 2
    assert [count for _, count in store.pubsub_numsub(
        *('broadcast:many-%d' % n for n in range(10)))] == [2] * 10
    for ws in sockets:
        ws.close()


def test_prefix(ws4redis_env, store):
    server = serve({**ws4redis_env, 'WS4REDIS_TEST_PREFIX': 'myapp'})
    try:
        ws = connect(server, 'pre?subscribe-broadcast')
        assert store.publish('myapp:broadcast:pre', 'prefixed') == 1
        assert next_message(ws) == 'prefixed'
    finally:
        server.stop()


def test_redis_failures_answer_503_before_the_handshake_and_1011_after(ws4redis_env):
    """WS4REDIS_CONNECTION names a port where no Redis listens: the check warns, reading
    the kept messages fails before the handshake, publishing after it."""
    server = serve({**ws4redis_env, 'WS4REDIS_TEST_PORT': str(free_port())})
    try:
        assert 'superserver_ws4redis.W002' in server.output()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            connect(server, 'down?subscribe-broadcast')
        assert refused.value.status_code == 503
        ws = connect(server, 'down?publish-broadcast')   # nothing to read first
        ws.send('lost')
        assert closing_code(ws) == 1011
    finally:
        server.stop()


def test_allowed_channels_refuses_with_403_before_accepting(servers):
    a, _ = servers
    mark = len(a.lines)
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        connect(a, 'private?subscribe-broadcast')
    assert refused.value.status_code == 403
    assert refused.value.resp_body == b'log in to listen to private\n'
    a.wait_for(r'"GET /ws/private\?subscribe-broadcast HTTP/1.1" 403', start=mark)
    assert not any('WebSocket /ws/private' in line for line in a.lines[mark:])
    connect(a, 'private?subscribe-broadcast', session=log_in(a, 'bob')).close()


def test_allowed_channels_narrows_what_a_client_may_do(servers, store):
    a, _ = servers
    pubsub = listening(store, 'broadcast:readonly')
    ws = connect(a, 'readonly?subscribe-broadcast&publish-broadcast')
    mark = len(a.lines)
    ws.send('not published')
    ws.close()
    a.wait_for(r'WebSocket /ws/readonly from .* 1 in', start=mark)   # handled, view over
    store.publish('broadcast:readonly', 'marker')
    assert published(pubsub) == ('broadcast:readonly', 'marker')
    assert store.get('broadcast:readonly') is None
    pubsub.close()


def test_process_request_logs_the_socket_in(servers, store):
    a, _ = servers
    ws = connect(a, 'token?subscribe-user&token=bob')
    assert store.publish('user:bob:token', 'for bob') == 1
    assert next_message(ws) == 'for bob'


# -- ws4redis.js in Chromium ------------------------------------------------------------

#: Before the page's scripts: notes the heartbeats every WebSocket sends and receives.
HEARTBEAT_LOG = '''
window.heartbeats = [];
window.sockets = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
    const ws = new NativeWebSocket(url, protocols);
    window.sockets += 1;
    const send = ws.send.bind(ws);
    ws.send = function (data) {
        if (data === '%(beat)s') window.heartbeats.push('sent');
        return send(data);
    };
    ws.addEventListener('message', function (event) {
        if (event.data === '%(beat)s') window.heartbeats.push('received');
    });
    return ws;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
''' % {'beat': HEARTBEAT}


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER and JQUERY.is_dir())
                    and not os.environ.get('CI'),
                    reason='chromium, chromedriver or jQuery (tests/node) is missing: make '
                           'test installs them')
def test_ws4redis_js_in_chromium(servers, ws4redis_env, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    a, b = servers
    driver = browser()
    driver.execute_cdp_cmd('Page.addScriptToEvaluateOnNewDocument', {'source': HEARTBEAT_LOG})
    wait = WebDriverWait(driver, 15)
    driver.get(a.url + '/chat/?facility=browser')
    opened = time.monotonic()
    wait.until(lambda d: d.find_element(By.ID, 'status').text == 'connected')

    def shown():
        return [li.text for li in driver.find_elements(By.CSS_SELECTOR, '#messages li')]

    in_project(ws4redis_env, '''
        from extensions.ws4redis.publisher import RedisPublisher
        from extensions.ws4redis.redis_store import RedisMessage
        RedisPublisher(facility='browser', broadcast=True).publish_message(
            RedisMessage('from a publisher'))
    ''')
    wait.until(lambda d: 'from a publisher' in shown())

    other = connect(b, 'browser?subscribe-broadcast')
    assert next_message(other) == 'from a publisher'   # kept, sent on connect
    driver.find_element(By.ID, 'text').send_keys('from Chromium')
    driver.find_element(By.ID, 'send').click()
    assert next_message(other) == 'from Chromium'      # through the other process
    other.close()
    wait.until(lambda d: 'from Chromium' in shown())   # the page asked for echo

    # ws4redis.js beats every 5 s and counts the beats not answered; after two of
    # them, every one must have been answered (its counter back at 0 each time).
    def beats():
        log = driver.execute_script('return window.heartbeats')
        return log if log.count('sent') >= 2 and log[-1] == 'received' else None

    log = wait_until(beats, timeout=20, interval=0.25)
    assert log, driver.execute_script('return window.heartbeats')
    missed = most_missed = 0
    for event in log:
        missed = missed + 1 if event == 'sent' else 0
        most_missed = max(most_missed, missed)
    assert most_missed == 1, log
    assert driver.execute_script('return window.sockets') == 1   # never reconnected
    assert driver.find_element(By.ID, 'status').text == 'connected'
    assert shown() == ['from a publisher', 'from Chromium']   # heartbeats not shown
    print('\n%d heartbeats in %.1f s, each answered' % (len(log), time.monotonic() - opened))
