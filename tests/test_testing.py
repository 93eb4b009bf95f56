"""``extensions.testing``: the test client (no listening socket, the real websocket and
protocol), its database sharing and exceptions under Django's test cases, pytest-django
and a patched ``manage.py test``; the live server; subprotocols of ``require_websocket``;
Django's own features through both (an async view, streaming responses, and Django
6.0's template partials and CSP; served, they are tests/test_django_features.py).
"""
import json
import os
import re
import shutil
import subprocess
import time
import traceback
import unittest

import django
import pytest
import requests
import websocket
from django.contrib.auth.models import User
from django.db import connection
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import TestCase, TransactionTestCase, override_settings

from extensions.decorators import require_websocket
from extensions.handshake import choose_subprotocol
from extensions.pubsub import group_channel, publish
from extensions.testing import Client, LiveServerTestCase, NotAccepted

from .server_process import PYTHON, ROOT
from .chromium import CHROMEDRIVER, CHROMIUM, browser  # noqa: F401

NODE_READY = shutil.which('node') and (ROOT / 'tests' / 'node' / 'node_modules' / 'ws').is_dir()


@pytest.fixture
def client():
    return Client()


def test_echo_with_the_real_websocket_over_a_socket_pair(client):
    with client.websocket('/ws/echo/') as ws:
        assert ws.response.status_code == 101
        ws.send('hello')
        assert ws.receive() == 'hello'
        ws.send(b'\x00\xffbinary')
        assert ws.receive() == b'\x00\xffbinary'
        big = 'é' * 100_000   # past one read of the socket pair
        ws.send(big)
        assert ws.receive() == big
        ws.send_json({'n': 1})
        assert ws.receive_json() == {'n': 1}
        ws.send('not for nothing')
        with pytest.raises(AssertionError, match="unexpected message: 'not for nothing'"):
            ws.assert_no_message()
        ws.assert_no_message()
    assert ws.close_code == 1000   # the server's answer to our close


def test_a_view_answering_in_plain_http_gives_its_response(client):
    ws = client.websocket('/ws/nowhere/')
    assert ws.response.status_code == 404
    with pytest.raises(NotAccepted, match='answered 404 Not Found'):
        ws.receive()


def test_receive_waits_at_most_its_timeout(client):
    with client.websocket('/ws/echo/') as ws:
        with pytest.raises(TimeoutError, match='no message within 0.05 s'):
            ws.receive(timeout=0.05)


def test_messages_published_to_a_forwarded_channel_arrive(client):
    with client.websocket('/ws/room/testing/') as first, \
            client.websocket('/ws/room/testing/') as second:
        assert first.receive() == second.receive() == 'subscribed'
        first.send('from a member')   # the view publishes what it receives
        assert first.receive() == second.receive() == 'from a member'
        publish(group_channel('testing'), {'from': 'the test'})
        assert first.receive_json() == second.receive_json() == {'from': 'the test'}


def test_the_view_limits_apply(client):
    with client.websocket('/ws/small/') as ws:   # max_message_size=1000
        ws.send('x' * 1001)
        assert ws.receive() is None
        assert ws.close_code == 1009


# -- exceptions ------------------------------------------------------------------------------

def test_an_exception_after_accepting_is_raised_in_the_test_with_its_traceback(client):
    with pytest.raises(RuntimeError, match='boom in a websocket view') as raised:
        with client.websocket('/ws/boom/') as ws:
            ws.send('go')
            ws.receive()
    assert 'boom' in [frame.name for frame in traceback.extract_tb(raised.tb)]


def test_an_exception_before_accepting_is_raised_by_websocket(client):
    with pytest.raises(RuntimeError, match='boom before accepting'):
        client.websocket('/ws/boom-before-accepting/')


def test_the_test_may_ask_for_the_1011_close_instead(caplog):
    client = Client(raise_request_exception=False)
    with client.websocket('/ws/boom/') as ws:
        ws.send('go')
        assert ws.receive() is None
        assert ws.close_code == 1011
    [logged] = [record for record in caplog.records if record.name == 'django.request']
    assert logged.getMessage() == 'Internal Server Error: /ws/boom/'   # as Django logs it


