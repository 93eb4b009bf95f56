"""./manage.py superserver: Django's runserver, on superserver, with websockets."""
import re

from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands.runserver import naiveip_re

from extensions import devserver

DEFAULT_ADDR, DEFAULT_PORT = '127.0.0.1', 8000


class Command(BaseCommand):
    help = 'Start the superserver development server: HTTP and websockets, one process.'
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument('addrport', nargs='?',
                            help='port, or ipaddr:port (default %s:%d)'
                                 % (DEFAULT_ADDR, DEFAULT_PORT))
        parser.add_argument('--noreload', action='store_false', dest='use_reloader',
                            help='do not restart when code changes')
        parser.add_argument('--nodebugger', action='store_false', dest='use_debugger',
                            help='no Werkzeug debugger for exceptions in plain views')
        parser.add_argument('--noevalex', action='store_false', dest='use_evalex',
                            help='debugger without its interactive console')

    def handle(self, *args, addrport=None, **options):
        addr, port = parse_addrport(addrport)
        devserver.run(addr, port, use_reloader=options['use_reloader'],
                      use_debugger=options['use_debugger'], use_evalex=options['use_evalex'],
                      stdout=self.stdout)


def parse_addrport(addrport):
    """('127.0.0.1', 8000) from '', '8000', '0:8000' or '[::1]:8000', as runserver reads them."""
    if not addrport:
        return DEFAULT_ADDR, DEFAULT_PORT
    match = re.match(naiveip_re, addrport)
    if match is None:
        raise CommandError('"%s" is not a valid port number or address:port pair.' % addrport)
    addr, ipv4, ipv6, fqdn, port = match.groups()
    if ipv6:
        addr = addr[1:-1]
    elif addr == '0':
        addr = '0.0.0.0'
    return addr or DEFAULT_ADDR, int(port)
