"""A project as ``django-admin startproject`` makes it, served patched all the same.

Its manage.py does not import gevent_specific, so ``manage.py superserver`` runs itself
again under ``python -m gevent_specific``: a view in plain ``time.sleep`` must not hold
up the others, and the Redis client of the broker must work, with the reloader on or off.
Only where re-executing is impossible does the command serve unpatched, and warn.
"""
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests
import websocket

from .server_process import PYTHON, ServerProcess, free_port
from .services import redis_server, requires_redis  # noqa: F401 (redis_server: a fixture)

SETTINGS = '''
import os
INSTALLED_APPS += ['extensions']
ALLOWED_HOSTS = ['127.0.0.1']
DEBUG = False
SUPERSERVER_BROKER = os.environ.get('SUPERSERVER_BROKER', 'memory://')
'''

VIEWS = '''
import os
import time

from django.http import JsonResponse
from gevent import monkey

from extensions.decorators import require_websocket
from extensions.pubsub import forward, group_channel, publish

asleep = 0


def sleep(request):
    global asleep
    asleep += 1
    try:
        time.sleep(1)
    finally:
        asleep -= 1
    return JsonResponse({'slept': 1})


def quick(request):
    return JsonResponse({'version': 1, 'asleep': asleep,
                         'patched': monkey.is_module_patched('socket')})


def process(request):
    return JsonResponse({'pid': os.getpid()})


@require_websocket
def room(request, name):
    ws = request.environ['wsgi.websocket']
    with forward(ws, group_channel(name)):
        ws.send('subscribed')
        for message in ws:
            publish(group_channel(name), message)
'''

URLS = '''
from django.urls import path

from . import views

urlpatterns = [path('sleep/', views.sleep), path('quick/', views.quick),
               path('process/', views.process), path('ws/room/<name>/', views.room)]
'''

#: Run from code, not from the command line: nothing to run again under gevent_specific.
FROM_CODE = '''
import os, sys
import django
from django.core.management import call_command
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'stock.settings')
django.setup()
call_command(*sys.argv[1:])
'''

#: manage.py in a process that looks re-executed already: running again would loop.
REEXECUTED = '''
import os, runpy, sys
os.environ['SUPERSERVER_REEXEC'] = str(os.getpid())
runpy.run_path('manage.py', run_name='__main__')
'''


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """startproject's project, unmodified but for its settings, views and URLs."""
    directory = tmp_path_factory.mktemp('stock')
    subprocess.run([PYTHON, '-m', 'django', 'startproject', 'stock', str(directory)],
                   check=True, timeout=60)
    assert 'gevent_specific' not in (directory / 'manage.py').read_text()
    settings = directory / 'stock' / 'settings.py'
    settings.write_text(settings.read_text() + SETTINGS)
    (directory / 'stock' / 'views.py').write_text(VIEWS)
    (directory / 'stock' / 'urls.py').write_text(URLS)
    (directory / 'from_code.py').write_text(FROM_CODE)
    (directory / 'reexecuted.py').write_text(REEXECUTED)
    return directory


def serve(project, *args, manage='manage.py', python=PYTHON, **env):
    return ServerProcess('--nodebugger', *args, cwd=project, manage=project / manage,
                         python=python, env={'DJANGO_SETTINGS_MODULE': 'stock.settings', **env})


def quick(server):
    return requests.get(server.url + '/quick/', timeout=10).json()


def assert_sleep_holds_up_nothing(server):
    """While a request sleeps 1 s in time.sleep, another is answered at once."""
    quick(server)   # a new process's first request imports the views: not while timing
    with ThreadPoolExecutor(1) as pool:
        sleeping = pool.submit(requests.get, server.url + '/sleep/', timeout=10)
        deadline = time.monotonic() + 5
        while True:
            started = time.monotonic()
            answer = quick(server)
            elapsed = time.monotonic() - started
            if answer['asleep']:
                break
            # Unpatched, the quick view would wait for the sleep to end and see none asleep.
            assert not sleeping.done() and time.monotonic() < deadline, answer
        assert elapsed < 0.5
        assert answer['patched'] is True
        assert sleeping.result().json() == {'slept': 1}


def assert_room_echoes(server, message, redis_client=None):
    """A message sent in a room comes back through the server's broker; with
    ``redis_client`` (a client of the broker's Redis), the room's channel has its
    subscriber there."""
    ws = websocket.create_connection(server.ws_url + '/ws/room/stock/', timeout=10)
    try:
        assert ws.recv() == 'subscribed'
        if redis_client is not None:
            assert redis_client.pubsub_numsub('group:stock') == [(b'group:stock', 1)]
        ws.send(message)
        assert ws.recv() == message
    finally:
        ws.close()


@requires_redis
def test_served_patched_with_a_working_redis_broker(project, redis_server):
    # PYTHONWARNINGS makes a -W option, which must stay before the runner's -m.
    server = serve(project, '--noreload', '127.0.0.1:0', SUPERSERVER_BROKER=redis_server.url,
                   PYTHONWARNINGS='ignore::DeprecationWarning')
    try:
        assert_sleep_holds_up_nothing(server)
        assert_room_echoes(server, 'through Redis', redis.Redis.from_url(redis_server.url))
        assert 'not patched' not in server.output()
    finally:
        server.stop()


def test_reloader_restarts_patched_after_a_change(project):
    views = project / 'stock' / 'views.py'
    server = serve(project, '127.0.0.1:%d' % free_port())
    try:
        # The reloader's parent only starts children: they run again patched, it does not.
        parent = Path('/proc/%d/cmdline' % server.process.pid).read_bytes().split(b'\0')
        assert parent[1:3] == [str(project / 'manage.py').encode(), b'superserver']
        assert_sleep_holds_up_nothing(server)
        start = len(server.lines)
        views.write_text(views.read_text().replace("'version': 1", "'version': 2"))
        server.wait_for(server.BANNER, start=start)   # (DEBUG off: Django logs no reload)
        deadline = time.monotonic() + 20
        while True:
            try:
                if quick(server)['version'] == 2:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert_sleep_holds_up_nothing(server)
        assert 'not patched' not in server.output()
    finally:
        server.stop()
        views.write_text(VIEWS)


@pytest.mark.parametrize('manage, warning', [
    ('from_code.py', 'superserver: the standard library is not patched for gevent. Add'),
    ('reexecuted.py', 'superserver: the standard library is still not patched for gevent '
                      'after running'),
])
def test_serves_unpatched_with_a_warning_where_running_again_cannot_help(
        project, manage, warning):
    server = serve(project, '--noreload', '127.0.0.1:0', manage=manage)
    try:
        server.wait_for(re.escape(warning))
        assert quick(server) == {'version': 1, 'asleep': 0, 'patched': False}
    finally:
        server.stop()
