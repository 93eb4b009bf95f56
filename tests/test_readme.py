"""Every code block of README.md, run as it stands, or checked where it cannot run here.

A block is known by its first line: ``RUNNERS`` maps that line to the function that runs
the block. ``test_every_block_has_a_runner`` fails when a block has none (a new snippet:
give it a runner, usually a few lines with the helpers below) or when a runner's block
is gone. Views run in a project made by ``django-admin startproject myproject`` (the
name the README uses) and served by a real ``manage.py superserver`` on a loopback port
(``served``), driven by real clients. A block that cannot run as it stands is checked
another way, and its runner says how: ``make test`` would run the whole suite, ``pip
install`` would change this virtualenv, a fragment with ``...`` in a loop would wait for
ever, a diagram does not run. 13 to 23 s in all on this shared 2-core machine.
"""
import ast
import configparser
import contextlib
import importlib.metadata
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websocket
from websockets.sync.client import connect as websockets_connect

from extensions import pubsub, sse
from extensions.history import HistoryRules, Policy

from .server_process import PYTHON, ROOT, GunicornProcess, Process, ServerProcess, free_port, \
    wait_until

FENCE = re.compile(r'^(?P<indent> *)```(?P<language>\S*)\n(?P<code>.*?)^(?P=indent)```$',
                   re.MULTILINE | re.DOTALL)


def readme_blocks():
    """``(first line, code)`` of each fenced block of README.md, dedented (a block in a
    list item is indented), in order."""
    text = (ROOT / 'README.md').read_text()
    blocks = []
    for match in FENCE.finditer(text):
        code = textwrap.dedent(match['code'])
        blocks.append((code.split('\n', 1)[0].strip(), code))
    return blocks


BLOCKS = dict(readme_blocks())

SETTINGS = '''
INSTALLED_APPS += ['extensions']
ALLOWED_HOSTS = ['127.0.0.1']
DEBUG = False
exec((BASE_DIR / 'myproject' / 'block_settings.py').read_text())   # served(settings=...)
'''

URLS = '''
"""The admin, and the views README_ROUTES names: 'route=module.view route=module.view'."""
import os

from django.contrib import admin
from django.urls import path
from django.utils.module_loading import import_string

urlpatterns = [path('admin/', admin.site.urls)] + [
    path(route, import_string(view))
    for route, view in (item.split('=') for item in os.environ.get('README_ROUTES', '').split())]
'''

#: A websocket view for the blocks that start a server but bring no view of their own.
PROBE = '''
def echo(request):
    ws = request.environ['wsgi.websocket']
    for message in ws:
        ws.send(message)
'''

#: A fragment of the README that uses ``ws``, ``request`` and ``channel`` as a view
#: would, run in a view; the socket then gets repr() of the fragment's last expression.
FRAGMENT_VIEW = '''
import ast

from extensions.decorators import require_websocket
from extensions.pubsub import forward

CODE = {code!r}


@require_websocket
def view(request):
    tree = ast.parse(CODE)
    last = tree.body.pop()
    ws = request.environ['wsgi.websocket']
    namespace = {{'ws': ws, 'request': request, 'channel': 'group:readme', 'forward': forward}}
    exec(compile(tree, 'README.md', 'exec'), namespace)
    ws.send(repr(eval(compile(ast.Expression(last.value), 'README.md', 'eval'), namespace)))
'''


def manage(directory, *args, settings):
    result = subprocess.run([PYTHON, 'manage.py', *args], cwd=directory, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, 'DJANGO_SETTINGS_MODULE': settings})
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """startproject's ``myproject``, with extensions installed, migrated."""
    directory = tmp_path_factory.mktemp('readme')
    subprocess.run([PYTHON, '-m', 'django', 'startproject', 'myproject', str(directory)],
                   check=True, timeout=60)
    settings = directory / 'myproject' / 'settings.py'
    settings.write_text(settings.read_text() + SETTINGS)
    (directory / 'myproject' / 'urls.py').write_text(URLS)
    (directory / 'myproject' / 'probe.py').write_text(PROBE)
    (directory / 'myproject' / 'block_settings.py').write_text('')
    manage(directory, 'migrate', '--noinput', settings='myproject.settings')
    return directory


