"""./manage.py superserver driven as a user drives it: a subprocess on a free port."""
import os
import pty
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import textwrap
import time

import django
import psutil
import pytest
import requests
import websocket

from extensions.management.commands.superserver import parse_addrport

from .server_process import PYTHON, ROOT, Process, ServerProcess, free_port, wait_until

DEMO = {'DJANGO_SETTINGS_MODULE': 'superserver.settings'}


def echo_once(ws_url, text='ping', **options):
    ws = websocket.create_connection(ws_url, timeout=10, **options)
    ws.send(text)
    answer = ws.recv()
    ws.close()
    return answer


@pytest.fixture(scope='module')
def demo_server(tmp_path_factory):
    """The demo project on an empty (unmigrated) database, without the reloader."""
    database = tmp_path_factory.mktemp('demo') / 'db.sqlite3'
    server = ServerProcess('--noreload', '127.0.0.1:0',
                           env={**DEMO, 'DJANGO_DATABASE': str(database)})
    yield server
    server.stop()


def test_banner(demo_server):
    # The banner's lines arrive one by one: read them once its last line is there.
    last = 'Quit the server with CONTROL-C.'
    demo_server.wait_for('^%s$' % re.escape(last))
    banner = demo_server.output().partition(last)[0]
    assert 'Performing system checks...' in banner
    assert 'System check identified no issues (0 silenced).' in banner
    assert re.search(r"You have \d+ unapplied migration\(s\)", banner)
    # The subprocess runs this interpreter, so it imports the Django this test does.
    assert re.search(r"superserver [\w.]+ \(gevent [\d.]+, ws4py [\d.]+\), Django %s, "
                     r"using settings 'superserver.settings'" % re.escape(django.get_version()),
                     banner)
    assert re.search(r'^Debugger PIN: \d{3}-\d{3}-\d{3}$', banner, re.M)
    assert 'Reporting code that blocks the event loop for more than 100 ms.' in banner


def test_page_static_files_websocket_and_access_log(demo_server):
    start = len(demo_server.lines)
    page = requests.get(demo_server.url + '/', timeout=10)
    assert page.status_code == 200
    assert 'src="/static/superserver/echo.js" data-url="/ws/echo/"' in page.text
    script = requests.get(demo_server.url + '/static/superserver/socket.js', timeout=10)
    assert script.status_code == 200 and 'new WebSocket(url)' in script.text
    assert echo_once(demo_server.ws_url + '/ws/echo/', 'from the demo test') == 'from the demo test'
    demo_server.wait_for(r'"GET / HTTP/1\.1" 200 \d+ [\d.]+ms$', start=start)
    demo_server.wait_for(r'"GET /static/superserver/socket\.js HTTP/1\.1" 200 \d+ [\d.]+ms$',
                         start=start)
    demo_server.wait_for(r'WebSocket /ws/echo/ from 127\.0\.0\.1:\d+ closed 1000 by the '
                         r'client after [\d.]+s, 1 in, 1 out$', start=start)


@pytest.mark.parametrize('options, env, served', [
    (['--nostatic'], {}, False),
    ([], {'DJANGO_DEBUG': '0', 'DJANGO_ALLOWED_HOSTS': '127.0.0.1'}, False),
    (['--insecure'], {'DJANGO_DEBUG': '0', 'DJANGO_ALLOWED_HOSTS': '127.0.0.1'}, True),
])
def test_static_files_as_runserver_serves_them(tmp_path, options, env, served):
    server = ServerProcess('--noreload', '127.0.0.1:0', *options,
                           env={**DEMO, 'DJANGO_DATABASE': str(tmp_path / 'db'), **env})
    try:
        response = requests.get(server.url + '/static/superserver/echo.js', timeout=10)
        assert response.status_code == (200 if served else 404)
    finally:
        server.stop()


