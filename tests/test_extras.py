"""Each extra of setup.cfg, installed alone in a fresh virtualenv, runs what it is for.

The suite's own virtualenv has every extra and the test dependencies, which hides a
dependency an extra forgets: gunicorn 27's gevent worker imports ``packaging``, which
pytest brings along. So each test here makes a virtualenv with this interpreter's
``venv``, installs a copy of the repository with one extra (or none) and nothing else,
and runs the stock project of test_stock_project.py with that virtualenv's python only,
from the project's directory: the checkout is not on its path. pip's cache makes every
install after the first one quick.
"""
import json
import subprocess

import pytest
import redis

from . import postgres
from .server_process import PYTHON, GunicornProcess
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)
from .test_stock_project import assert_room_echoes, project, quick, serve  # noqa: F401
from .virtualenvs import copy_source, run

#: The stock project on the cluster of ``STOCK_POSTGRES`` (host:port:database), with
#: Django's pool where ``STOCK_POSTGRES_POOL`` is set (psycopg 3 only).
POSTGRES_SETTINGS = '''
import os

from .settings import *  # noqa: F403

_host, _port, _name = os.environ['STOCK_POSTGRES'].split(':')
DATABASES = {'default': {
    'ENGINE': 'django.db.backends.postgresql', 'HOST': _host, 'PORT': _port,
    'NAME': _name, 'USER': 'postgres',
    'OPTIONS': {'pool': True} if os.environ.get('STOCK_POSTGRES_POOL') else {}}}
'''

#: What Django connects with, once patched as superserver patches: the driver, the pool,
#: psycopg2's wait callback (psycogreen's makes it cooperate), and a row written and read.
DATABASE_CHECK = '''
import json
from django.contrib.auth.models import User
from django.db import connection
try:
    from psycopg2.extensions import get_wait_callback
    wait = get_wait_callback().__module__
except ImportError:
    wait = None
User.objects.create_user('alice')
print(json.dumps({'driver': connection.Database.__name__, 'pool': connection.pool is not None,
                  'wait_callback': wait, 'users': User.objects.count()}))
'''


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """A copy of the repository as a checkout has it, for every virtualenv of the module."""
    return copy_source(tmp_path_factory.mktemp('extras') / 'superserver')


def install(source, extra, directory):
    """The python of a new virtualenv in ``directory`` that has ``source`` installed with
    ``extra`` (None: the core alone), and nothing else."""
    subprocess.run([PYTHON, '-m', 'venv', str(directory)], check=True, timeout=120)
    python = directory / 'bin' / 'python'
    requirement = '%s[%s]' % (source, extra) if extra else str(source)
    result = subprocess.run([str(python), '-m', 'pip', 'install', '--quiet', requirement],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return python


def test_the_core_serves_a_stock_project_and_its_websockets(source, project, tmp_path):
    python = install(source, None, tmp_path / 'venv')
    server = serve(project, '--noreload', '127.0.0.1:0', python=python)
    try:
        assert quick(server)['patched'] is True
        assert_room_echoes(server, 'from the core alone')
    finally:
        server.stop()


def test_the_gunicorn_extra_serves_a_stock_project_with_the_worker(source, project, tmp_path):
    python = install(source, 'gunicorn', tmp_path / 'venv')
    server = GunicornProcess(workers=1, module='stock.wsgi', cwd=project, python=python,
                             env={'DJANGO_SETTINGS_MODULE': 'stock.settings'})
    try:
        assert_room_echoes(server, 'from gunicorn')
    finally:
        server.stop()


@requires_redis
def test_the_redis_extra_publishes_through_a_real_redis(source, project, redis_server,
                                                        tmp_path):
    python = install(source, 'redis', tmp_path / 'venv')
    hiredis = run(python, '-c', 'import redis.utils; print(redis.utils.HIREDIS_AVAILABLE)',
                  cwd=project)
    assert hiredis.strip() == 'True'
    server = serve(project, '--noreload', '127.0.0.1:0', python=python,
                   SUPERSERVER_BROKER=redis_server.url)
    try:
        assert_room_echoes(server, 'through Redis', redis.Redis.from_url(redis_server.url))
    finally:
        server.stop()


@pytest.fixture(scope='module')
def cluster():
    cluster = postgres.PostgresCluster()
    yield cluster
    cluster.stop()


@postgres.requires_postgres
@pytest.mark.parametrize('extra, expected', [
    ('postgresql', {'driver': 'psycopg', 'pool': True, 'wait_callback': None}),
    ('psycopg2', {'driver': 'psycopg2', 'pool': False,
                  'wait_callback': 'psycogreen.gevent'}),
])
def test_the_postgresql_extras_connect_django_to_a_real_postgresql(
        source, project, cluster, tmp_path, extra, expected):
    python = install(source, extra, tmp_path / 'venv')
    with cluster.connect('postgres') as connection:
        connection.execute('create database %s' % extra)
    (project / 'stock' / 'postgres.py').write_text(POSTGRES_SETTINGS)
    env = {'DJANGO_SETTINGS_MODULE': 'stock.postgres',
           'STOCK_POSTGRES': '127.0.0.1:%d:%s' % (cluster.port, extra)}
    if expected['pool']:
        env['STOCK_POSTGRES_POOL'] = '1'
    run(python, 'manage.py', 'migrate', '--noinput', cwd=project, **env)
    # As manage.py superserver runs a stock project: again, under gevent_specific.
    used = run(python, '-m', 'gevent_specific', 'manage.py', 'shell', '-c', DATABASE_CHECK,
               cwd=project, **env)
    assert json.loads(used.splitlines()[-1]) == {**expected, 'users': 1}
