"""Django's async side, served as users serve it: ``async def`` views, an async-only
middleware, ``async_to_sync`` in a sync view and the async ORM, under ``manage.py
superserver`` and the gunicorn worker, many at once beside open websockets; and under
``manage.py test``, patched as served. asgiref's coroutines run in one asyncio loop in a
native thread (``extensions/asyncloop.py``)."""
import os
import subprocess
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websocket

from .server_process import PYTHON, ROOT, GunicornProcess, ServerProcess

#: The test project with an async-only middleware in its chain.
ASYNC_MIDDLEWARE = {'SUPERSERVER_TEST_ASYNC_MIDDLEWARE': '1'}

#: Async views in the crowd, how long each awaits, and the websockets open beside them.
CROWD, SLEEP, OPEN_SOCKETS = 100, 2.0, 1000

#: The longest an echo may wait while the crowd runs. Async code that held the event
#: loop would hold an echo for a whole SLEEP; echoes take milliseconds when it does not.
LONGEST_ECHO = 0.5


@pytest.fixture(scope='module')
def dev_server(project_env):
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0',
                           env={**project_env, **ASYNC_MIDDLEWARE})
    yield server
    server.stop()


@pytest.fixture(scope='module')
def gunicorn_server(project_env):
    server = GunicornProcess(env={**project_env, **ASYNC_MIDDLEWARE})
    yield server
    server.stop()


@pytest.fixture(params=['dev_server', 'gunicorn_server'])
def server(request):
    return request.getfixturevalue(request.param)


def test_two_async_to_sync_calls_at_once_in_a_patched_process():
    """The smallest form of the failure, without a server: asyncio's running loop belongs
    to the OS thread, which every greenlet shares."""
    result = subprocess.run([PYTHON, '-c', '''if True:
        import gevent_specific
        import asyncio, gevent
        from asgiref.sync import async_to_sync

        async def slow():
            await asyncio.sleep(0.5)
            return 'slow'

        first = gevent.spawn(async_to_sync(slow))
        gevent.sleep(0.1)
        print(async_to_sync(asyncio.sleep)(0, 'second'), first.get())
        '''], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'second slow\n'


def test_the_async_orm_through_an_async_middleware(server):
    response = requests.get(server.url + '/async/users/', timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {'count': 1, 'names': ['alice'], 'exists': True}
    assert response.headers['X-Async-Middleware'] == 'awaited'


def test_a_sync_view_awaits_through_async_to_sync(server):
    response = requests.get(server.url + '/async/calls/?n=21', timeout=10)
    assert response.json() == {'twice': 42, 'patched': True}


def test_login_required_of_an_async_view(server):
    """``extensions.decorators.login_required`` on an ``async def`` view: Django's login
    redirect for an anonymous request, the view for alice."""
    anonymous = requests.get(server.url + '/async/private/', allow_redirects=False, timeout=10)
    assert (anonymous.status_code, anonymous.headers['Location']) == (
        302, '/accounts/login/?next=/async/private/')
    session = requests.Session()
    login = server.url + '/accounts/login/'
    session.get(login, timeout=10)
    session.post(login, data={'username': 'alice', 'password': 'wonderland',
                              'csrfmiddlewaretoken': session.cookies['csrftoken']}, timeout=10)
    response = session.get(server.url + '/async/private/', allow_redirects=False, timeout=10)
    assert (response.status_code, response.text) == (200, 'alice')


def test_a_crowd_of_async_views_beside_websockets_and_sync_views(server):
    """CROWD async views awaiting SLEEP at once, async ORM and async_to_sync calls, sync
    views, OPEN_SOCKETS websockets open: every request answered, within about one SLEEP
    (one at a time would take CROWD of them), and no echo held meanwhile."""
    sockets = [websocket.create_connection(server.ws_url + '/ws/echo/', timeout=30)
               for _ in range(OPEN_SOCKETS)]
    paths = (['/async/sleeps/?seconds=%s' % SLEEP] * CROWD + ['/async/users/'] * 20
             + ['/async/calls/?n=1'] * 20 + ['/users/'] * 20)
    echoes = []
    with ThreadPoolExecutor(len(paths)) as pool:
        began = time.monotonic()
        answers = [pool.submit(requests.get, server.url + path, timeout=60) for path in paths]
        while not all(answer.done() for answer in answers) and len(echoes) < 1000:
            sent = time.monotonic()
            sockets[len(echoes) % OPEN_SOCKETS].send('ping')
            assert sockets[len(echoes) % OPEN_SOCKETS].recv() == 'ping'
            echoes.append(time.monotonic() - sent)
            time.sleep(0.01)
        statuses = [answer.result().status_code for answer in answers]
        took = time.monotonic() - began
    print('\n%d requests (%d async views awaiting %.0f s) beside %d websockets: %s in %.2f s;'
          ' %d echoes meanwhile, longest %.1f ms'
          % (len(paths), CROWD, SLEEP, OPEN_SOCKETS, sorted(set(statuses)), took,
             len(echoes), 1000 * max(echoes)))
    assert statuses == [200] * len(paths)
    assert took < 10 * SLEEP, took
    assert len(echoes) >= 10 and max(echoes) < LONGEST_ECHO, (len(echoes), max(echoes))
    for ws in sockets:
        ws.send('still here')
    assert {ws.recv() for ws in sockets} == {'still here'}
    for ws in sockets:
        ws.close()


@pytest.mark.parametrize('runner', [['manage.py'], ['-m', 'django']],
                         ids=['manage.py', 'python -m django'])
def test_manage_py_test_runs_async_views_patched_as_served(runner, project_env):
    """Django's test client, its async client and superserver's live server, with the
    async ORM: patched by the project's manage.py, or by superserver's ``test`` command
    when the entry point (``python -m django``, a stock manage.py) did not patch."""
    result = subprocess.run(
        [PYTHON, *runner, 'test', 'tests.project.async_checks', '--noinput'], cwd=ROOT,
        env={**project_env, **ASYNC_MIDDLEWARE, 'PATH': '/usr/bin:/bin'},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'Ran 4 tests' in result.stderr


def test_pytest_runs_patched_under_gevent_specific(tmp_path):
    """The README's way to run pytest as served: ``python -m gevent_specific -m pytest``;
    pytest-django's client then runs an async view as the servers do."""
    (tmp_path / 'test_served.py').write_text(textwrap.dedent('''\
        import pytest
        from django.contrib.auth.models import User
        from gevent import monkey


        @pytest.mark.django_db
        def test_async_view(client):
            User.objects.create_user('dora')
            assert monkey.is_module_patched('socket')
            assert client.get('/async/users/').json()['names'] == ['dora']
        '''))
    result = subprocess.run(
        [PYTHON, '-m', 'gevent_specific', '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
         'test_served.py'], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, 'DJANGO_SETTINGS_MODULE': 'tests.project.settings',
             'PYTHONPATH': str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert '1 passed' in result.stdout