# -- subprotocols ----------------------------------------------------------------------------

@pytest.mark.parametrize('offered, chosen', [
    (['chat.v1', 'chat.v2'], 'chat.v1'),     # the client's preference, not the view's
    (['chat.v3', 'chat.v2'], 'chat.v2'),
    (['chat.v3'], None),
    ([], None),
])
def test_choose_subprotocol(offered, chosen):
    assert choose_subprotocol(offered, ['chat.v2', 'chat.v1']) == chosen


@pytest.mark.parametrize('offered, agreed', [
    (['chat.v1', 'chat.v2'], 'chat.v1'),
    (['chat.v3', 'chat.v2'], 'chat.v2'),
    ([], None),                              # offers none: accepted without one
])
def test_require_websocket_accepts_with_a_supported_subprotocol(client, offered, agreed):
    with client.websocket('/ws/versioned-chat/', offered) as ws:
        assert ws.subprotocol == agreed
        assert ws.response.get('Sec-WebSocket-Protocol') == agreed
        assert ws.receive() == (agreed or 'none')   # what the view saw


def test_require_websocket_refuses_a_client_whose_offers_it_does_not_speak(client):
    ws = client.websocket('/ws/versioned-chat/', ['chat.v3', 'chat.v0'])
    assert ws.response.status_code == 400
    assert ws.response.content == (b'None of the subprotocols offered (chat.v3, chat.v0) '
                                   b'is spoken here (chat.v2, chat.v1).\n')


def test_a_view_with_subprotocols_may_still_answer_in_plain_http(client):
    ws = client.websocket('/ws/versioned-chat/?closed', ['chat.v1'])
    assert (ws.response.status_code, ws.response.content) == (403, b'this room is closed\n')


@pytest.mark.parametrize('subprotocols', ['chat.v1', []])
def test_require_websocket_wants_a_list_of_subprotocols(subprotocols):
    with pytest.raises(ValueError, match='non-empty list'):
        require_websocket(subprotocols=subprotocols)


@pytest.mark.skipif(not NODE_READY, reason='node and tests/node/node_modules '
                                           '(make test installs them)')
@pytest.mark.parametrize('path, offered, result', [
    ('/ws/versioned-chat/', ['chat.v3', 'chat.v1'], {'protocol': 'chat.v1'}),
    ('/ws/versioned-chat/', ['chat.v3'], {'error': 'Unexpected server response: 400'}),
    # What the README warns of: a view that picks no subprotocol loses this client.
    ('/ws/echo/', ['chat.v1'], {'error': 'Server sent no subprotocol'}),
])
def test_node_ws_offering_subprotocols(django_server, path, offered, result):
    output = subprocess.run(['node', str(ROOT / 'tests' / 'node' / 'subprotocols.js'),
                             django_server.ws_url + path, *offered],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(output) == result


# -- the database ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_pytest_django_a_logged_in_user_reaches_the_view(client):
    client.force_login(User.objects.create_user('dora'))
    with client.websocket('/ws/whoami/') as ws:
        assert ws.receive() == 'dora'
        assert ws.receive() is None   # the view returned


class TestCaseDataIsSharedWithTheView(TestCase):
    client_class = Client

    @classmethod
    def setUpTestData(cls):
        User.objects.create_user('alice')

    def test_the_view_sees_and_writes_the_tests_transaction(self):
        with self.client.websocket('/ws/users/') as ws:
            ws.send('bob')
            self.assertEqual(ws.receive(), 'alice,bob')
        # The view ended and closed its connections: the test's was kept, transaction and all.
        self.assertTrue(connection.in_atomic_block)
        self.assertTrue(User.objects.filter(username='bob').exists())

    def test_the_view_wrote_in_a_transaction_that_was_rolled_back(self):
        self.assertEqual(list(User.objects.values_list('username', flat=True)), ['alice'])


class TransactionTestCaseDataIsSharedWithTheView(TransactionTestCase):
    client_class = Client

    def test_the_view_sees_committed_data(self):
        User.objects.create_user('carol')
        with self.client.websocket('/ws/users/') as ws:
            ws.send('dave')
            self.assertEqual(ws.receive(), 'carol,dave')


def test_the_demo_chat_tests_under_a_patched_manage_py_test(tmp_path):
    """The README's example, run as users run it: ``manage.py test`` patches with
    gevent_specific first, and connections are then greenlet-local."""
    result = subprocess.run([PYTHON, 'manage.py', 'test', 'superserver', '--noinput'],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'DJANGO_SETTINGS_MODULE': 'superserver.settings',
                                 'DJANGO_DATABASE': str(tmp_path / 'db.sqlite3')})
    assert result.returncode == 0, result.stderr
    assert 'Ran 5 tests' in result.stderr


