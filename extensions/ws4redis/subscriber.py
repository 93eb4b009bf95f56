"""What a websocket asks for in its query string, and the channels that makes.

``/ws/{facility}?subscribe-broadcast&publish-user&echo``: each key, stripped and
lower-cased as ws4redis does, is one of ``SUBSCRIBE`` or ``PUBLISH`` (kept, in the
client's order) or ``echo``; anything else is ignored, as ws4redis ignored it.
"""
from .redis_store import SELF, message_channels

SUBSCRIBE = ('subscribe-session', 'subscribe-group', 'subscribe-user', 'subscribe-broadcast')
PUBLISH = ('publish-session', 'publish-group', 'publish-user', 'publish-broadcast')
ECHO = 'echo'


def requested(query_keys):
    """(the audience keys asked for, whether ``echo`` was) of a query string's keys."""
    keys, echo = [], False
    for key in query_keys:
        key = key.strip().lower()
        if key in SUBSCRIBE or key in PUBLISH:
            keys.append(key)
        elif key == ECHO:
            echo = True
    return keys, echo


def channels(request, facility, keys, action):
    """The channel names of ``facility`` that ``keys`` ask to ``action`` ('subscribe' or
    'publish'), the request being ``SELF``."""
    def asked(audience):
        return '%s-%s' % (action, audience) in keys
    return message_channels(request, facility,
                            broadcast=asked('broadcast'),
                            groups=[SELF] if asked('group') else [],
                            users=[SELF] if asked('user') else [],
                            sessions=[SELF] if asked('session') else [])
