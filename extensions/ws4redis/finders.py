"""Serve ws4redis.js from the installed django-websocket-redis, unchanged.

The browser side of a ws4redis project stays as it is: ``{% static 'js/ws4redis.js' %}``.
The file is ws4redis's (MIT), not ours to copy, so it is served from where pip put it:
add the finder after Django's own::

    STATICFILES_FINDERS = [
        'django.contrib.staticfiles.finders.FileSystemFinder',
        'django.contrib.staticfiles.finders.AppDirectoriesFinder',
        'extensions.ws4redis.finders.UpstreamFinder',
    ]

and keep ``django-websocket-redis`` installed (its package is found, never imported).
``collectstatic`` collects it like any other file.
"""
import importlib.util
from pathlib import Path

from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.utils import get_files
from django.core.files.storage import FileSystemStorage

__all__ = ['UpstreamFinder', 'static_root']

#: ws4redis's client script, as templates name it.
SCRIPT = 'js/ws4redis.js'


def static_root():
    """The static directory of the installed ws4redis package, or None."""
    spec = importlib.util.find_spec('ws4redis')   # finds the package, runs none of it
    for location in (spec and spec.submodule_search_locations) or ():
        root = Path(location) / 'static'
        if (root / SCRIPT).is_file():
            return root
    return None


class UpstreamFinder(BaseFinder):
    """The static files of the installed django-websocket-redis (``js/ws4redis.js``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        root = static_root()
        self.storage = FileSystemStorage(location=root) if root else None

    def find(self, path, find_all=False, **kwargs):
        find_all = find_all or kwargs.get('all', False)   # 'all': before Django 5.2
        match = self.storage.path(path) if self.storage and self.storage.exists(path) else None
        if find_all:
            return [match] if match else []
        return match

    def list(self, ignore_patterns):
        if self.storage is not None:
            for path in get_files(self.storage, ignore_patterns):
                yield path, self.storage