@pytest.mark.filterwarnings('ignore::urllib3.exceptions.InsecureRequestWarning')
def test_https_and_wss_with_an_ad_hoc_certificate(tmp_path):
    cert = tmp_path / 'dev.crt'
    server = ServerProcess('--noreload', '127.0.0.1:0', '--cert-file', str(cert),
                           env={**DEMO, 'DJANGO_DATABASE': str(tmp_path / 'db')})
    try:
        assert server.url.startswith('https://')
        assert cert.exists() and cert.with_suffix('.key').exists()
        server.wait_for('Generated an ad-hoc self-signed certificate')
        assert requests.get(server.url + '/', timeout=10, verify=False).status_code == 200
        answer = echo_once('wss' + server.url[len('https'):] + '/ws/echo/', 'over TLS',
                           sslopt={'cert_reqs': ssl.CERT_NONE})
        assert answer == 'over TLS'
    finally:
        server.stop()
    # Given both files, they are used as they are.
    cert.rename(tmp_path / 'mine.pem')
    server = ServerProcess('--noreload', '127.0.0.1:0', '--cert-file', str(tmp_path / 'mine.pem'),
                           '--key-file', str(tmp_path / 'dev.key'),
                           env={**DEMO, 'DJANGO_DATABASE': str(tmp_path / 'db')})
    try:
        assert 'Generated' not in server.output()
        assert requests.get(server.url + '/', timeout=10, verify=False).status_code == 200
    finally:
        server.stop()


def test_access_log_is_coloured_on_a_terminal(tmp_path):
    # The same lines as through a pipe (above), with runserver's colours on a terminal.
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [PYTHON, 'manage.py', 'superserver', '--noreload', '127.0.0.1:0'], cwd=ROOT,
        env={**os.environ, **DEMO, 'DJANGO_DATABASE': str(tmp_path / 'db')},
        stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    output = b''
    deadline = time.monotonic() + 30

    def read_until(marker):
        nonlocal output
        while marker not in output and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                output += os.read(controller, 4096)
        assert marker in output, output

    try:
        read_until(b'Quit the server')
        url = re.search(rb'Starting development server at (http://\S+?)/', output).group(1)
        requests.get(url.decode() + '/', timeout=10)
        read_until(b'"GET / HTTP/1.1" 200')
    finally:
        process.terminate()
        process.wait(10)
        os.close(controller)
    line = next(line for line in output.splitlines() if b'"GET / HTTP/1.1" 200' in line)
    assert b'\x1b[' in line   # an ANSI colour, as runserver's access lines have


def test_ipv6(tmp_path):
    server = ServerProcess('--noreload', '--ipv6', '[::1]:0',
                           env={**DEMO, 'DJANGO_DATABASE': str(tmp_path / 'db')})
    try:
        assert re.match(r'http://\[::1\]:\d+$', server.url)
        assert requests.get(server.url + '/', timeout=10).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize('addrport, ipv6, expected', [
    ('', False, ('127.0.0.1', 8000)),
    ('', True, ('::1', 8000)),
    ('8080', False, ('127.0.0.1', 8080)),
    ('0:8000', False, ('0.0.0.0', 8000)),
    ('[::1]:8000', False, ('::1', 8000)),
    ('[::]:8000', True, ('::', 8000)),
    ('localhost:9000', False, ('localhost', 9000)),
    ('localhost:9000', True, ('localhost', 9000)),
])
def test_addrport_as_runserver_reads_it(addrport, ipv6, expected):
    assert parse_addrport(addrport, ipv6) == expected