@pytest.fixture(scope='module')
def session(project):
    """The session cookie of alice, logged in."""
    output = manage(
        project, 'shell', '-c',
        'from django.contrib.auth.models import User\n'
        'from django.test import Client\n'
        'client = Client()\n'
        'client.force_login(User.objects.create_user("alice"))\n'
        'print(client.cookies["sessionid"].value)', settings='myproject.settings').stdout
    return 'sessionid=' + output.split()[-1]   # after the shell's own lines


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """A copy of the demo project (manage.py, superserver/), to change and run."""
    directory = tmp_path_factory.mktemp('demo')
    shutil.copy(ROOT / 'manage.py', directory)
    shutil.copytree(ROOT / 'superserver', directory / 'superserver',
                    ignore=shutil.ignore_patterns('__pycache__'))
    return directory


@contextlib.contextmanager
def served(request, code, routes, settings=''):
    """``code`` as a module of myproject (``block``) served by ``manage.py superserver``,
    with ``routes``: {route: name of a view of the block}, and ``settings`` run at the end
    of the project's. A new block: usually this and a real client."""
    project = request.getfixturevalue('project')
    (project / 'myproject' / 'block.py').write_text(code)
    (project / 'myproject' / 'block_settings.py').write_text(settings)
    routes = {route: 'block.' + view for route, view in routes.items()}
    server = ServerProcess('--noreload', '--nodebugger', '127.0.0.1:0', cwd=project,
                           manage=project / 'manage.py', env=routes_env(routes))
    try:
        yield server
    finally:
        server.stop()


def routes_env(routes):
    return {'DJANGO_SETTINGS_MODULE': 'myproject.settings',
            'README_ROUTES': ' '.join('%s=myproject.%s' % item for item in routes.items())}


def connect(server, path, **options):
    return websocket.create_connection(server.ws_url + path, timeout=10, **options)


def refused(server, path):
    """The HTTP status of a websocket handshake the server did not accept, and whether
    it redirected."""
    with pytest.raises(websocket.WebSocketBadStatusException) as error:
        connect(server, path)
    headers = {name.lower() for name in error.value.resp_headers or {}}
    return error.value.status_code, 'location' in headers


def assert_echoes(url):
    ws = websocket.create_connection(url, timeout=10)
    ws.send('echo')
    assert ws.recv() == 'echo'
    ws.close()


# -- the runners: one per block, each given the block's code and pytest's request ------


def run_echo_view(code, request):
    with served(request, code, {'ws/echo/': 'echo'}) as server:
        ws = connect(server, '/ws/echo/')
        assert ws.recv() == 'hello, AnonymousUser'
        ws.send('text')
        assert ws.recv() == 'text'
        ws.send_binary(b'\xffbinary')
        assert ws.recv() == b'\xffbinary'
        ws.close()
        response = requests.get(server.url + '/ws/echo/', timeout=10)
        assert (response.status_code, response.headers['Upgrade']) == (426, 'websocket')


def check_make_targets(code, request):
    """``make test`` runs the whole suite and Autobahn, ``make run`` serves on port 8000
    until stopped: ``make -n`` shows that each line's target runs what its comment says."""
    expected = {'run': ['manage.py migrate --noinput', 'manage.py superserver 127.0.0.1:8000'],
                'test': ['-m pytest', 'autobahn/run.py']}
    lines = [line.split('#')[0].split() for line in code.splitlines() if line.strip()]
    assert [words[:1] for words in lines] == [['make']] * len(lines)
    assert {words[1] for words in lines} == set(expected)
    for target, commands in expected.items():
        plan = subprocess.run(['make', '-n', target], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=True).stdout
        for command in commands:
            assert command in plan, plan


