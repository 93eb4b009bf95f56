import logging

from django.apps import AppConfig

from .exceptions import ConnectionClosed
from .hashers import offload_password_hashers


def _not_a_closed_websocket(record):
    """A client that went away while its view sent is not a server error."""
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionClosed))


class SuperserverConfig(AppConfig):
    name = 'extensions'
    verbose_name = 'superserver'

    def ready(self):
        logging.getLogger('django.request').addFilter(_not_a_closed_websocket)
        offload_password_hashers()   # a login must not stall every socket for 0.5 s