@pytest.mark.parametrize('addrport, message', [
    ('nonsense', 'is not a valid port number or address:port pair'),
    ('127.0.0.1:0 --ipv6', 'is not a valid IPv6 address'),
    ('0 --block-threshold 0', '--block-threshold must be a positive number'),
])
def test_bad_options_are_refused(addrport, message):
    result = subprocess.run([PYTHON, 'manage.py', 'superserver', '--noreload', *addrport.split()],
                            cwd=ROOT, env={'PATH': '/usr/bin:/bin', **DEMO},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr


# -- the debugger ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def debug_server(project_env):
    server = ServerProcess('--noreload', '127.0.0.1:0',
                           env={**project_env, 'SUPERSERVER_TEST_DEBUG': '1'})
    yield server
    server.stop()


def test_plain_view_exception_shows_the_debugger(debug_server):
    debug_server.wait_for(r'^Debugger PIN: \d{3}-\d{3}-\d{3}$')
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


def test_debugger_console_only_for_trusted_hosts(debug_server):
    # Werkzeug's own protection: the console is only for hosts it trusts (localhost).
    console = requests.get(debug_server.url + '/console', timeout=10)
    assert console.status_code == 200 and 'Interactive Console' in console.text
    response = requests.get(debug_server.url + '/console', timeout=10,
                            headers={'Host': 'allowed-host.example'})
    assert response.status_code == 400


@pytest.mark.parametrize('option, evalex', [(None, 'true'), ('--noevalex', 'false')])
def test_noevalex_keeps_the_page_without_the_console(project_env, option, evalex):
    server = ServerProcess('--noreload', '127.0.0.1:0', *filter(None, [option]),
                           env={**project_env, 'SUPERSERVER_TEST_DEBUG': '1'})
    try:
        page = requests.get(server.url + '/boom/', timeout=10)
        assert 'Werkzeug Debugger' in page.text
        assert 'EVALEX = %s,' % evalex in page.text
    finally:
        server.stop()


def test_nodebugger_means_no_debugger(django_server):
    assert 'Debugger PIN' not in django_server.output()
    assert requests.get(django_server.url + '/boom/', timeout=10).status_code == 500


def test_websocket_view_exception_logs_locals_and_closes_1011(debug_server):
    start = len(debug_server.lines)
    ws = websocket.create_connection(debug_server.ws_url + '/ws/boom/', timeout=10)
    ws.send('the message')
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], 'big')) == (0x8, 1011)
    ws.shutdown()
    debug_server.wait_for('websocket view /ws/boom/ raised', start=start)
    debug_server.wait_for(r"^      message = 'the message'$", start=start)
    debug_server.wait_for(r'^      websocket = <WebSocket /ws/boom/ ', start=start)
    debug_server.wait_for('RuntimeError: boom in a websocket view', start=start)
    debug_server.wait_for(r'WebSocket /ws/boom/ from \S+ closed 1011 by the server after',
                          start=start)


#: Lines a traceback of one frame of the project may take: runserver's for that view (10,
#: two of them Django's frames), and those of the frame's locals for a websocket view.
#: Before the request's frames were left out: 73 and 136 lines here, 112 and 193 in a
#: project from startproject (seven middleware).
TRACEBACK_LINES = 10

#: Files whose frames only carried the request to the view.
MACHINERY = re.compile(r'/(gevent|werkzeug|django/core/handlers)/|django/utils/deprecation'
                       r'|extensions/(adaptation|wsgi|devserver|decorators)\.py')


def logged_until(server, start, pattern):
    """The output from line ``start`` up to the first line matching ``pattern``."""
    server.wait_for(pattern, start=start)
    lines = server.lines[start:]
    return lines[:next(n for n, line in enumerate(lines) if re.search(pattern, line))]


def test_plain_view_traceback_shows_the_views_frame_only(debug_server):
    start = len(debug_server.lines)
    assert requests.get(debug_server.url + '/boom/', timeout=10).status_code == 500
    logged = logged_until(debug_server, start, r'"GET /boom/ HTTP/1\.1" 500 ')
    assert [line for line in logged if MACHINERY.search(line)] == []
    text = '\n'.join(logged)
    assert re.search(r'File ".*tests/project/views\.py", line \d+, in plain_boom\n'
                     r"    raise ZeroDivisionError\('boom in a plain view'\)\n", text)
    assert logged[-1] == 'ZeroDivisionError: boom in a plain view'
    assert len(logged) <= TRACEBACK_LINES, text