def run_superserver_log(code, request):
    """The sample's lines appear, in order, in the output of the demo served as the
    sample says (on a free port), with a page, a websocket and a change to views.py;
    numbers and the project's directory may differ."""
    demo = request.getfixturevalue('demo')
    command, *sample = code.rstrip('\n').splitlines()
    assert command == '$ ./manage.py superserver'
    server = ServerProcess('127.0.0.1:%d' % free_port(), cwd=demo, manage=demo / 'manage.py',
                           env={'DJANGO_SETTINGS_MODULE': 'superserver.settings'})
    try:
        assert requests.get(server.url + '/', timeout=10).status_code == 200
        ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=30)
        ws.send('hello')
        assert ws.recv() == 'hello'
        views = demo / 'superserver' / 'views.py'
        views.write_text(views.read_text() + '\n')
        opcode, data = ws.recv_data(control_frame=True)
        assert (opcode, data[:2]) == (websocket.ABNF.OPCODE_CLOSE, (1012).to_bytes(2, 'big'))
        restarted = server.wait_for(r' changed, reloading\.$').string
        assert restarted.endswith('superserver/views.py changed, reloading.'), restarted
        server.wait_for(server.BANNER_END.pattern, start=server.lines.index(restarted))
        assert_in_order(sample, server.lines)
    finally:
        server.stop()


def sample_pattern(line):
    """A sample output line as a pattern: numbers and a leading directory may differ."""
    variable = re.compile(r'\d+|^/\S+/(?=superserver/)')
    parts, end = [], 0
    for match in variable.finditer(line):
        parts += [re.escape(line[end:match.start()]),
                  r'/\S+/' if match[0].startswith('/') else r'\d+']
        end = match.end()
    return re.compile(''.join(parts) + re.escape(line[end:]) + '$')


def assert_in_order(sample, lines):
    position = 0
    for line in sample:
        pattern = sample_pattern(line)
        while position < len(lines) and not pattern.match(lines[position]):
            position += 1
        assert position < len(lines), 'no line like %r after the ones before it in:\n%s' % (
            line, '\n'.join(lines))
        position += 1


def run_make_server_script(code, request):
    """As it stands but for its port (8000 may be taken here), without
    DJANGO_SETTINGS_MODULE in the environment; SIGTERM stops it with status 0."""
    project = request.getfixturevalue('project')
    port = free_port()
    assert code.count('8000') == 1
    (project / 'serve.py').write_text(code.replace('8000', str(port)))
    script = Process(['env', '-u', 'DJANGO_SETTINGS_MODULE', PYTHON, 'serve.py'],
                     env=routes_env({'ws/echo/': 'probe.echo'}), cwd=project)
    try:
        url = 'http://127.0.0.1:%d' % port
        assert wait_until(lambda: answers(url + '/admin/login/', script), timeout=30), \
            script.output()
        assert_echoes('ws://127.0.0.1:%d/ws/echo/' % port)
        script.signal(signal.SIGTERM)
        assert script.wait(15) == 0, script.output()
    finally:
        script.stop()


def answers(url, process):
    """Whether ``url`` answers 200; raises once ``process`` has ended."""
    assert process.process.poll() is None, process.output()
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def run_login_required_view(code, request):
    """Anonymous: the handshake gets 403 (no redirect), a plain request the login
    redirect; alice's session cookie: 101 and the view."""
    cookie = request.getfixturevalue('session')
    with served(request, code, {'ws/whoami/': 'whoami'}) as server:
        assert refused(server, '/ws/whoami/') == (403, False)
        plain = requests.get(server.url + '/ws/whoami/', allow_redirects=False, timeout=10)
        assert (plain.status_code, plain.headers['Location']) == (
            302, '/accounts/login/?next=/ws/whoami/')
        ws = connect(server, '/ws/whoami/', cookie=cookie)
        assert ws.getstatus() == 101
        assert ws.recv() == 'alice'
        ws.close()


def run_login_required_middleware(code, request):
    """In the project's settings, ``...`` being its MIDDLEWARE: a view without decorators
    refuses anonymous handshakes with 403, redirects plain requests, serves alice."""
    cookie = request.getfixturevalue('session')
    settings = code.replace('...,', '*MIDDLEWARE,', 1)
    assert settings != code
    with served(request, PROBE, {'ws/echo/': 'echo'}, settings=settings) as server:
        assert refused(server, '/ws/echo/') == (403, False)
        plain = requests.get(server.url + '/ws/echo/', allow_redirects=False, timeout=10)
        assert (plain.status_code, plain.headers['Location']) == (
            302, '/accounts/login/?next=/ws/echo/')
        ws = connect(server, '/ws/echo/', cookie=cookie)
        ws.send('logged in')
        assert ws.recv() == 'logged in'
        ws.close()


