"""Services the tests start for real: redis-server, and two test-project servers on it.

Import ``redis_server`` (a fixture), and ``servers`` for the two servers, into a test
module to use them, and mark the module ``requires_redis``.
"""
import os
import shutil
import subprocess
import time

import pytest
import redis

from .server_process import ServerProcess, free_port

#: Skipped on a developer's machine without redis-server; never in CI, where it must run.
requires_redis = pytest.mark.skipif(
    shutil.which('redis-server') is None and not os.environ.get('CI'),
    reason='redis-server is not installed (make test installs it)')


class RedisProcess:
    """redis-server on a free loopback port, in a directory of its own, no persistence."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.url = 'redis://127.0.0.1:%d/0' % self.port
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'no', '--dir', str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope='module')
def redis_server(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp('redis'))
    yield server
    server.stop()


@pytest.fixture(scope='module')
def servers(project_env, redis_server):
    """Servers A and B of the test project (``tests/project/``), both on ``redis_server``."""
    env = {**project_env, 'SUPERSERVER_TEST_BROKER': redis_server.url}
    pair = [ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', env=env)
            for _ in range(2)]
    yield pair
    for server in pair:
        server.stop()
