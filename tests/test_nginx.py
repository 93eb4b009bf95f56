"""The deployment guide (docs/deployment.md) as written: its nginx block in front of
gunicorn run with its gunicorn.conf.py, serving the test project; and its settings table
against the settings the code reads.

Clients bound to 127.0.0.2 stand for browsers: the project trusts 127.0.0.1 (nginx) as
a proxy, so their address must come through nginx, and cannot be forged around it.
"""
import ast
import dataclasses
import http.client
import importlib
import inspect
import json
import re
import socket
import ssl
import time

import pytest
import requests
import websocket
from werkzeug.serving import make_ssl_devcert

from extensions import sse
from extensions.config import ServerConfig, WebSocketConfig

from .nginx import GUIDE, SITE_BLOCK, NginxProcess, guide_block, require_nginx
from .server_process import ROOT, GunicornProcess

CLIENT = '127.0.0.2'


@pytest.fixture(scope='module')
def gunicorn(project_env, tmp_path_factory):
    """gunicorn with the guide's gunicorn.conf.py; the command line of GunicornProcess
    overrides its bind, workers and access log."""
    require_nginx()
    config = tmp_path_factory.mktemp('gunicorn') / 'gunicorn.conf.py'
    config.write_text(guide_block('python', '# gunicorn.conf.py'))
    server = GunicornProcess('-c', str(config),
                             env={**project_env, 'SUPERSERVER_TEST_TRUSTED_PROXIES': '127.0.0.1'})
    yield server
    server.stop()


@pytest.fixture(scope='module')
def nginx(gunicorn, tmp_path_factory):
    server = NginxProcess(gunicorn.port, tmp_path_factory.mktemp('nginx'))
    yield server
    server.stop()


@pytest.fixture(scope='module')
def nginx_tls(gunicorn, tmp_path_factory):
    directory = tmp_path_factory.mktemp('nginx-tls')
    certificate, key = make_ssl_devcert(str(directory / 'site'), host='127.0.0.1')
    server = NginxProcess(gunicorn.port, directory, certificate, key)
    yield server
    server.stop()


