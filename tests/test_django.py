"""Django views serving websockets: through ``manage.py superserver``, as users run it,
where the server, the wire or the process is what is tested; with the test client
(``extensions.testing.Client``, no socket to listen on) where only the view's behaviour
through Django's stack is."""
import json
import socket
import threading
import time

import pytest
import requests
import websocket
from django.contrib.auth.models import User
from websocket import ABNF

from extensions.testing import Client

from .frames import CLOSE
from .server_process import wait_until


def connect(server, path, **options):
    return websocket.create_connection(server.ws_url + path, timeout=30, **options)


def close_frame(ws):
    """Read up to the server's close frame (websocket-client answers it); its code."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == CLOSE:
            ws.shutdown()
            return int.from_bytes(data[:2], 'big')


def test_echo_text_binary_and_200kb(django_server):
    ws = connect(django_server, '/ws/echo/')
    ws.send('hello')
    assert ws.recv() == 'hello'
    ws.send_binary(b'\x00\xffbinary')
    assert ws.recv() == b'\x00\xffbinary'
    big = 'é' * 100_000   # 200 KB of UTF-8
    ws.send(big)
    assert ws.recv() == big
    ws.close()


def test_fragmented_message_is_assembled(django_server):
    ws = connect(django_server, '/ws/echo/')
    ws.send_frame(ABNF.create_frame('frag', ABNF.OPCODE_TEXT, fin=0))
    ws.ping('in between')
    ws.send_frame(ABNF.create_frame('men', ABNF.OPCODE_CONT, fin=0))
    ws.send_frame(ABNF.create_frame('ted', ABNF.OPCODE_CONT, fin=1))
    assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PONG, b'in between')
    assert ws.recv() == 'fragmented'
    ws.close()


def test_unknown_url_gets_404_not_a_socket():
    assert Client().websocket('/ws/nowhere/').response.status_code == 404


def test_login_required_redirects_anonymous_clients():
    response = Client().websocket('/ws/whoami/').response
    assert response.status_code == 302
    assert response['Location'] == '/accounts/login/?next=/ws/whoami/'


@pytest.mark.django_db
def test_logged_in_session_reaches_the_websocket_view():
    client = Client()
    client.force_login(User.objects.create_user('alice'))   # a session, and its cookie
    with client.websocket('/ws/whoami/') as ws:
        assert ws.receive() == 'alice'
        assert ws.receive() is None
        assert ws.close_code == 1000   # the view returned


def test_exception_closes_1011_and_logs_the_traceback(caplog):
    with Client(raise_request_exception=False).websocket('/ws/boom/') as ws:
        ws.send('go')
        assert ws.receive() is None
        assert ws.close_code == 1011
    [logged] = [record for record in caplog.records if record.name == 'django.request']
    assert logged.getMessage() == 'Internal Server Error: /ws/boom/'
    assert str(logged.exc_info[1]) == 'boom in a websocket view'


def test_client_leaving_mid_send_is_not_a_server_error(django_server):
    start = len(django_server.lines)
    ws = connect(django_server, '/ws/send-after-close/')
    ws.close()
    django_server.wait_for(r'WebSocket /ws/send-after-close/ from \S+ closed 1000 by the client',
                           start=start)
    assert 'ConnectionClosed' not in '\n'.join(django_server.lines[start:])
    assert 'Internal Server Error' not in '\n'.join(django_server.lines[start:])


def test_return_closes_1000():
    with Client().websocket('/ws/returns/') as ws:
        assert ws.receive() == 'bye'
        assert ws.receive() is None
        assert ws.close_code == 1000


def test_subprotocol_choice():
    with Client().websocket('/ws/subprotocol/', ['chat', 'superchat']) as ws:
        assert ws.subprotocol == 'superchat'
        assert ws.receive() == 'superchat'


def test_oversize_closes_1009_and_others_are_still_served(django_server):
    bystander = connect(django_server, '/ws/echo/')
    ws = connect(django_server, '/ws/small/')   # max_message_size=1000 for this view
    ws.send('x' * 1000)
    assert ws.recv() == 'x' * 1000
    ws.send('x' * 1001)
    assert close_frame(ws) == 1009
    default = connect(django_server, '/ws/echo/')   # the default limit is 1 MiB
    default.send_binary(b'x' * (2**20 + 1))
    assert close_frame(default) == 1009
    bystander.send('still here')
    assert bystander.recv() == 'still here'
    bystander.close()


def test_a_forwarded_client_too_far_behind_is_closed_1013_and_others_go_on(django_server):
    """forward() writes each published message without waiting for its socket; a client
    that reads nothing while more than MAX_BROADCAST_BACKLOG (1 MiB) piles up past what
    the kernel buffers is closed with 1013 instead of growing the server without bound."""
    keeping_up = connect(django_server, '/ws/room/backlog/')
    reading_nothing = connect(django_server, '/ws/room/backlog/',
                              sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    assert keeping_up.recv() == reading_nothing.recv() == 'subscribed'
    message, published = 'x' * 100_000, 80   # 8 MB: past 4 MB of kernel buffer and 1 MiB
    with requests.Session() as session:
        for _ in range(published):
            response = session.post(django_server.url + '/publish/backlog/', data=message,
                                    timeout=10)
            assert response.status_code == 204
            assert keeping_up.recv() == message
        received = 0
        while True:
            opcode, data = reading_nothing.recv_data(control_frame=True)
            if opcode == CLOSE:
                break
            assert data == message.encode()
            received += 1
        assert int.from_bytes(data[:2], 'big') == 1013
        assert received < published
        session.post(django_server.url + '/publish/backlog/', data='after', timeout=10)
    assert keeping_up.recv() == 'after'
    keeping_up.close()


def test_two_greenlets_sending_never_interleave(django_server):
    count, size = 1000, 5000
    ws = connect(django_server, '/ws/senders/?count=%d&size=%d' % (count, size))
    time.sleep(0.5)   # let the server fill the socket buffers, so writes are partial
    expected = {'a': 0, 'b': 0}
    for _ in range(2 * count):
        name, index, filler = ws.recv().split(':')
        assert int(index) == expected[name]
        assert filler == name * size
        expected[name] += 1
    assert expected == {'a': count, 'b': count}
    ws.close()


def test_plain_http_views_are_unaffected(django_server):
    session = requests.Session()   # keep-alive: several requests on one connection
    for method in ('get', 'post', 'get'):
        response = getattr(session, method)(django_server.url + '/', data='payload',
                                            timeout=10)
        assert response.status_code == 200
        assert response.json() == {'method': method.upper(), 'body': 'payload',
                                   'websocket': False, 'server': 'WebSocketServer'}
    assert requests.head(django_server.url + '/', timeout=10).status_code == 200


def test_plain_get_of_a_websocket_view_is_426(django_server):
    response = requests.get(django_server.url + '/ws/echo/', timeout=10)
    assert response.status_code == 426
    assert response.headers['Upgrade'] == 'websocket'


def test_database_connection_is_released_while_waiting_and_closed_when_the_view_ends(
        django_server):
    def open_connections():
        return requests.get(django_server.url + '/db/', timeout=10).json()['open']

    def all_closed():
        return wait_until(lambda: open_connections() == 0, interval=0.05)

    ws = connect(django_server, '/ws/db/')
    assert ws.recv() == '1'          # the view queried the database, then waits:
    assert all_closed()              # CONN_MAX_AGE would keep it open, superserver not
    ws.send('next')
    assert ws.recv() == '1'          # queried again, and waits inside atomic():
    assert open_connections() == 1   # the transaction keeps its connection...
    ws.close()
    assert all_closed()              # ...until the view ends


@pytest.mark.parametrize('origin, allowed', [
    ('http://evil.example', False),
    ('null', False),
    ('http://allowed.example', True),          # SUPERSERVER_ALLOWED_ORIGINS
    ('https://trusted.example', True),         # CSRF_TRUSTED_ORIGINS
    ('https://sub.wild.example', True),        # CSRF_TRUSTED_ORIGINS wildcard
    ('http://allowed-host.example', True),     # ALLOWED_HOSTS
    (None, True),                              # no Origin: not a browser
])
def test_origin_policy(origin, allowed):
    ws = Client().websocket('/ws/echo/', headers={'Origin': origin} if origin else None)
    if not allowed:
        assert ws.response.status_code == 403
        return
    with ws:
        ws.send('ok')
        assert ws.receive() == 'ok'


def test_foreign_origin_rejection_is_logged(caplog):
    Client().websocket('/ws/echo/', headers={'Origin': 'http://hijack.example'})
    assert 'refused with 403: origin http://hijack.example' in caplog.text


def test_200_concurrent_clients(django_server):
    clients, messages = 200, 5
    barrier = threading.Barrier(clients, timeout=60)
    failures = []

    def client(n):
        try:
            ws = connect(django_server, '/ws/echo/')
            barrier.wait()   # all 200 are connected at the same time
            for i in range(messages):
                text = json.dumps([n, i])
                ws.send(text)
                assert ws.recv() == text
            ws.close()
        except Exception as error:   # reported below, with the client's number
            failures.append((n, repr(error)))
            barrier.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert failures == []
    assert not any(thread.is_alive() for thread in threads)
