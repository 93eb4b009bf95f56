"""./manage.py test, patched as the server runs.

Unpatched, Django runs async views and the async ORM in real threads, where they work,
and websocket views, the test client and the live server without gevent's cooperation:
tests would pass code that fails under ``./manage.py superserver`` and the gunicorn
worker. Run from a ``manage.py`` that did not import ``gevent_specific`` first, the
command runs itself again under ``python -m gevent_specific``, as ``superserver`` does.
"""
from django.core.management.commands.test import Command as DjangoTestCommand
from gevent import monkey

from .superserver import reexec_patched

STILL_NOT_PATCHED = (
    'test: the standard library is still not patched for gevent after running again under\n'
    '"python -m gevent_specific" (is another module of that name first on sys.path?).\n'
    'Testing unpatched: views are not run as superserver runs them.\n')


class Command(DjangoTestCommand):
    def run_from_argv(self, argv):
        # reexec_patched does not return, but in the program it already replaced.
        if not monkey.is_module_patched('socket') and not reexec_patched():
            self.stderr.write(STILL_NOT_PATCHED)
        super().run_from_argv(argv)