def get_json(port, path, source=CLIENT, headers=None):
    """GET ``path`` from 127.0.0.1:``port`` with a client bound to ``source``."""
    connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10,
                                            source_address=(source, 0))
    try:
        connection.request('GET', path, headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return json.loads(response.read())
    finally:
        connection.close()


def test_websocket_echo_through_nginx(nginx):
    ws = websocket.create_connection(nginx.ws_url + '/ws/echo/', timeout=10)
    ws.send('through nginx')
    assert ws.recv() == 'through nginx'
    payload = bytes(range(256)) * 4096   # 1 MiB, the message limit; nginx's body limit: not for it
    ws.send_binary(payload)
    assert ws.recv() == payload
    ws.close()


def test_plain_requests_through_nginx(nginx):
    answer = requests.post(nginx.url + '/', data='x' * 100_000, timeout=10).json()
    assert answer == {'method': 'POST', 'body': 'x' * 100_000, 'websocket': False,
                      'server': 'WebSocketServer'}


def test_server_sent_events_pass_nginx_one_by_one(nginx):
    """The stream never ends; each event must arrive as it is sent, not when nginx's
    buffer fills (a minute of ticks)."""
    started = time.monotonic()
    events, buffer = [], b''
    with requests.get(nginx.url + '/sse/process/', stream=True, timeout=(5, 2)) as response:
        assert response.headers['Content-Type'].startswith('text/event-stream')
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            *complete, buffer = buffer.split(b'\n\n')
            events += [(event[len(b'data: '):].decode(), time.monotonic() - started)
                       for event in complete if event.startswith(b'data: ')]
            if len(events) >= 4 or time.monotonic() - started > 5:
                break
    assert [data for data, _ in events[:4]] == [events[0][0], 'tick', 'tick', 'tick']
    first, last = events[0][1], events[3][1]
    assert first < 2, 'the first event took %.1f s' % first
    # The fourth is sent 0.6 s after the first (or later, under load), a batch would come
    # all at once: half of that lets the client read the first up to 0.3 s late.
    assert last - first > 0.3, 'the ticks, sent 0.2 s apart, came in one batch: %r' % events


def test_the_client_address_comes_through_nginx(nginx, gunicorn):
    seen = get_json(nginx.port, '/process/?from=nginx')
    assert (seen['remote_addr'], seen['secure']) == (CLIENT, False)
    gunicorn.wait_for(r'^127\.0\.0\.2 .*"GET /process/\?from=nginx HTTP/1\.1" 200 ')
    # What the client says of itself is left of what nginx appends: not believed.
    assert get_json(nginx.port, '/process/', headers={'X-Forwarded-For': '6.6.6.6'})[
        'remote_addr'] == CLIENT

    sock = socket.create_connection(('127.0.0.1', nginx.port), timeout=10,
                                    source_address=(CLIENT, 0))
    ws = websocket.create_connection(nginx.ws_url + '/ws/process/?from=nginx', socket=sock,
                                     timeout=10)
    pid, remote_addr = ws.recv().split()
    assert (int(pid) in gunicorn.workers(), remote_addr) == (True, CLIENT)
    ws.close()
    gunicorn.wait_for(r'^127\.0\.0\.2 .*"GET /ws/process/\?from=nginx HTTP/1\.1" 101 ')


def test_forwarded_headers_are_believed_from_the_proxy_only(gunicorn):
    forged = {'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Proto': 'https'}
    seen = get_json(gunicorn.port, '/process/', source=CLIENT, headers=forged)
    assert (seen['remote_addr'], seen['secure']) == (CLIENT, False)
    # From 127.0.0.1, the trusted proxy's address, the same headers are believed.
    seen = get_json(gunicorn.port, '/process/', source='127.0.0.1', headers=forged)
    assert (seen['remote_addr'], seen['secure']) == ('6.6.6.6', True)


def test_origin_check_through_nginx_on_its_port(nginx):
    ws = websocket.create_connection(nginx.ws_url + '/ws/echo/', origin=nginx.url, timeout=10)
    ws.send('same origin')
    assert ws.recv() == 'same origin'
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(nginx.ws_url + '/ws/echo/', origin='http://evil.example',
                                    timeout=10)
    assert refused.value.status_code == 403


def test_login_through_nginx_on_its_port_then_the_session_reaches_a_websocket(nginx):
    """Django's CSRF check compares the POST's Origin with the Host nginx passes on: with
    the port (``$http_host``), or every form POST to a non-default port gets 403."""
    session = requests.Session()
    login = nginx.url + '/accounts/login/'
    session.get(login, timeout=10)
    response = session.post(login, timeout=10, allow_redirects=False,
                            headers={'Origin': nginx.url},
                            data={'username': 'alice', 'password': 'wonderland',
                                  'csrfmiddlewaretoken': session.cookies['csrftoken']})
    assert response.status_code == 302, response.text
    cookie = '; '.join('%s=%s' % item for item in session.cookies.items())
    ws = websocket.create_connection(nginx.ws_url + '/ws/whoami/', origin=nginx.url,
                                     cookie=cookie, timeout=10)
    assert ws.recv() == 'alice'
    ws.close()


@pytest.mark.filterwarnings('ignore:Unverified HTTPS request')   # a self-signed certificate
def test_tls_at_nginx_reaches_gunicorn_as_plain_http_marked_secure(nginx_tls):
    # websocket-client sends Origin: https://127.0.0.1:<port>, as a browser would.
    ws = websocket.create_connection(nginx_tls.ws_url + '/ws/process/', timeout=10,
                                     sslopt={'cert_reqs': ssl.CERT_NONE})
    assert ws.recv().split()[1] == '127.0.0.1'
    ws.send('over tls')
    assert ws.recv() == 'over tls'
    ws.close()
    assert requests.get(nginx_tls.url + '/process/', verify=False, timeout=10).json()['secure']


def test_nginx_outlasts_the_keepalive_and_the_sse_heartbeat():
    timeout = re.search(r'proxy_read_timeout (\d+)s;', guide_block('nginx', SITE_BLOCK))
    config = WebSocketConfig()
    assert int(timeout.group(1)) > config.ping_interval + config.ping_timeout
    assert int(timeout.group(1)) > inspect.signature(sse.stream).parameters['heartbeat'].default


def settings_in_the_code():
    """{name: [defaults]} of every SUPERSERVER_ setting: the fields of the config classes
    and every ``getattr(settings, 'SUPERSERVER_...', default)`` under extensions/."""
    found = {}
    for config in (WebSocketConfig, ServerConfig):
        for field in dataclasses.fields(config):
            found.setdefault('SUPERSERVER_' + field.name.upper(), []).append(field.default)
    for path in sorted((ROOT / 'extensions').rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'getattr'
                    and len(node.args) == 3 and isinstance(node.args[1], ast.Constant)
                    and str(node.args[1].value).startswith('SUPERSERVER_')):
                continue
            default = node.args[2]
            if isinstance(default, ast.Name):   # a module constant
                module = importlib.import_module(
                    '.'.join(path.relative_to(ROOT).with_suffix('').parts))
                value = getattr(module, default.id)
            else:
                value = ast.literal_eval(default)
            found.setdefault(node.args[1].value, []).append(value)
    return found


def test_the_settings_table_names_every_setting_with_its_default():
    rows = re.findall(r'^\| `(SUPERSERVER_\w+)` \| `([^`]*)` \|', GUIDE.read_text(),
                      re.MULTILINE)
    table = {name: ast.literal_eval(default) for name, default in rows}
    in_code = settings_in_the_code()
    assert sorted(table) == sorted(in_code)

    def plain(value):   # () and [] alike: the guide writes lists
        return list(value) if isinstance(value, tuple) else value

    for name, defaults in in_code.items():
        assert all(plain(default) == table[name] for default in defaults), (name, defaults)
