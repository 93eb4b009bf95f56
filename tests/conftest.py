"""Fixtures: real servers on loopback ports, in a thread or as a subprocess.

- ``ThreadedServer`` runs a ``WebSocketServer`` in a thread with its own gevent hub,
  so tests of the server core (plain WSGI apps, no Django) can look at its state.
- ``ServerProcess`` (``tests/server_process.py``) runs ``./manage.py superserver`` as
  users do. The Django tests serve the ``tests.project`` project with it.
"""
import os
import subprocess
import threading

import django
import gevent
import pytest

from extensions.adaptation import WebSocketServer

from .server_process import PYTHON, ROOT, ServerProcess

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.project.settings')
django.setup()


def echo_application(environ, start_response):
    """Websockets echo; plain requests get their path back."""
    ws = environ.get('wsgi.websocket')
    if ws is not None:
        for message in ws:
            ws.send(message)
        return []
    body = environ['PATH_INFO'].encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


class ThreadedServer:
    """A WebSocketServer serving ``application`` from a thread of its own."""

    def __init__(self, application, **kwargs):
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(application, kwargs),
                                        daemon=True)
        self._thread.start()
        assert self._ready.wait(10), 'server thread did not start'

    def _serve(self, application, kwargs):
        self.server = WebSocketServer(('127.0.0.1', 0), application, log=None, **kwargs)
        self.server.start()
        self.hub = gevent.get_hub()
        self.port = self.server.server_port
        self._ready.set()
        self.server.serve_forever()

    @property
    def url(self):
        return 'ws://127.0.0.1:%d' % self.port

    def stop(self):
        self.hub.loop.run_callback_threadsafe(gevent.spawn, self.server.stop, 1)
        self._thread.join(10)


def manage(*args, env):
    """Run a management command of the test project and return its output."""
    return subprocess.run([PYTHON, str(ROOT / 'manage.py'), *args], cwd=ROOT, check=True,
                          env={**os.environ, **env}, capture_output=True, text=True).stdout


@pytest.fixture(scope='session')
def project_env(tmp_path_factory):
    """Environment of the test project, with a migrated SQLite database and a user."""
    env = {'DJANGO_SETTINGS_MODULE': 'tests.project.settings',
           'SUPERSERVER_TEST_DATABASE': str(tmp_path_factory.mktemp('db') / 'db.sqlite3')}
    manage('migrate', '--noinput', env=env)
    manage('shell', '-c', 'from django.contrib.auth.models import User; '
           'User.objects.create_user("alice", password="wonderland")', env=env)
    return env


@pytest.fixture(scope='session')
def django_server(project_env):
    """The test project served by ``manage.py superserver`` on a free port."""
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', env=project_env)
    yield server
    server.stop()
