"""./manage.py superserver driven as a user drives it: a subprocess on a free port."""
import os
import re
import shutil
import socket
import textwrap
import time

import pytest
import requests
import websocket

from .conftest import ROOT, ServerProcess


def test_demo_project_serves_its_page_and_echo(tmp_path):
    server = ServerProcess('--noreload', '127.0.0.1:0',
                           env={'DJANGO_SETTINGS_MODULE': 'superserver.settings',
                                'DJANGO_DATABASE': str(tmp_path / 'db.sqlite3')})
    try:
        assert re.search(r'superserver on Django 5\.2\.\d+', server.output())
        page = requests.get(server.url + '/', timeout=10)
        assert page.status_code == 200
        assert "new WebSocket(url)" in page.text and "/ws/echo/" in page.text
        ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10)
        ws.send('from the demo test')
        assert ws.recv() == 'from the demo test'
        ws.close()
    finally:
        server.stop()


@pytest.fixture(scope='module')
def debug_server(project_env):
    server = ServerProcess('--noreload', '127.0.0.1:0',
                           env={**project_env, 'SUPERSERVER_TEST_DEBUG': '1'})
    yield server
    server.stop()


def test_debugger_pin_is_printed(debug_server):
    debug_server.wait_for(r'^Debugger PIN: \d{3}-\d{3}-\d{3}$')


def test_plain_view_exception_shows_the_debugger(debug_server):
    response = requests.get(debug_server.url + '/boom/', timeout=10)
    assert response.status_code == 500
    assert 'Werkzeug Debugger' in response.text
    assert 'ZeroDivisionError: boom in a plain view' in response.text
    # The console needs the PIN: with the page's secret but no PIN cookie, a command
    # is not run (the request falls through to the application).
    secret = re.search(r'SECRET = "([^"]+)"', response.text).group(1)
    frame = re.search(r'id="frame-(\d+)"', response.text).group(1)
    command = requests.get(debug_server.url + '/db/', timeout=10, params={
        '__debugger__': 'yes', 'cmd': '6 * 7', 'frm': frame, 's': secret})
    assert command.json() == {'open': 0}   # the /db/ view answered, not the console


def test_websocket_view_exception_is_logged_and_closed_1011_not_debugged(debug_server):
    start = len(debug_server.lines)
    ws = websocket.create_connection(debug_server.ws_url + '/ws/boom/', timeout=10)
    ws.send('go')
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], 'big')) == (0x8, 1011)
    ws.shutdown()
    debug_server.wait_for('websocket view /ws/boom/ raised', start=start)
    debug_server.wait_for('RuntimeError: boom in a websocket view', start=start)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_autoreload_restarts_on_a_code_change(tmp_path):
    project = tmp_path / 'reloadme'
    project.mkdir()
    shutil.copy(ROOT / 'manage.py', tmp_path / 'manage.py')
    (project / '__init__.py').write_text('')
    (project / 'settings.py').write_text(textwrap.dedent('''
        SECRET_KEY = 'reload-test'
        DEBUG = True
        INSTALLED_APPS = ['extensions']
        ROOT_URLCONF = 'reloadme.urls'
        DATABASES = {}
    '''))
    (project / 'urls.py').write_text(textwrap.dedent('''
        from django.urls import path
        from . import views
        urlpatterns = [path('', views.hello)]
    '''))
    views = project / 'views.py'
    views.write_text('from django.http import HttpResponse\n'
                     'def hello(request):\n    return HttpResponse("one")\n')
    port = free_port()
    server = ServerProcess('127.0.0.1:%d' % port, cwd=tmp_path, manage=tmp_path / 'manage.py',
                           env={'DJANGO_SETTINGS_MODULE': 'reloadme.settings',
                                'PYTHONPATH': str(ROOT)})
    try:
        assert requests.get(server.url, timeout=10).text == 'one'
        start = len(server.lines)
        views.write_text(views.read_text().replace('"one"', '"two"'))
        os.utime(views, (time.time() + 5, time.time() + 5))   # a new mtime for sure
        server.wait_for('changed, reloading', start=start)
        server.wait_for(server.BANNER, start=start)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(server.url, timeout=5).text == 'two':
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        assert requests.get(server.url, timeout=10).text == 'two'
    finally:
        server.stop()
