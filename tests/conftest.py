"""Fixtures: real servers on loopback ports, in a thread or as a subprocess.

- ``ThreadedServer`` runs a ``WebSocketServer`` in a thread with its own gevent hub,
  so tests of the server core (plain WSGI apps, no Django) can look at its state.
- ``ServerProcess`` runs ``./manage.py superserver`` as users do, on port 0, and
  reads the port from its banner. The Django tests use the ``tests.project`` project.
"""
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import django
import gevent
import pytest

from extensions.adaptation import WebSocketServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.project.settings')
django.setup()


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


class ServerProcess:
    """``manage.py superserver`` in a subprocess; its output is kept in ``lines``."""

    BANNER = re.compile(r'Starting development server at (http://\S+?)/?$')

    def __init__(self, *args, env=None, cwd=ROOT, manage=ROOT / 'manage.py'):
        self.lines = []
        self.process = subprocess.Popen(
            [PYTHON, str(manage), 'superserver', *args],
            cwd=cwd, env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = self.wait_for(self.BANNER).group(1)

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip('\n'))

    def wait_for(self, pattern, timeout=30, start=0):
        """The first match of ``pattern`` in the output from line ``start`` on."""
        pattern = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[start:]:
                if match := pattern.search(line):
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError('no %r in the server output:\n%s'
                             % (pattern.pattern, '\n'.join(self.lines)))

    @property
    def ws_url(self):
        return 'ws' + self.url[len('http'):]

    def output(self):
        return '\n'.join(self.lines)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)


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
