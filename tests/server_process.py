"""Servers in subprocesses: ``./manage.py superserver`` on a free port read from its
banner (the tests and the Autobahn runner, ``autobahn/run.py``), and gunicorn with
superserver's worker (``GunicornProcess``); ``wait_until`` for what a test waits for.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def wait_until(condition, timeout=10, interval=0.02):
    """The first true value of ``condition()``, asked every ``interval`` seconds for at
    most ``timeout`` seconds; its last value (false) if it never became true."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def free_port():
    """A loopback port nothing listens on now (for servers that must keep their port)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Process:
    """A server in a subprocess; its output (stdout and stderr) is kept in ``lines``."""

    def __init__(self, command, env=None, cwd=ROOT, own_group=False):
        self.lines = []
        self.process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            process_group=0 if own_group else None)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

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

    @property
    def pid(self):
        return self.process.pid

    def signal(self, signum):
        self.process.send_signal(signum)

    def wait(self, timeout):
        """The exit code, once the process ended within ``timeout`` seconds."""
        return self.process.wait(timeout)

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


class ServerProcess(Process):
    """``manage.py superserver`` in a subprocess, on the address its banner gives, once
    the whole banner is out (its lines arrive one by one; a test that looks for what the
    banner does not say must not look before its end). ``python``: another interpreter,
    such as a fresh virtualenv's."""

    BANNER = re.compile(r'Starting development server at (https?://\S+?)/?$')
    BANNER_END = re.compile(r'^Quit the server with CONTROL-C\.$')

    def __init__(self, *args, env=None, cwd=ROOT, manage=ROOT / 'manage.py', python=PYTHON):
        super().__init__([python, str(manage), 'superserver', *args], env=env, cwd=cwd)
        self.url = self.wait_for(self.BANNER).group(1)
        self.wait_for(self.BANNER_END)


class GunicornProcess(Process):
    """gunicorn serving the test project's stock wsgi.py (or ``module`` from ``cwd``) with
    superserver's worker, on the loopback port its master chose and logged (it keeps it
    when it reloads); ``workers()`` are the pids of its worker processes. The project
    must answer /process/ with its pid. ``python``: another interpreter, such as a fresh
    virtualenv's, of the same gunicorn release as this one."""

    LISTENING = re.compile(r'Listening at: https?://127\.0\.0\.1:(\d+) ')

    def __init__(self, *options, workers=2, env=None, module='tests.project.wsgi',
                 scheme='http', own_group=False, cwd=ROOT, python=PYTHON):
        from gunicorn.config import KNOWN_SETTINGS
        # gunicorn 27's control socket has one default path for every instance.
        extra = ['--no-control-socket'] if any(
            setting.name == 'control_socket_disable' for setting in KNOWN_SETTINGS) else []
        super().__init__(
            [python, '-m', 'gunicorn', '-k', 'extensions.gunicorn.WebSocketWorker',
             '-w', str(workers), '-b', '127.0.0.1:0', '--access-logfile', '-',
             *extra, *options, module],
            env={'DJANGO_SETTINGS_MODULE': 'tests.project.settings', **(env or {})},
            cwd=cwd, own_group=own_group)
        self.port = int(self.wait_for(self.LISTENING).group(1))
        self.url = '%s://127.0.0.1:%d' % (scheme, self.port)
        self.wait_until_serving(workers)

    def wait_until_serving(self, count, timeout=30):
        """Until ``count`` workers run and each has answered a request (its app loaded)."""
        import requests
        deadline, answered = time.monotonic() + timeout, set()
        while time.monotonic() < deadline:
            workers = self.workers()
            if len(workers) == count and answered >= workers:
                return
            try:
                answered.add(requests.get(self.url + '/process/', verify=False, timeout=5,
                                          headers={'Connection': 'close'}).json()['pid'])
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.05)   # not listening yet, or a worker still loading the app
        raise AssertionError('gunicorn does not serve with %d workers:\n%s'
                             % (count, self.output()))

    def workers(self):
        import psutil
        return {child.pid for child in psutil.Process(self.pid).children()}

    def stop(self):
        if self.process.poll() is None:
            self.signal(signal.SIGQUIT)   # gunicorn's quick shutdown
        super().stop()
