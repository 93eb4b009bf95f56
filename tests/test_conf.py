"""Django settings read into limits and the origin policy."""
import pytest
from django.test import override_settings

from extensions.conf import origin_allowed, websocket_config
from extensions.config import WebSocketConfig

ENVIRON = {'HTTP_HOST': 'app.example:8000'}


def test_defaults():
    with override_settings():
        assert websocket_config() == WebSocketConfig()
        assert WebSocketConfig().max_message_size == 2**20


@override_settings(SUPERSERVER_MAX_MESSAGE_SIZE=16 * 2**20, SUPERSERVER_PING_INTERVAL=None)
def test_settings_override_limits():
    config = websocket_config()
    assert (config.max_message_size, config.ping_interval) == (16 * 2**20, None)


@pytest.mark.parametrize('settings, origin, allowed', [
    ({}, 'http://app.example:8000', True),                          # same origin
    ({}, 'http://other.example', False),
    ({'DEBUG': True, 'ALLOWED_HOSTS': []}, 'http://localhost:3000', True),
    ({'DEBUG': False, 'ALLOWED_HOSTS': []}, 'http://localhost:3000', False),
    ({'ALLOWED_HOSTS': ['*']}, 'http://evil.example', False),       # '*' opens no origins
    ({'ALLOWED_HOSTS': ['.example.org']}, 'https://www.example.org', True),
    ({'CSRF_TRUSTED_ORIGINS': ['https://a.example']}, 'http://a.example', False),  # scheme
    ({'SUPERSERVER_ALLOWED_ORIGINS': ['*']}, 'http://anything.example', True),
    ({}, None, True),
    ({'SUPERSERVER_REQUIRE_ORIGIN': True}, None, False),
    ({'SUPERSERVER_ALLOWED_ORIGINS': ['*']}, 'null', True),
    ({}, 'null', False),
])
def test_origin_policy(settings, origin, allowed):
    with override_settings(**{'ALLOWED_HOSTS': [], 'CSRF_TRUSTED_ORIGINS': [],
                              'SUPERSERVER_ALLOWED_ORIGINS': [], **settings}):
        assert origin_allowed(origin, ENVIRON) is allowed