def run_fan_out_room(code, request):
    """Two sockets of alice in a room both hear what one says; anonymous: 403."""
    cookie = request.getfixturevalue('session')
    with served(request, code, {'ws/room/<str:name>/': 'room'}) as server:
        assert refused(server, '/ws/room/lobby/') == (403, False)
        # The view subscribes before the first use of the socket answers the handshake.
        first, second = (connect(server, '/ws/room/lobby/', cookie=cookie) for _ in 'ab')
        first.send('hello')
        for ws in (first, second):
            assert json.loads(ws.recv()) == {'user': 'alice', 'text': 'hello'}
            ws.close()


def run_async_view(code, request):
    """Twenty requests at once, each awaiting the ORM and a sleep: all answered, with the
    project's count of users."""
    project = request.getfixturevalue('project')
    users = int(manage(project, 'shell', '-c', 'from django.contrib.auth.models import User; '
                       'print(User.objects.count())', settings='myproject.settings'
                       ).stdout.split()[-1])   # after the shell's own lines
    with served(request, code, {'async/dashboard/': 'dashboard'}) as server:
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: requests.get(server.url + '/async/dashboard/',
                                                           timeout=30), range(20)))
    assert [(answer.status_code, answer.json()) for answer in answers] == [
        (200, {'users': users})] * 20


def check_history_setting(code, request):
    """A setting: the patterns it sets mean what its comments say."""
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    rules = HistoryRules(namespace['SUPERSERVER_CHANNEL_HISTORY'])
    assert rules.policy_for('group:chat-lobby') == Policy(size=500, ttl=24 * 3600)
    assert rules.policy_for('user:7').ttl == 600
    assert rules.policy_for('group:news') is None


def check_history_calls(code, request):
    """Its loops would wait for ever (``...`` reads live messages): every call of the
    API in it binds to the real signature instead."""
    assert_calls_bind(code, {'forward': pubsub.forward, 'subscribe': pubsub.subscribe,
                             'sse': sse})


def assert_calls_bind(code, namespace):
    """Each call of a name in ``namespace``, or of an attribute of one, takes the
    arguments the code passes (as many positional ones, keywords of these names)."""
    calls = 0
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name) \
                and function.value.id in namespace:
            target = getattr(namespace[function.value.id], function.attr)
        elif isinstance(function, ast.Name) and function.id in namespace:
            target = namespace[function.id]
        else:
            continue
        inspect.signature(target).bind(*node.args, **{word.arg: None for word in node.keywords})
        calls += 1
    assert calls, 'no call of %s' % ', '.join(namespace)


def run_fragment_in_view(code, request, offer_compression=False):
    """The fragment in a view (``FRAGMENT_VIEW``): repr() of its last expression."""
    with served(request, FRAGMENT_VIEW.format(code=code), {'ws/fragment/': 'view'}) as server:
        with websockets_connect(server.ws_url + '/ws/fragment/', open_timeout=10,
                                compression='deflate' if offer_compression else None) as ws:
            for _ in range(5):   # presence events the fragment forwarded come first
                message = ws.recv(timeout=10)
                if '"event"' not in message:
                    return message
    raise AssertionError('no result from the fragment, only %r' % message)


def run_presence_fragment(code, request):
    """Joined and left again by its end: nobody is in the channel."""
    assert run_fragment_in_view(code, request) == '{}'


def run_compression_fragment(code, request):
    """Offered permessage-deflate, the socket accepted with compress=False has none."""
    assert run_fragment_in_view(code, request, offer_compression=True) == 'None'


def run_demo_tests(code, request):
    """Run as a test module of the demo project, by its ``manage.py test``."""
    demo = request.getfixturevalue('demo')
    (demo / 'superserver' / 'readme_tests.py').write_text(code)
    result = manage(demo, 'test', 'superserver.readme_tests', settings='superserver.settings')
    assert re.search(r'^Ran [1-9]\d* tests? in ', result.stderr, re.MULTILINE), result.stderr


