"""./manage.py superserver: Django's runserver, on superserver, with websockets.

The command parses options, runs the system checks and hands over to
``extensions.devserver``; it reads no settings at import time.

Run from a ``manage.py`` that did not import ``gevent_specific`` first, it runs itself
again under ``python -m gevent_specific`` (``reexec_patched``), which patches the
standard library before anything else is imported: serving unpatched would let every
blocking call stall every connection.
"""
import os
import re
import sys

from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands.runserver import naiveip_re
from django.db import connections
from django.utils import autoreload
from gevent import monkey

from extensions import devserver

DEFAULT_ADDR, DEFAULT_ADDR_IPV6, DEFAULT_PORT = '127.0.0.1', '::1', 8000

#: The pid of a process that re-executed itself patched: exec keeps the pid, so the new
#: program sees that it was tried already, and a reloader's child (another pid) does not.
REEXEC_ENV = 'SUPERSERVER_REEXEC'

NOT_PATCHED = (
    'superserver: the standard library is not patched for gevent. Add\n'
    '    import gevent_specific  # first, before anything else\n'
    'as the first line of manage.py (and wsgi.py). Without it, blocking calls stall every\n'
    'connection and greenlets share thread-locals, database connections among them.\n')

REEXEC_DID_NOT_HELP = (
    'superserver: the standard library is still not patched for gevent after running\n'
    'again under "python -m gevent_specific" (is another module of that name first on\n'
    'sys.path?). Serving unpatched: blocking calls stall every connection.\n')


class Command(BaseCommand):
    help = ('Start the superserver development server: HTTP and websockets in one process, '
            'with autoreload, static files and the Werkzeug debugger.')
    requires_system_checks = []   # run in the serving process, after the reloader starts
    from_command_line = False     # call_command() has no command line to run again

    def run_from_argv(self, argv):
        self.from_command_line = True
        super().run_from_argv(argv)

    def add_arguments(self, parser):
        parser.add_argument('addrport', nargs='?',
                            help='port, or ipaddr:port (default %s:%d)'
                                 % (DEFAULT_ADDR, DEFAULT_PORT))
        parser.add_argument('--ipv6', '-6', action='store_true', dest='use_ipv6',
                            help='use an IPv6 address')
        parser.add_argument('--noreload', action='store_false', dest='use_reloader',
                            help='do not restart when code changes')
        parser.add_argument('--nostatic', action='store_false', dest='use_static',
                            help='do not serve static files')
        parser.add_argument('--insecure', action='store_true',
                            help='serve static files even with DEBUG off')
        parser.add_argument('--skip-checks', action='store_true', help='skip system checks')
        parser.add_argument('--nodebugger', action='store_false', dest='use_debugger',
                            help='no Werkzeug debugger for exceptions in plain views')
        parser.add_argument('--noevalex', action='store_false', dest='use_evalex',
                            help='debugger without its interactive console')
        parser.add_argument('--cert-file', help='TLS certificate (created, self-signed, '
                                                'if the file does not exist)')
        parser.add_argument('--key-file', help='TLS private key (default: beside the cert)')
        parser.add_argument('--block-threshold', type=int, default=100, metavar='MS',
                            help='report code that blocks the event loop longer (default 100)')
        parser.add_argument('--noblockcheck', action='store_true',
                            help='do not report code that blocks the event loop')

    def handle(self, *args, addrport=None, **options):
        addr, port = parse_addrport(addrport, options['use_ipv6'])
        if options['block_threshold'] <= 0:
            raise CommandError('--block-threshold must be a positive number of milliseconds.')
        if not monkey.is_module_patched('socket'):
            self.patch_or_warn(options['use_reloader'])
        devserver.run(
            addr, port, use_reloader=options['use_reloader'],
            use_debugger=options['use_debugger'], use_evalex=options['use_evalex'],
            use_static=options['use_static'], insecure=options['insecure'],
            cert_file=options['cert_file'], key_file=options['key_file'],
            block_threshold=None if options['noblockcheck'] else options['block_threshold'] / 1000,
            before_serving=None if options['skip_checks'] else self.check_project,
            stdout=self.stdout)

    def patch_or_warn(self, use_reloader):
        """Re-execute patched where this process will serve and has a command line."""
        if use_reloader and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != 'true':
            return   # the reloader's parent only starts children, which see to it themselves
        if not self.from_command_line:
            self.stderr.write(NOT_PATCHED)
        elif not reexec_patched():
            self.stderr.write(REEXEC_DID_NOT_HELP)

    def check_project(self):
        """runserver's checks: system checks, then a warning about unapplied migrations."""
        self.stdout.write('Performing system checks...\n\n')
        self.check(display_num_errors=True)
        self.check_migrations()
        connections.close_all()


def reexec_patched():
    """Run this command again, in this process, under ``python -m gevent_specific``.

    Does not return, except with False in the program that this already replaced: exec
    keeps the pid, which ``REEXEC_ENV`` holds. The command line is the one Django's
    autoreloader restarts (``python manage.py``, ``python -m django`` or ``django-admin``,
    after the interpreter's ``-W`` and ``-X`` options), with the runner put before it.
    """
    pid = str(os.getpid())
    if os.environ.get(REEXEC_ENV) == pid:
        return False
    os.environ[REEXEC_ENV] = pid
    arguments = autoreload.get_child_arguments()
    options = 1 + len(sys.warnoptions) + len(sys._xoptions)   # as get_child_arguments adds them
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable,
             [*arguments[:options], '-m', 'gevent_specific', *arguments[options:]])


def parse_addrport(addrport, use_ipv6=False):
    """(addr, port) from '', '8000', '0:8000', '[::1]:8000' or 'host:8000', as runserver."""
    default = DEFAULT_ADDR_IPV6 if use_ipv6 else DEFAULT_ADDR
    if not addrport:
        return default, DEFAULT_PORT
    match = re.match(naiveip_re, addrport)
    if match is None:
        raise CommandError('"%s" is not a valid port number or address:port pair.' % addrport)
    addr, ipv4, ipv6, fqdn, port = match.groups()
    if ipv6:
        addr = addr[1:-1]
    elif use_ipv6 and addr and not fqdn:
        raise CommandError('"%s" is not a valid IPv6 address.' % addr)
    elif addr == '0':
        addr = '0.0.0.0'
    return addr or default, int(port)