def test_websocket_view_traceback_shows_the_views_frame_and_locals_only(debug_server):
    start = len(debug_server.lines)
    ws = websocket.create_connection(debug_server.ws_url + '/ws/boom/', timeout=10)
    ws.send('the message')
    ws.recv_data(control_frame=True)
    ws.shutdown()
    logged = logged_until(debug_server, start, r'WebSocket /ws/boom/ from ')
    assert [line for line in logged if MACHINERY.search(line)] == []
    locals_shown = [line for line in logged if line.startswith('      ')]
    assert "      message = 'the message'" in locals_shown
    assert re.search(r'File ".*tests/project/views\.py", line \d+, in boom$',
                     logged[logged.index('Traceback (most recent call last):') + 1])
    assert logged[-1] == 'RuntimeError: boom in a websocket view'
    assert len(logged) <= TRACEBACK_LINES + len(locals_shown), '\n'.join(logged)


# -- the blocking detector ------------------------------------------------------------------

def test_blocking_view_is_reported_once_with_file_and_line(django_server):
    start = len(django_server.lines)
    for _ in range(2):
        assert requests.get(django_server.url + '/block/', timeout=10).text == 'done blocking'
    views = ROOT / 'tests' / 'project' / 'views.py'
    line = next(n for n, text in enumerate(views.read_text().splitlines(), 1)
                if 'blocking_sleep(0.3)' in text)
    report = r'The event loop was blocked for more than 100 ms at %s:%d \(in blocks\)' % (
        re.escape(str(views)), line)
    django_server.wait_for(report, start=start)
    django_server.wait_for(r'^\s+blocking_sleep\(0\.3\)   # the blocking detector', start=start)
    served_after_the_blocks(django_server, start)
    reports = [text for text in django_server.lines[start:] if re.search(report, text)]
    assert len(reports) == 1   # once per place, however often it blocks


def served_after_the_blocks(server, start):
    """Wait until ``server`` logged a request made after the /block/ requests: a report
    of a block is logged as soon as the loop runs again, so before the server turns to
    a request made after it; every report there will be is in the output by then."""
    assert requests.get(server.url + '/process/?after=blocks', timeout=10).status_code == 200
    server.wait_for(r'"GET /process/\?after=blocks HTTP/1\.1" 200 ', start=start)


@pytest.mark.parametrize('options', [['--noblockcheck'], ['--block-threshold', '1000']])
def test_blocking_check_off_or_above_the_threshold(project_env, options):
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', *options,
                           env=project_env)
    try:
        assert requests.get(server.url + '/block/', timeout=10).text == 'done blocking'
        served_after_the_blocks(server, 0)
        assert 'The event loop was blocked' not in server.output()
        banner = server.output().partition('Quit the server with CONTROL-C.')[0]
        if options == ['--noblockcheck']:
            assert 'Reporting code that blocks' not in banner
        else:
            assert 'more than 1000 ms' in banner
    finally:
        server.stop()


# -- a project of its own: reloading -------------------------------------------------------

def make_project(directory, views):
    project = directory / 'reloadme'
    project.mkdir()
    shutil.copy(ROOT / 'manage.py', directory / 'manage.py')
    (project / '__init__.py').write_text('')
    (project / 'settings.py').write_text(textwrap.dedent('''
        SECRET_KEY = 'a test project'
        DEBUG = True
        INSTALLED_APPS = ['extensions']
        ROOT_URLCONF = 'reloadme.urls'
        DATABASES = {}
    '''))
    (project / 'urls.py').write_text(textwrap.dedent('''
        from django.urls import path
        from . import views
        urlpatterns = [path('', views.hello), path('ws/', views.echo)]
    '''))
    (project / 'views.py').write_text(textwrap.dedent(views))
    return project / 'views.py'


VIEWS = '''
    from django.http import HttpResponse
    from extensions.decorators import require_websocket

    def hello(request):
        return HttpResponse("one")

    @require_websocket
    def echo(request):
        ws = request.environ['wsgi.websocket']
        for message in ws:
            ws.send(message)
'''


