"""A throwaway PostgreSQL cluster for the tests, made with Debian's binaries.

``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` in a fresh temporary directory: the
server listens on 127.0.0.1 only, on a free port, and on a unix socket in that
directory; authentication is ``trust``; one database is made for the tests. Durability
is off (``fsync``): the cluster is deleted when the tests stop it.

PostgreSQL refuses to run as root. When the tests do (as in CI), its binaries run as
the ``postgres`` system user that Debian's package creates, and the directory is
handed to that user. The directory comes from ``tempfile.mkdtemp()``, not pytest's
``tmp_path``: its parents must be open to that user, and a unix socket path must stay
under about 100 bytes.

``requires_postgres`` marks the tests that need a cluster. ``BackendMonitor`` counts the
cluster's client backends from a thread while a test runs and keeps the highest count:
how many connections the server under test held.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from .server_process import free_port

#: The system user that runs PostgreSQL when the tests run as root.
SYSTEM_USER = 'postgres'

#: The application_name of the tests' own connections (``connect()``), not counted.
OBSERVER = 'tests/postgres.py'

#: Client backends (connections) of the cluster, the tests' own left out.
CLIENT_BACKENDS = ("select count(*) from pg_stat_activity where backend_type = 'client backend'"
                   " and application_name <> '%s'" % OBSERVER)


def binaries():
    """The directory holding ``pg_ctl``, ``initdb`` and ``postgres``, or None.

    ``pg_ctl`` on PATH first; else the newest of Debian's versioned directories, which
    Debian leaves off PATH.
    """
    on_path = shutil.which('pg_ctl')
    if on_path:
        return Path(on_path).resolve().parent
    versions = glob.glob('/usr/lib/postgresql/*/bin/pg_ctl')
    if not versions:
        return None
    newest = max(versions, key=lambda path: [int(n) for n in Path(path).parts[4].split('.')])
    return Path(newest).parent


#: Skipped on a developer's machine without PostgreSQL; never in CI, where it must run.
requires_postgres = pytest.mark.skipif(binaries() is None and not os.environ.get('CI'),
                                       reason='PostgreSQL is not installed (make test '
                                              'installs it)')


class PostgresCluster:
    """A PostgreSQL server of its own, started by the constructor; ``stop()`` deletes it.

    ``settings`` go to postgresql.conf (e.g. ``max_connections=30``). Clients connect
    as the superuser ``postgres`` to ``127.0.0.1:port``, database ``database``.
    """

    user = 'postgres'

    def __init__(self, database='superserver', **settings):
        self.database = database
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix='superserver-pg-'))
        self.data = self.directory / 'data'
        self.logfile = self.directory / 'postgres.log'
        self._started = False
        # runuser drops root; anyone else runs PostgreSQL as themselves.
        self._as_owner = ['runuser', '-u', SYSTEM_USER, '--'] if os.geteuid() == 0 else []
        try:
            self._start({'listen_addresses': '127.0.0.1', 'port': self.port,
                         'unix_socket_directories': self.directory,
                         'fsync': 'off', 'synchronous_commit': 'off',
                         'full_page_writes': 'off', **settings})
        except BaseException:
            self.stop()
            raise

    def _start(self, settings):
        if self._as_owner:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError('PostgreSQL is not installed: no pg_ctl on PATH or under '
                               '/usr/lib/postgresql/*/bin (make test installs it)')
        self._run(bin_dir / 'initdb', '--pgdata', self.data, '--username', self.user,
                  '--auth', 'trust', '--encoding', 'UTF8', '--locale', 'C', '--no-sync')
        with open(self.data / 'postgresql.conf', 'a') as conf:
            conf.writelines("%s = '%s'\n" % item for item in settings.items())
        self._pg_ctl = bin_dir / 'pg_ctl'
        self._run(self._pg_ctl, '--pgdata', self.data, '--log', self.logfile,
                  '--wait', '--timeout', '30', 'start')
        self._started = True
        with self.connect('postgres') as connection:
            connection.execute('create database %s' % self.database)

    def _run(self, *command):
        result = subprocess.run([*self._as_owner, *map(str, command)], cwd=self.directory,
                                capture_output=True, text=True, timeout=60)
        if result.returncode:
            log = self.logfile.read_text() if self.logfile.exists() else ''
            raise RuntimeError('%s failed (%d):\n%s%s%s' % (Path(command[0]).name,
                               result.returncode, result.stdout, result.stderr, log))

    @property
    def address(self):
        """``host:port:database``, as tests/project/settings.py reads it."""
        return '127.0.0.1:%d:%s' % (self.port, self.database)

    def connect(self, database=None):
        """A new autocommit connection (psycopg 3) to ``database`` (the tests' by default),
        left out of the counts."""
        return psycopg.connect(host='127.0.0.1', port=self.port, user=self.user,
                               dbname=database or self.database, autocommit=True,
                               application_name=OBSERVER)

    def scalar(self, query):
        """The one value ``query`` selects, on a connection of its own."""
        with self.connect() as connection:
            return connection.execute(query).fetchone()[0]

    def client_backends(self):
        """How many client connections the cluster has now, the tests' own not counted."""
        return self.scalar(CLIENT_BACKENDS)

    def stop(self):
        """Stop the server (fast: clients are disconnected) and delete its directory."""
        try:
            if self._started:
                self._started = False
                self._run(self._pg_ctl, '--pgdata', self.data, '--mode', 'fast', '--wait',
                          '--timeout', '30', 'stop')
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class BackendMonitor:
    """Counts the client backends every ``interval`` seconds from a thread, at most
    ``timeout`` seconds, while the ``with`` block runs; ``peak`` is the highest count.
    """

    def __init__(self, cluster, interval=0.01, timeout=120):
        self.cluster = cluster
        self.interval = interval
        self.timeout = timeout
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._connection = self.cluster.connect()
        self._thread.start()
        return self

    def _poll(self):
        deadline = time.monotonic() + self.timeout
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            count = self._connection.execute(CLIENT_BACKENDS).fetchone()[0]
            self.peak = max(self.peak, count)

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(10)
        self._connection.close()
