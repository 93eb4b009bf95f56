"""ws4redis's message type, ``SELF`` and channel names, under the names publishers import.

A channel is ``{prefix}{audience}:{facility}``: ``broadcast:{facility}``,
``group:{name}:{facility}``, ``user:{username}:{facility}`` and
``session:{session_key}:{facility}``, with ``{prefix}`` the ``WS4REDIS_PREFIX`` and a
colon when it is set. These are ws4redis's names, so its publishers and superserver's
subscribers meet on the same Redis channels.
"""
import warnings

from . import conf
from .membership import MEMBEROF

__all__ = ['SELF', 'RedisMessage', 'message_channels', 'get_prefix']


class _Self:
    """In a list of users, groups or sessions: the request's own."""

    def __repr__(self):
        return 'SELF'


SELF = _Self()


class RedisMessage(bytes):
    """A message as Redis keeps it: the UTF-8 bytes of a ``str``, or ``bytes`` as they are.

    The heartbeat string (``WS4REDIS_HEARTBEAT``) is no message: ``RedisMessage`` of it is
    None, as in ws4redis, and ``publish_message`` refuses it.
    """

    def __new__(cls, value):
        beat = conf.heartbeat()
        if isinstance(value, str):
            if value != beat:
                return super().__new__(cls, value.encode('utf-8'))
        elif isinstance(value, (bytes, bytearray)):
            if beat is None or value != beat.encode('utf-8'):
                return super().__new__(cls, value)
        else:
            raise TypeError('a RedisMessage is made of str or bytes, not %s'
                            % type(value).__name__)
        return None


def get_prefix():
    """What every channel name starts with: ``'WS4REDIS_PREFIX:'``, or ``''``."""
    return conf.prefix()


def message_channels(request=None, facility='{facility}', broadcast=False, groups=(),
                     users=(), sessions=()):
    """The channel names of ``facility`` for these audiences, each once, in ws4redis's order
    (broadcast, groups, users, sessions).

    ``groups``, ``users`` and ``sessions`` are lists or tuples of names, group names and
    session keys, in which ``SELF`` stands for the request's own: its user's name, the
    groups stored in its session at login, its session key. ``SELF`` names nothing for
    an anonymous user or a request without a session. ``True`` (deprecated, as in
    ws4redis) means ``[SELF]``.
    """
    audiences = (('group', groups, _own_groups), ('user', users, _own_users),
                 ('session', sessions, _own_sessions))
    start = get_prefix()
    names = ['%sbroadcast:%s' % (start, facility)] if broadcast is True else []
    for audience, members, own in audiences:
        names.extend('%s%s:%s:%s' % (start, audience, member, facility)
                     for member in _expand(audience, members, own, request))
    return list(dict.fromkeys(names))


def _expand(audience, members, own, request):
    if members is True:
        warnings.warn('%ss=True is deprecated: write %ss=[SELF]' % (audience, audience),
                      DeprecationWarning, stacklevel=4)
        return own(request)
    if members is False:
        return []
    if not isinstance(members, (list, tuple)):
        raise ValueError('%ss must be a list or tuple (SELF for the request\'s own), not %r'
                         % (audience, members))
    expanded = []
    for member in members:
        expanded.extend(own(request) if member is SELF else [member])
    return expanded


def _authenticated(request):
    user = getattr(request, 'user', None)
    return user is not None and user.is_authenticated


def _own_users(request):
    return [request.user.get_username()] if _authenticated(request) else []


def _own_groups(request):
    return list(request.session.get(MEMBEROF, ())) if _authenticated(request) else []


def _own_sessions(request):
    key = getattr(getattr(request, 'session', None), 'session_key', None)
    return [key] if key else []
