"""Django's own features, served as users serve them: under ``manage.py superserver`` and
the gunicorn worker, on every Django the project supports (5.2, 6.0, 6.1).

- ``StreamingHttpResponse`` over a sync generator and over an async one: chunks reach
  the client as they are made, websockets on the same server stay quick meanwhile, and
  async streams leave no thread behind. Django's WSGI handler would buffer an async
  iterator whole (its ``__iter__`` awaits it to a list); superserver streams it chunk
  by chunk (``extensions.wsgi.AsyncStreamingContent``).
- ``FileResponse`` of a 64 MiB file: intact, with its Content-Length, while an echo
  stays quick.
- Django 6.0's template partials and Content Security Policy (its middleware, the
  ``SECURE_CSP`` setting and the ``csp_nonce`` of its context processor) on a page that
  opens a websocket to the same server; and in Chromium, where the policy is enforced.
  Skipped before 6.0, which has neither.

The views are ``tests/project/feature_views.py``. Django's connection pool is in
tests/test_postgres.py, async views and async middleware in tests/test_async.py, the
test client and live server in tests/test_testing.py.
"""
import hashlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import django
import pytest
import requests
import websocket

from .chromium import browser, requires_chromium  # noqa: F401 (browser: a fixture)
from .project.feature_views import ASYNC_STREAM_ENDED, DOWNLOAD
from .server_process import GunicornProcess, ServerProcess

#: The Django 6.0 features' page and policy, which the test project adds on 6.0 and later.
CSP = {'SUPERSERVER_TEST_CSP': '1'}

requires_django_6 = pytest.mark.skipif(
    django.VERSION < (6, 0), reason='template partials and the CSP middleware are Django 6.0 '
                                    'features (Django %s)' % django.get_version())

#: The longest an echo may wait while streams or a download run (milliseconds when
#: nothing holds the event loop; a held loop would hold it for a chunk interval or more).
LONGEST_ECHO = 0.5

#: The size of the file ``FileResponse`` serves.
FILE_SIZE = 64 * 1024 * 1024


@pytest.fixture(scope='module')
def big_file(tmp_path_factory):
    """A file of FILE_SIZE random bytes, and its sha256."""
    path = tmp_path_factory.mktemp('download') / 'big.bin'
    digest = hashlib.sha256()
    with open(path, 'wb') as file:
        for _ in range(FILE_SIZE // (1 << 20)):
            block = os.urandom(1 << 20)
            digest.update(block)
            file.write(block)
    return path, digest.hexdigest()


@pytest.fixture(scope='module')
def features_env(project_env, big_file):
    return {**project_env, **CSP, DOWNLOAD: str(big_file[0])}


@pytest.fixture(scope='module')
def dev_server(features_env):
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', env=features_env)
    yield server
    server.stop()


@pytest.fixture(scope='module')
def gunicorn_server(features_env):
    server = GunicornProcess(env=features_env)
    yield server
    server.stop()


@pytest.fixture(params=['dev_server', 'gunicorn_server'])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def echo(server):
    ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10)
    yield ws
    ws.close()


def echo_while(ws, busy, limit=500):
    """Seconds each echo round trip took, one every 10 ms while ``busy()`` (at most
    ``limit`` of them)."""
    round_trips = []
    while busy() and len(round_trips) < limit:
        sent = time.monotonic()
        ws.send('ping %d' % len(round_trips))
        assert ws.recv() == 'ping %d' % len(round_trips)
        round_trips.append(time.monotonic() - sent)
        time.sleep(0.01)
    return round_trips


def read_stream(url):
    """The lines of a streamed response, and when (``time.time()``) the first arrived."""
    with requests.get(url, stream=True, timeout=30) as response:
        assert response.status_code == 200, response.text
        lines = response.iter_lines(decode_unicode=True)
        first = next(lines)
        first_at = time.time()
        return [first, *lines], first_at


# -- streaming responses ---------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['sync', 'async'])
def test_a_stream_arrives_chunk_by_chunk(server, kind):
    """The first chunk is read before the generator made its last one (each line says
    when it was made; the server's clock is this machine's)."""
    lines, first_at = read_stream(server.url + '/features/stream/%s/?count=5&interval=0.3'
                                  % kind)
    assert [line.split()[:2] for line in lines] == [['chunk', str(i)] for i in range(5)]
    last_made = float(lines[-1].split()[2])
    assert first_at < last_made, 'the first chunk came with the last: the stream was buffered'


def test_streams_leave_the_event_loop_free(server, echo):
    """20 streams at once, sync and async, each about a second long: every echo meanwhile
    is quick, and every stream is whole."""
    paths = ['/features/stream/%s/?count=6&interval=0.2' % kind for kind in ('sync', 'async')]
    with ThreadPoolExecutor(20) as pool:
        streams = [pool.submit(read_stream, server.url + paths[i % 2]) for i in range(20)]
        round_trips = echo_while(echo, lambda: not all(stream.done() for stream in streams))
        results = [stream.result()[0] for stream in streams]
    assert all(len(lines) == 6 for lines in results)
    assert len(round_trips) >= 10 and max(round_trips) < LONGEST_ECHO, \
        (len(round_trips), max(round_trips))


