"""System checks: what would make the app misbehave quietly is said at startup.

The app's ``ready`` registers them (``register``), so importing this module does not.
"""
from django.apps import apps
from django.core import checks

from . import conf
from .finders import SCRIPT, static_root

ID = 'superserver_ws4redis.%s'
LOOPBACK = {'localhost', '127.0.0.1', '::1'}


def check_broker(app_configs, **kwargs):
    """The broker must be Redis, and WS4REDIS_CONNECTION (if set) that same Redis."""
    if not conf.uses_redis_broker():
        return [checks.Error('SUPERSERVER_BROKER is %r, not Redis.' % conf.broker_url(),
                             hint=conf.REDIS_BROKER_NEEDED + '.', id=ID % 'E001')]
    options = conf.connection()
    if options is None:
        return []
    from redis.connection import parse_url
    if _redis_named(options) != _redis_named(parse_url(conf.broker_url())):
        return [checks.Warning(
            'WS4REDIS_CONNECTION names another Redis than SUPERSERVER_BROKER (%s).'
            % conf.broker_url().split('@')[-1],
            hint='Websockets subscribe on SUPERSERVER_BROKER but publish and keep messages '
                 'on WS4REDIS_CONNECTION, so they would not hear each other: make them '
                 'the same Redis.', id=ID % 'W002')]
    return []


def _redis_named(options):
    """Where redis-py keyword arguments (WS4REDIS_CONNECTION's, or parse_url's) lead."""
    db = int(options.get('db') or 0)
    path = options.get('unix_socket_path') or options.get('path')
    if path:
        return ('unix', path, db)
    host = options.get('host', 'localhost')
    return ('tcp', 'loopback' if host in LOOPBACK else host, int(options.get('port', 6379)), db)


def check_script(app_configs, **kwargs):
    """Templates ask for ``js/ws4redis.js``: some static files finder must have it."""
    if not apps.is_installed('django.contrib.staticfiles'):
        return []
    from django.contrib.staticfiles import finders
    if finders.find(SCRIPT):
        return []
    if static_root() is None:
        hint = ('pip install django-websocket-redis==0.6.0: its ws4redis.js is served as it '
                'is (its Python code is not used).')
    else:
        hint = "add 'extensions.ws4redis.finders.UpstreamFinder' to STATICFILES_FINDERS."
    return [checks.Warning('No static files finder has %s.' % SCRIPT, hint=hint,
                           id=ID % 'W003')]


def check_subscriber(app_configs, **kwargs):
    """A custom WS4REDIS_SUBSCRIBER would be ignored: say so rather than ignore it."""
    if conf.subscriber() == conf.UPSTREAM_SUBSCRIBER:
        return []
    return [checks.Error(
        'WS4REDIS_SUBSCRIBER = %r is not supported.' % conf.subscriber(),
        hint='A ws4redis subscriber class works on a Redis pub/sub connection of its own per '
             'websocket; superserver has one per process. Move its channel choices to '
             'WS4REDIS_ALLOWED_CHANNELS or WS4REDIS_PROCESS_REQUEST, or write a superserver '
             'view (docs/ws4redis.md), and remove the setting.', id=ID % 'E004')]


def check_hooks(app_configs, **kwargs):
    """WS4REDIS_ALLOWED_CHANNELS and WS4REDIS_PROCESS_REQUEST must name callables."""
    errors = []
    for name in ('WS4REDIS_ALLOWED_CHANNELS', 'WS4REDIS_PROCESS_REQUEST'):
        try:
            hook = conf.hook(name)
        except ImportError as error:
            errors.append(checks.Error('%s cannot be imported: %s' % (name, error),
                                       id=ID % 'E005'))
            continue
        if hook is not None and not callable(hook):
            errors.append(checks.Error('%s is %r, which is not callable.' % (name, hook),
                                       id=ID % 'E005'))
    return errors


def register():
    for check in (check_broker, check_script, check_subscriber, check_hooks):
        checks.register(check)