# -- the live server -------------------------------------------------------------------------

class LiveServerTests(LiveServerTestCase):
    def ws_url(self, path):
        return 'ws' + self.live_server_url[len('http'):] + path

    def test_websockets_and_server_sent_events_are_served(self):
        ws = websocket.create_connection(self.ws_url('/ws/echo/'), timeout=10)
        ws.send('through a real socket')
        self.assertEqual(ws.recv(), 'through a real socket')
        ws.close()
        response = requests.get(self.live_server_url + '/sse/ticks/?count=3&interval=0',
                                timeout=10)
        self.assertEqual(response.headers['Content-Type'], 'text/event-stream; charset=utf-8')
        self.assertIn('id: 3\ndata: tick 3\n\n', response.text)

    def test_a_user_logged_in_by_the_test_reaches_the_websocket_view(self):
        self.client.force_login(User.objects.create_user('erin'))
        ws = websocket.create_connection(
            self.ws_url('/ws/whoami/'), timeout=10,
            cookie='sessionid=%s' % self.client.cookies['sessionid'].value)
        self.assertEqual(ws.recv(), 'erin')
        ws.close()


# -- Django's own features ---------------------------------------------------------------

def csp_settings():
    """Django 6.0's Content Security Policy, as the test project adds it when asked
    (SUPERSERVER_TEST_CSP): its middleware, the nonce's context processor, a policy
    whose scripts need the nonce; none before 6.0."""
    if django.VERSION < (6, 0):
        return {}
    from django.utils.csp import CSP
    return {'MIDDLEWARE': [*settings.MIDDLEWARE,
                           'django.middleware.csp.ContentSecurityPolicyMiddleware'],
            'TEMPLATES': [{**settings.TEMPLATES[0], 'OPTIONS': {
                'context_processors': ['django.template.context_processors.csp']}}],
            'SECURE_CSP': {'default-src': [CSP.SELF], 'script-src': [CSP.SELF, CSP.NONCE],
                           'connect-src': [CSP.SELF]}}


requires_django_6 = unittest.skipIf(django.VERSION < (6, 0),
                                    'template partials and the CSP middleware are Django 6.0 '
                                    'features (Django %s)' % django.get_version())


async def _collect(chunks):
    return [chunk async for chunk in chunks]


def lines_of(response):
    """The lines of a streaming response, its iterator sync or async, chunk numbers only."""
    if response.is_async:
        chunks = async_to_sync(_collect)(response.streaming_content)
    else:
        chunks = list(response.streaming_content)
    return [' '.join(chunk.decode().split()[:2]) for chunk in chunks]


def test_an_async_view_through_the_client(client):
    assert client.get('/async/sleeps/?seconds=0.01').content == b'slept'


@pytest.mark.parametrize('kind', ['sync', 'async'])
def test_a_streaming_response_through_the_client(client, kind):
    response = client.get('/features/stream/%s/?count=3&interval=0' % kind)
    assert (response.streaming, response.is_async) == (True, kind == 'async')
    assert lines_of(response) == ['chunk 0', 'chunk 1', 'chunk 2']


