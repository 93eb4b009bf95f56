"""gunicorn with superserver's worker, serving the test project's stock wsgi.py: every
worker serves HTTP, SSE and websockets; stops and restarts lose no one."""
import os
import signal
import ssl
import subprocess
import time

import pytest
import requests
import websocket
from werkzeug.serving import make_ssl_devcert

from .in_flight import InFlight, closing, first_sse_data
from .server_process import PYTHON, ROOT, GunicornProcess, wait_until
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)

#: Enough tries for connections to land on every worker; the kernel picks the acceptor.
TRIES = 200


def open_socket(server, query=''):
    """A websocket to /ws/process/ and the pid of the worker serving it."""
    ws = websocket.create_connection(server.ws_url + '/ws/process/' + query, timeout=10)
    return ws, int(ws.recv().split()[0])


def sockets_on_every_worker(server, query='', at_least=6):
    """Open websockets until every worker serves one (and ``at_least`` are open)."""
    workers, sockets, seen = server.workers(), [], set()
    for _ in range(TRIES):
        ws, pid = open_socket(server, query)
        sockets.append(ws)
        seen.add(pid)
        if seen == workers and len(sockets) >= at_least:
            return sockets
    raise AssertionError('workers %s, served by %s' % (workers, seen))


def pids_serving(server, fetch):
    """The pids ``fetch()`` sees, tried until every worker answered once."""
    workers, seen = server.workers(), set()
    for _ in range(TRIES):
        seen.add(fetch())
        if seen == workers:
            break
    return seen


@pytest.fixture(scope='module')
def gunicorn(project_env):
    server = GunicornProcess(env=project_env)
    yield server
    server.stop()


def test_every_worker_serves_http_sse_and_websockets(gunicorn):
    workers = gunicorn.workers()
    assert len(workers) == 2

    def http():
        return requests.get(gunicorn.url + '/process/', headers={'Connection': 'close'},
                            timeout=10).json()['pid']

    def sse():
        with requests.get(gunicorn.url + '/sse/process/', stream=True, timeout=10) as response:
            assert response.headers['Content-Type'].startswith('text/event-stream')
            return int(first_sse_data(response))

    def echo():
        ws, pid = open_socket(gunicorn)
        ws.send('ping?')
        assert ws.recv() == 'ping?'
        ws.close()
        return pid

    for fetch in (http, sse, echo):
        assert pids_serving(gunicorn, fetch) == workers, fetch.__name__


def test_the_stock_wsgi_py_is_served_with_the_projects_settings(gunicorn):
    # SUPERSERVER_ALLOWED_ORIGINS of tests/project/settings.py lets this page in...
    ws = websocket.create_connection(gunicorn.ws_url + '/ws/echo/', timeout=10,
                                     origin='http://allowed.example')
    ws.send('allowed')
    assert ws.recv() == 'allowed'
    ws.close()
    # ...and the origin policy of the settings keeps other sites out.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(gunicorn.ws_url + '/ws/echo/', timeout=10,
                                    origin='http://evil.example')
    assert refused.value.status_code == 403


def test_websocket_views_release_their_database_connection(project_env):
    server = GunicornProcess(workers=1, env=project_env)   # /db/ counts in one process
    try:
        ws = websocket.create_connection(server.ws_url + '/ws/db/', timeout=10)
        assert ws.recv() == '1'
        assert wait_until(
            lambda: requests.get(server.url + '/db/', timeout=10).json()['open'] == 0,
            interval=0.05)
        ws.close()
    finally:
        server.stop()


def test_sigterm_sends_1001_lets_requests_finish_and_the_master_exits(project_env):
    server = GunicornProcess('--graceful-timeout', '10', env=project_env)
    in_flight = InFlight(server, sockets_on_every_worker(server))
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    in_flight.assert_nobody_lost()
    assert server.wait(15) == 0
    took = time.monotonic() - started
    print('\ngunicorn SIGTERM with %d websockets, an SSE stream and a 2 s request in flight: '
          'master exited after %.2f s' % (len(in_flight.sockets), took))
    assert took < 10   # within the grace period


def test_sigterm_to_every_process_at_once_is_still_a_shutdown(project_env):
    # systemd's default KillMode signals the master and the workers together.
    server = GunicornProcess(env=project_env, own_group=True)
    sockets = sockets_on_every_worker(server)
    os.killpg(server.pid, signal.SIGTERM)
    assert {closing(ws) for ws in sockets} == {(1001, 'server shutting down')}
    assert server.wait(15) == 0


