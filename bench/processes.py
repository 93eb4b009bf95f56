"""Processes of a measurement, each on its own core: the server on SERVER_CORE, the load
generator (``bench.client`` or wrk) on CLIENT_CORE, so that neither takes the other's
CPU. Everything listens and connects on 127.0.0.1 only.
"""
import contextlib
import json
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
#: The repository root on the path of every process (``extensions``, ``gevent_specific``
#: and ``bench`` import from it, whatever the command), and the benchmark project's
#: settings whatever the caller had (pytest has the test project's).
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'PYTHONUNBUFFERED': '1',
       'DJANGO_SETTINGS_MODULE': 'bench.project.settings'}
SERVER_CORE, CLIENT_CORE = 0, 1
START_TIMEOUT = 60    # seconds a server may take to listen
STOP_TIMEOUT = 10     # seconds between SIGTERM and SIGKILL
#: Seconds a load generator may run beyond the scenario's own duration.
LOAD_TIMEOUT = 300


class MeasurementError(Exception):
    """A server or the load generator failed; the harness reports it and goes on."""


def pinned(core):
    return ['taskset', '-c', str(core)]


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server started fresh on a free loopback port, pinned to SERVER_CORE with the
    hard open-file limit (10,000 connections need it); its output goes to ``log``.
    ``taskset`` and ``prlimit`` exec the server, so ``pid`` is the server's own."""

    def __init__(self, server, log, env=None):
        self.port = free_port()
        hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        command = [*pinned(SERVER_CORE), 'prlimit', '--nofile=%d:%d' % (hard_limit, hard_limit),
                   '--', *(part.format(python=PYTHON, port=self.port) for part in server.command)]
        self.log = log
        with open(log, 'a') as output:
            output.write('\n=== %s\n' % shlex.join(command))
            output.flush()
            self.process = subprocess.Popen(command, cwd=ROOT, env={**ENV, **(env or {})},
                                            stdin=subprocess.DEVNULL,
                                            stdout=output, stderr=subprocess.STDOUT,
                                            process_group=0)
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.process.pid

    def cpu_seconds(self):
        """CPU time (user and system) the server has used so far, its workers included."""
        server = psutil.Process(self.pid)
        total = 0.0
        for process in (server, *server.children(recursive=True)):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def url(self, path, scheme='ws'):
        return '%s://127.0.0.1:%d%s' % (scheme, self.port, path)

    def _wait_until_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MeasurementError('the server exited with %d before listening (%s)'
                                       % (self.process.returncode, self.log))
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise MeasurementError('the server did not listen within %d s (%s)'
                               % (START_TIMEOUT, self.log))

    def stop(self):
        """SIGTERM, then SIGKILL if it has not ended after STOP_TIMEOUT: to its process
        group then, so that no worker of gunicorn's outlives its master."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def run_load(command, duration=0):
    """The standard output of a load generator run pinned to CLIENT_CORE."""
    timeout, name = duration + LOAD_TIMEOUT, ' '.join(command[:3])
    try:
        result = subprocess.run([*pinned(CLIENT_CORE), *command], cwd=ROOT, env=ENV,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MeasurementError('%s did not finish within %d s' % (name, timeout)) from None
    if result.returncode:
        lines = (result.stderr or result.stdout).strip().splitlines() or ['(no output)']
        raise MeasurementError('%s exited with %d: %s' % (name, result.returncode, lines[-1]))
    return result.stdout


def run_client(spec, duration=0):
    """The figures of ``bench.client`` for ``spec`` (see its scenarios)."""
    output = run_load([PYTHON, '-m', 'bench.client', json.dumps(spec)], duration)
    return json.loads(output.splitlines()[-1])
