"""Password hashing off the event loop (``extensions.hashers``): a login, half a second of
PBKDF2, leaves every other socket of the process answered."""
import threading
import time

import pytest
import requests
import websocket
from django.conf import settings
from django.contrib.auth.hashers import (PBKDF2PasswordHasher, check_password, get_hasher,
                                         make_password)
from django.test import override_settings

from extensions.hashers import OffloadedHashing, offload_password_hashers

from .server_process import GunicornProcess, ServerProcess
from .test_command import served_after_the_blocks

#: The longest an echo may wait while the login hashes: the blocking detector's
#: threshold, and at most a quarter of the login's time (hashing on the event loop, one
#: echo waits nearly all of it; here about 0.25 s of 0.3 s, and 10-20 ms when offloaded).
LONGEST_ECHO = 0.1


@pytest.fixture(scope='module')
def gunicorn_server(project_env):
    server = GunicornProcess(workers=1, env=project_env)
    yield server
    server.stop()


def log_in_while_echoing(server):
    """Log in as alice while a websocket of the same process echoes every 10 ms: the
    login's status and duration, and how long each echo took meanwhile."""
    session = requests.Session()
    login = server.url + '/accounts/login/'
    session.get(login, timeout=10)
    ws = websocket.create_connection(server.ws_url + '/ws/echo/', timeout=10)
    outcome = {}

    def log_in():
        began = time.monotonic()
        outcome['status'] = session.post(
            login, timeout=10, allow_redirects=False,
            data={'username': 'alice', 'password': 'wonderland',
                  'csrfmiddlewaretoken': session.cookies['csrftoken']}).status_code
        outcome['took'] = time.monotonic() - began

    echoes = []
    thread = threading.Thread(target=log_in)
    thread.start()
    deadline = time.monotonic() + 20
    while thread.is_alive() and time.monotonic() < deadline:
        sent = time.monotonic()
        ws.send('ping')
        assert ws.recv() == 'ping'
        echoes.append(time.monotonic() - sent)
        time.sleep(0.01)
    thread.join(10)
    ws.close()
    return outcome['status'], outcome['took'], echoes


@pytest.mark.parametrize('server', ['django_server', 'gunicorn_server'])
def test_a_login_does_not_hold_the_other_sockets(request, server):
    server = request.getfixturevalue(server)
    start = len(server.lines)
    status, took, echoes = log_in_while_echoing(server)
    assert status == 302
    assert max(echoes) < min(LONGEST_ECHO, took / 4) and len(echoes) >= 5, (took, echoes)
    if isinstance(server, ServerProcess):   # which reports code that blocks the loop
        served_after_the_blocks(server, start)
        assert not [line for line in server.lines[start:] if 'event loop was blocked' in line]


HASHERS = ['django.contrib.auth.hashers.PBKDF2PasswordHasher',
           'django.contrib.auth.hashers.MD5PasswordHasher']


@override_settings(PASSWORD_HASHERS=HASHERS)
def test_each_configured_hasher_gets_an_offloading_subclass_of_itself():
    stored = make_password('wonderland')   # by Django's own hasher
    offload_password_hashers()
    offloaded = list(settings.PASSWORD_HASHERS)
    assert offloaded == ['extensions.hashers.OffloadedPBKDF2PasswordHasher',
                         'extensions.hashers.OffloadedMD5PasswordHasher']
    offload_password_hashers()
    assert settings.PASSWORD_HASHERS == offloaded   # once is enough
    with override_settings(PASSWORD_HASHERS=offloaded):
        hasher = get_hasher()
        assert isinstance(hasher, OffloadedHashing) and isinstance(hasher, PBKDF2PasswordHasher)
        assert hasher.algorithm == 'pbkdf2_sha256'
        assert check_password('wonderland', stored) and not check_password('alice', stored)
        assert get_hasher('md5').verify('x', get_hasher('md5').encode('x', 'salt'))