def test_preload_is_refused_with_a_reason(project_env):
    refused = subprocess.run(
        [PYTHON, '-m', 'gunicorn', '-k', 'extensions.gunicorn.WebSocketWorker', '--preload',
         '-b', '127.0.0.1:0', 'tests.project.wsgi'],
        cwd=ROOT, env={**os.environ, **project_env}, capture_output=True, text=True,
        timeout=60)
    assert refused.returncode == 1
    assert 'cannot serve a preloaded application (--preload)' in refused.stderr


def test_sigint_is_gunicorns_quick_shutdown_still_with_1001(project_env):
    server = GunicornProcess(env=project_env)
    sockets = sockets_on_every_worker(server)
    server.signal(signal.SIGINT)
    assert {closing(ws) for ws in sockets} == {(1001, 'server shutting down')}
    assert server.wait(10) == 0


def test_hup_sends_1012_and_clients_reconnect_to_the_new_workers(project_env):
    server = GunicornProcess(env=project_env)
    try:
        old = server.workers()
        sockets = sockets_on_every_worker(server)
        server.signal(signal.SIGHUP)
        assert {closing(ws) for ws in sockets} == {(1012, 'server restarting')}
        # Reconnecting at once, as a client told 1012 does, reaches a new worker.
        for _ in range(10):
            ws, pid = open_socket(server)
            assert pid not in old
            ws.send('again')
            assert ws.recv() == 'again'
            ws.close()
        assert server.process.poll() is None   # the master goes on
    finally:
        server.stop()


def test_a_worker_retired_by_max_requests_sends_1012(project_env):
    server = GunicornProcess('--max-requests', '10', '--max-requests-jitter', '0',
                             workers=1, env=project_env)
    try:
        ws, first = open_socket(server)
        for _ in range(12):
            requests.get(server.url + '/', headers={'Connection': 'close'}, timeout=10)
        assert closing(ws) == (1012, 'server restarting')
        server.wait_for(r'Autorestarting worker after 10 requests')
        ws, second = open_socket(server)
        assert second != first
        ws.close()
    finally:
        server.stop()


@requires_redis
def test_a_message_published_through_redis_reaches_clients_of_both_workers(
        project_env, redis_server):
    server = GunicornProcess(env={**project_env, 'SUPERSERVER_TEST_BROKER': redis_server.url})
    try:
        members = sockets_on_every_worker(server, '?room=both')
        members[0].send('hello, every worker')
        for ws in members:
            assert ws.recv() == 'hello, every worker'
    finally:
        server.stop()


#: The start of the warning about several workers, each with a broker of its own.
BROKER_PER_WORKER = "SUPERSERVER_BROKER is 'memory://' with 2 workers: each worker has"


@pytest.mark.parametrize('workers, broker, warnings', [
    (2, None, 1),
    (1, None, 0),
    pytest.param(2, 'redis', 0, marks=requires_redis),
])
def test_several_workers_with_a_broker_each_warn_once_per_start(
        project_env, request, workers, broker, warnings):
    env = dict(project_env)
    if broker == 'redis':
        env['SUPERSERVER_TEST_BROKER'] = request.getfixturevalue('redis_server').url
    server = GunicornProcess(workers=workers, env=env)
    server.stop()   # all the output, from every worker
    warned = [line for line in server.lines if 'SUPERSERVER_BROKER' in line]
    assert len(warned) == warnings, server.output()
    assert all('[WARNING] ' + BROKER_PER_WORKER in line for line in warned), warned


@pytest.mark.filterwarnings('ignore:Unverified HTTPS request')   # a self-signed certificate
def test_certfile_and_keyfile_give_wss(project_env, tmp_path):
    cert, key = make_ssl_devcert(str(tmp_path / 'cert'), host='127.0.0.1')
    server = GunicornProcess('--certfile', cert, '--keyfile', key, scheme='https',
                             env=project_env)
    try:
        ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10,
                                         sslopt={'cert_reqs': ssl.CERT_NONE})
        ws.send('over tls')
        assert ws.recv() == 'over tls'
        ws.close()
        assert requests.get(server.url + '/process/', verify=False, timeout=10).json()['secure']
    finally:
        server.stop()