def run_production_commands(code, request):
    """``pip install`` would change this virtualenv: its extras exist and their
    requirements are installed. gunicorn runs as written, but on a free port (through
    GUNICORN_CMD_ARGS, or in place of a ``-b``), and serves a websocket."""
    project = request.getfixturevalue('project')
    for line in code.splitlines():
        words = shlex.split(line.split('  #')[0])
        if words[:2] == ['pip', 'install']:
            assert_extras_installed(words[2:])
        elif words[:1] == ['gunicorn']:
            run_gunicorn(words, project)
        else:
            assert not words, 'no way to run %r' % line


def assert_extras_installed(arguments):
    [target] = arguments
    match = re.fullmatch(r'\.\[([\w,-]+)\]', target)
    assert match, target
    config = configparser.ConfigParser()
    config.read(ROOT / 'setup.cfg')
    for extra in match[1].split(','):
        for requirement in filter(None, config['options.extras_require'][extra].splitlines()):
            name = re.match(r'[\w.-]+', requirement.strip())[0]
            importlib.metadata.version(name)   # PackageNotFoundError if it is not installed


def run_gunicorn(words, project):
    words = [re.sub(r'^\d+\.\d+\.\d+\.\d+:\d+$', '127.0.0.1:0', word) for word in words]
    gunicorn = Process(words, cwd=project, env={
        'PATH': os.pathsep.join([os.path.dirname(PYTHON), os.environ['PATH']]),
        'GUNICORN_CMD_ARGS': '--bind 127.0.0.1:0', **routes_env({'ws/echo/': 'probe.echo'})})
    try:
        port = gunicorn.wait_for(GunicornProcess.LISTENING).group(1)
        url = 'http://127.0.0.1:%s' % port
        assert wait_until(lambda: answers(url + '/admin/login/', gunicorn), timeout=30), \
            gunicorn.output()
        assert_echoes('ws://127.0.0.1:%s/ws/echo/' % port)
    finally:
        gunicorn.signal(signal.SIGQUIT)
        gunicorn.stop()


def check_diagram(code, request):
    """Each module it names exists, and each class is defined where it says."""
    from extensions import adaptation, wsgi
    from gevent.pywsgi import WSGIServer
    assert issubclass(adaptation.WebSocketServer, WSGIServer)
    for path in re.findall(r'extensions/\w+\.py', code):
        assert (ROOT / path).is_file(), path
    modules = [adaptation, wsgi, importlib.import_module('extensions.devserver')]
    for name in re.findall(r'\b((?:WebSocket|PlainRequest|CloseDatabase)\w+)', code):
        assert any(inspect.isclass(getattr(module, name, None)) for module in modules), name


RUNNERS = {
    'from extensions.decorators import require_websocket': run_echo_view,
    'make run     # virtualenv, install, migrate, then ./manage.py superserver on 127.0.0.1:8000':
        check_make_targets,
    '# serve.py, beside manage.py: python serve.py': run_make_server_script,
    '$ ./manage.py superserver': run_superserver_log,
    'from extensions.decorators import login_required, require_websocket':
        run_login_required_view,
    'MIDDLEWARE = [': run_login_required_middleware,
    'from extensions.pubsub import forward, group_channel, publish, user_channel':
        run_fan_out_room,
    'import asyncio': run_async_view,
    'SUPERSERVER_CHANNEL_HISTORY = {': check_history_setting,
    "with forward(ws, channel, since=request.GET.get('since'), positions=True):":
        check_history_calls,
    'from extensions.presence import join, member_of, presence, presence_channel':
        run_presence_fragment,
    'ws.accept(compress=False)   # this socket stays uncompressed (say, images already '
    'compressed)': run_compression_fragment,
    'import json': run_demo_tests,
    "pip install '.[gunicorn]'": run_production_commands,
    'client -> WebSocketServer        gevent.pywsgi.WSGIServer subclass      '
    'extensions/adaptation.py': check_diagram,
}


def test_every_block_has_a_runner():
    keys = [key for key, code in readme_blocks()]
    assert len(keys) == len(set(keys)), 'two README blocks start with the same line'
    assert not [key for key in keys if key not in RUNNERS], \
        'README blocks that no test runs: add them to RUNNERS'
    assert not [key for key in RUNNERS if key not in keys], 'RUNNERS of blocks gone'


@pytest.mark.parametrize('key', [key for key in RUNNERS if key in BLOCKS],
                         ids=lambda key: key[:40])
def test_block(key, request):
    RUNNERS[key](BLOCKS[key], request)
