"""``./manage.py superserver`` in a subprocess, on a free port read from its banner.

Used by the tests and by the Autobahn runner (``autobahn/run.py``).
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port():
    """A loopback port nothing listens on now (for servers that must keep their port)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``manage.py superserver`` in a subprocess; its output is kept in ``lines``."""

    BANNER = re.compile(r'Starting development server at (https?://\S+?)/?$')

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
