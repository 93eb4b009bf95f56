"""Websocket views and the database, on SQLite: a bounded number of connections per
process, and ``offload`` for blocking calls. (PostgreSQL: tests/test_postgres.py.)"""
import threading

import pytest
import requests
import websocket

from .server_process import ServerProcess, wait_until


@pytest.fixture(scope='module')
def two_connections(project_env):
    """A server whose websocket views may hold two database connections at once."""
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0',
                           env={**project_env, 'SUPERSERVER_TEST_DATABASE_CONNECTIONS': '2'})
    yield server
    server.stop()


def test_a_view_waits_for_a_free_connection_beyond_the_bound(two_connections):
    holders = [websocket.create_connection(two_connections.ws_url + '/ws/transaction/',
                                           timeout=10) for _ in range(2)]
    for ws in holders:
        assert ws.recv() == '1'   # each holds a connection, inside a transaction
    third = websocket.create_connection(two_connections.ws_url + '/ws/transaction/',
                                        timeout=10)
    third.settimeout(1)
    with pytest.raises(websocket.WebSocketTimeoutException):
        third.recv()              # no third connection while two are in use...
    holders[0].close()
    third.settimeout(10)
    assert third.recv() == '1'    # ...until one is released
    for ws in (holders[1], third):
        ws.close()


def test_plain_requests_are_not_bounded(two_connections):
    holders = [websocket.create_connection(two_connections.ws_url + '/ws/transaction/',
                                           timeout=10) for _ in range(2)]
    for ws in holders:
        assert ws.recv() == '1'
    # A plain request that queries is served as Django serves it, with a connection of
    # its own, whatever the websocket views hold.
    assert requests.get(two_connections.url + '/users/', timeout=5).text == '1'
    for ws in holders:
        ws.close()


def test_offload_runs_a_blocking_call_while_the_loop_serves(django_server):
    answers = []
    slow = threading.Thread(target=lambda: answers.append(
        requests.get(django_server.url + '/offloaded/', timeout=20).text))
    slow.start()

    def offloading():
        return requests.get(django_server.url + '/offloaded/now/', timeout=5).json()['offloading']

    # Answered while the blocking call (1 s) runs in its thread: the loop serves meanwhile.
    # (A blocked loop would answer only once the call ended, and say 0.)
    assert wait_until(offloading, timeout=10) == 1
    slow.join(20)
    assert answers == ['done in a thread']


def test_limiting_again_wraps_once_and_keeps_the_limit():
    from django.db.backends.base.base import BaseDatabaseWrapper

    from extensions import db

    try:
        db.limit_connections(3)
        limit = db._limit
        wrapped = BaseDatabaseWrapper.connect, BaseDatabaseWrapper.close
        db.limit_connections(3)          # the gunicorn worker and wsgi.py may both ask
        assert db._limit is limit        # the slots taken stay counted
        db.limit_connections(None)
        db.limit_connections(3)
        assert (BaseDatabaseWrapper.connect, BaseDatabaseWrapper.close) == wrapped
    finally:
        db.limit_connections(None)