@requires_django_6
def test_template_partials_through_the_client(client):
    page = client.get('/features/partials/').content.decode()
    assert '<ul><li>ada</li><li>grace</li></ul>' in page
    assert client.get('/features/partials/?partial=item').content.strip() == b'<li>linus</li>'


@requires_django_6
def test_a_csp_page_and_its_websocket_through_the_client():
    with override_settings(**csp_settings()):
        client = Client()
        response = client.get('/features/csp/')
        policy = response.headers['Content-Security-Policy']
        assert "connect-src 'self'" in policy
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert '<script nonce="%s">' % nonce in response.content.decode()
        with client.websocket('/ws/echo/') as ws:
            ws.send('through the CSP')
            assert ws.receive() == 'through the CSP'


class LiveServerFeatureTests(LiveServerTestCase):
    def stream(self, kind):
        """The chunk numbers of a stream, whether its first was read before its last was
        made."""
        with requests.get(self.live_server_url + '/features/stream/%s/?count=3&interval=0.3'
                          % kind, stream=True, timeout=30) as response:
            lines = response.iter_lines(decode_unicode=True)
            first = next(lines)
            first_at = time.time()
            rest = list(lines)
        return [line.split()[1] for line in [first, *rest]], first_at < float(rest[-1].split()[2])

    def test_a_sync_stream_arrives_chunk_by_chunk(self):
        self.assertEqual(self.stream('sync'), (['0', '1', '2'], True))

    @pytest.mark.filterwarnings('ignore:StreamingHttpResponse must consume asynchronous')
    def test_an_async_stream_arrives_whole(self):
        """All of it (its chunks each awaited in a loop of their own, it stopped after the
        first). This test process is not patched: Django's iteration awaits the whole
        stream first, as extensions.wsgi.AsyncStreamingContent says; a patched process
        streams it chunk by chunk (tests/test_django_features.py)."""
        self.assertEqual(self.stream('async')[0], ['0', '1', '2'])


@requires_django_6
@override_settings(**csp_settings())
class LiveServerCspTests(LiveServerTestCase):
    def test_a_csp_page_and_its_websocket(self):
        response = requests.get(self.live_server_url + '/features/csp/', timeout=10)
        self.assertIn("connect-src 'self'", response.headers['Content-Security-Policy'])
        self.assertIn('<script nonce="', response.text)
        ws = websocket.create_connection('ws' + self.live_server_url[len('http'):]
                                         + '/ws/echo/', timeout=10,
                                         origin=self.live_server_url)
        ws.send('through the CSP')
        self.assertEqual(ws.recv(), 'through the CSP')
        ws.close()


@pytest.fixture
def chromium(request, browser):  # noqa: F811
    request.cls.driver = browser()


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not os.environ.get('CI'),
                    reason='chromium and chromedriver are not installed (make test installs them)')
@pytest.mark.usefixtures('chromium')
class BrowserTests(LiveServerTestCase):
    """Chromium, driven by Selenium, against the live server: what a browser does with
    the subprotocols a view agrees to, or not."""

    def open_websocket(self, path, subprotocols):
        """'open' and the agreed subprotocol, or 'closed' and the close code."""
        self.driver.get(self.live_server_url + '/')   # a page of the server's origin
        return self.driver.execute_async_script("""
            const [url, subprotocols, done] = arguments;
            const ws = new WebSocket(url, subprotocols);
            ws.onopen = () => { done('open ' + ws.protocol); ws.close(); };
            ws.onclose = (event) => done('closed ' + event.code);
        """, 'ws' + self.live_server_url[len('http'):] + path, subprotocols)

    def test_the_view_choice_reaches_the_browser(self):
        self.assertEqual(self.open_websocket('/ws/versioned-chat/', ['chat.v3', 'chat.v1']),
                         'open chat.v1')

    def test_a_browser_refuses_an_answer_without_the_subprotocol_it_offered(self):
        self.assertEqual(self.open_websocket('/ws/echo/', ['chat.v1']), 'closed 1006')
        self.assertEqual(self.open_websocket('/ws/echo/', []), 'open ')
