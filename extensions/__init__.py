"""superserver: Django views that handle websockets, served by gevent."""
from .offload import offload

__all__ = ['offload']