def test_reload_closes_websockets_with_1012_and_serves_the_new_code(tmp_path):
    views = make_project(tmp_path, VIEWS)
    server = ServerProcess('127.0.0.1:%d' % free_port(), cwd=tmp_path,
                           manage=tmp_path / 'manage.py',
                           env={'DJANGO_SETTINGS_MODULE': 'reloadme.settings',
                                'PYTHONPATH': str(ROOT)})
    try:
        assert requests.get(server.url, timeout=10).text == 'one'
        ws = websocket.create_connection(server.ws_url + '/ws/', timeout=20)
        ws.send('before')
        assert ws.recv() == 'before'
        start = len(server.lines)
        views.write_text(views.read_text().replace('"one"', '"two"'))
        opcode, data = ws.recv_data(control_frame=True)
        assert (opcode, int.from_bytes(data[:2], 'big')) == (0x8, 1012)
        assert data[2:] == b'restarting after a code change'
        ws.shutdown()
        server.wait_for('changed, reloading', start=start)
        server.wait_for(server.BANNER, start=start)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(server.url, timeout=5).text == 'two':
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert requests.get(server.url, timeout=10).text == 'two'
        assert echo_once(server.ws_url + '/ws/', 'after') == 'after'
    finally:
        server.stop()



@pytest.mark.parametrize('signum, to_the_group', [
    (signal.SIGINT, True),     # Ctrl-C in a terminal: the reloader and its child get it
    (signal.SIGTERM, False),   # kill <pid of the reloader>: the reloader alone
], ids=['Ctrl-C', 'SIGTERM'])
def test_stopping_the_reloader_closes_websockets_with_1001_quietly(tmp_path, signum,
                                                                    to_the_group):
    make_project(tmp_path, VIEWS)
    server = Process([PYTHON, str(tmp_path / 'manage.py'), 'superserver',
                      '127.0.0.1:%d' % free_port()], cwd=tmp_path, own_group=True,
                     env={'DJANGO_SETTINGS_MODULE': 'reloadme.settings',
                          'PYTHONPATH': str(ROOT)})
    try:
        url = server.wait_for(ServerProcess.BANNER).group(1)
        server.wait_for(ServerProcess.BANNER_END)
        sockets = [websocket.create_connection('ws' + url[4:] + '/ws/', timeout=20)
                   for _ in range(2)]
        for ws in sockets:
            ws.send('hello')
            assert ws.recv() == 'hello'
        (child,) = psutil.Process(server.pid).children()
        if to_the_group:
            os.killpg(server.pid, signum)
        else:
            os.kill(server.pid, signum)
        for ws in sockets:
            opcode, data = ws.recv_data(control_frame=True)
            assert (opcode, int.from_bytes(data[:2], 'big')) == (0x8, 1001)
            ws.shutdown()
        assert server.wait(20) == 0
        assert wait_until(lambda: not psutil.pid_exists(child.pid), timeout=5)
    finally:
        server.stop()
    name = signal.Signals(signum).name
    after_the_banner = server.lines[server.lines.index('Quit the server with CONTROL-C.') + 1:]
    expected = re.compile(
        r'INFO superserver\.server: %s: shutting down gracefully \(2 connection\(s\) open\)$'
        r'|\[[^]]+\] WebSocket /ws/ from 127\.0\.0\.1:\d+ closed 1001 by the server after '
        r'[\d.]+s, 1 in, 1 out$' % name)
    assert [line for line in after_the_banner if not expected.match(line)] == []
    assert len(after_the_banner) == 3


def test_ctrl_c_ends_a_reloader_whose_server_failed_to_start_quietly(tmp_path):
    make_project(tmp_path, VIEWS)
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        server = Process([PYTHON, str(tmp_path / 'manage.py'), 'superserver',
                          '127.0.0.1:%d' % taken.getsockname()[1]], cwd=tmp_path,
                         own_group=True, env={'DJANGO_SETTINGS_MODULE': 'reloadme.settings',
                                              'PYTHONPATH': str(ROOT)})
        try:
            server.wait_for('Address already in use')
            start = len(server.lines)
            os.killpg(server.pid, signal.SIGINT)
            assert server.wait(20) == 0
        finally:
            server.stop()
    assert server.lines[start:] == []