def test_a_client_leaving_closes_the_async_generator(server):
    """A client that leaves after the first chunk of a long async stream: the server
    closes the generator (its ``finally`` runs) within a chunk or two, rather than
    awaiting it to its end."""
    start = len(server.lines)
    with requests.get(server.url + '/features/stream/async/?count=100&interval=0.1&name=left',
                      stream=True, timeout=30) as response:
        assert next(response.iter_lines()).startswith(b'chunk 0 ')
    ended = server.wait_for((ASYNC_STREAM_ENDED % ('left', 0)).replace('0', r'(\d+)'),
                            timeout=10, start=start)
    assert int(ended.group(1)) < 100


def test_async_streams_leave_no_thread_behind(server):
    """100 async streams (20 at a time): the process runs as many threads after them as
    a few requests need, not one more per stream. With two gunicorn workers, each is
    asked until both answered."""
    def threads():
        counts = {}
        for _ in range(20):
            answer = requests.get(server.url + '/features/threads/',
                                  headers={'Connection': 'close'}, timeout=10).json()
            counts[answer['pid']] = answer
        return counts

    before = threads()
    url = server.url + '/features/stream/async/?count=3&interval=0.01'
    with ThreadPoolExecutor(20) as pool:
        assert all(len(lines) == 3 for lines, _ in pool.map(read_stream, [url] * 100))
    after = threads()
    print('\nthreads before and after 100 async streams: %s, %s' % (before, after))
    for pid, counts in after.items():
        earlier = before.get(pid, {'active_count': 1, 'native': 2})
        assert counts['active_count'] <= earlier['active_count'] + 5, (before, after)
        assert counts['native'] <= max(earlier['native'], 2) + 5, (before, after)


# -- FileResponse ----------------------------------------------------------------------------

def test_a_large_file_response_arrives_whole_while_websockets_stay_quick(server, echo,
                                                                          big_file):
    """64 MiB read slowly (about 2 s, a MiB every 30 ms): the same bytes, the announced
    Content-Length, and every echo meanwhile quick."""
    path, sha256 = big_file
    start = len(server.lines)
    result = {}

    def download():
        with requests.get(server.url + '/features/download/', stream=True,
                          timeout=30) as response:
            result['status'] = response.status_code
            result['headers'] = response.headers
            digest, size = hashlib.sha256(), 0
            for block in response.iter_content(1 << 20):
                digest.update(block)
                size += len(block)
                time.sleep(0.03)
            result['size'], result['sha256'] = size, digest.hexdigest()

    thread = threading.Thread(target=download)
    thread.start()
    round_trips = echo_while(echo, thread.is_alive)
    thread.join(60)
    assert result['status'] == 200
    assert result['headers']['Content-Length'] == str(FILE_SIZE)
    assert result['headers']['Content-Disposition'] == 'attachment; filename="download.bin"'
    assert (result['size'], result['sha256']) == (FILE_SIZE, sha256)
    assert len(round_trips) >= 10 and max(round_trips) < LONGEST_ECHO, \
        (len(round_trips), max(round_trips))
    assert 'The event loop was blocked' not in '\n'.join(server.lines[start:])


# -- Django 6.0: template partials, Content Security Policy --------------------------------

@requires_django_6
def test_template_partials(server):
    page = requests.get(server.url + '/features/partials/', timeout=10).text
    assert '<ul><li>ada</li><li>grace</li></ul>' in page
    assert '<p id="greeting">Hello, linus</p>' in page   # an inline partial
    for name, html in [('item', '<li>linus</li>'),
                       ('greeting', '<p id="greeting">Hello, linus</p>')]:
        response = requests.get(server.url + '/features/partials/?partial=' + name, timeout=10)
        assert (response.status_code, response.text.strip()) == (200, html)


def csp_nonce(response):
    """The nonce of the page's policy, which its inline script must carry."""
    policy = response.headers['Content-Security-Policy']
    directives = dict(directive.strip().split(' ', 1) for directive in policy.split(';'))
    assert directives['connect-src'] == "'self'", policy
    nonce = re.fullmatch(r"'self' 'nonce-([^']+)'", directives['script-src'])
    assert nonce, policy
    return nonce.group(1)


@requires_django_6
def test_a_page_with_a_csp_nonce_and_its_websocket(server):
    """The policy allows the page's origin to connect (``'self'``, which covers ws: and
    wss: of the same host), the inline script carries the response's nonce, and the
    websocket it opens is served, from the page's origin."""
    first = requests.get(server.url + '/features/csp/', timeout=10)
    nonce = csp_nonce(first)
    assert '<script nonce="%s">' % nonce in first.text
    assert '<p id="status">connecting</p>' in first.text
    assert csp_nonce(requests.get(server.url + '/features/csp/', timeout=10)) != nonce
    ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10,
                                     origin=server.url)
    ws.send('through the CSP')
    assert ws.recv() == 'through the CSP'
    ws.close()


@requires_django_6
@requires_chromium
def test_chromium_opens_the_websocket_under_the_policy(dev_server, browser):  # noqa: F811
    """Chromium enforces the policy: the inline script without the nonce is blocked (the
    policy is in force), the nonced one runs and its websocket is echoed, with no other
    violation."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver = browser()
    driver.get(dev_server.url + '/features/csp/')
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.getElementById('status').textContent")
        != 'connecting')
    assert driver.execute_script("return document.getElementById('status').textContent") \
        == 'echoed: through the CSP'
    assert driver.execute_script('return window.unnonced') is None
    assert driver.execute_script('return window.violations') == ['script-src-elem inline']
