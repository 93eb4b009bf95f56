"""nginx in front of the servers the tests run, configured as the deployment guide says.

``guide_block`` reads a fenced block of docs/deployment.md. ``NginxProcess`` runs the
guide's nginx block as a reader would copy it, inside a minimal nginx.conf of its own
(no daemon; pid, logs and temporary files in the test's directory), with only what a
reader replaces anyway replaced: the upstream (gunicorn's ``127.0.0.1:8000``), ``listen
80;`` and, for TLS, the guide's certificate paths. A block whose shape changed (one of
those lines missing or doubled) fails loudly instead of testing something else.
"""
import grp
import os
import pwd
import re
import shutil
import socket
import time

import pytest

from .server_process import ROOT, Process, free_port

GUIDE = ROOT / 'docs' / 'deployment.md'
NGINX = shutil.which('nginx') or '/usr/sbin/nginx'   # /usr/sbin is not on every PATH

#: First lines of the guide's nginx blocks: the site, and the lines that make it TLS.
SITE_BLOCK = '# /etc/nginx/conf.d/'
TLS_BLOCK = '# TLS'


def require_nginx():
    """Skip where nginx is not installed; never in CI, where these tests must run."""
    if not os.path.exists(NGINX) and not os.environ.get('CI'):
        pytest.skip('nginx is not installed (apt-get install nginx)')


def guide_block(language, first_line):
    """The one block of the guide fenced as ```language that starts with ``first_line``."""
    blocks = re.findall(r'^```%s\n(.*?)^```$' % re.escape(language), GUIDE.read_text(),
                        re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if block.startswith(first_line)]
    if len(found) != 1:
        raise AssertionError('%s has %d ```%s blocks starting with %r, not one'
                             % (GUIDE, len(found), language, first_line))
    return found[0]


def _replace_one(text, pattern, replacement):
    """``text`` with the one line matching ``pattern`` replaced; AssertionError if there
    is not exactly one."""
    result, count = re.subn(r'^[ \t]*%s[ \t]*$' % pattern, lambda _: replacement, text,
                            flags=re.MULTILINE)
    if count != 1:
        raise AssertionError('the guide\'s nginx configuration has %d lines matching %r, '
                             'not one: update tests/nginx.py to its new shape:\n%s'
                             % (count, pattern, text))
    return result


def site_config(upstream_port, port, certificate=None, key=None):
    """The guide's site block, to listen on 127.0.0.1:``port`` (TLS with ``certificate``
    and ``key``, as the guide's TLS lines say) and pass requests to ``upstream_port``."""
    site = _replace_one(guide_block('nginx', SITE_BLOCK), r'server 127\.0\.0\.1:8000;.*',
                        '    server 127.0.0.1:%d;' % upstream_port)
    if certificate is None:
        listen = '    listen 127.0.0.1:%d;' % port
    else:
        listen = guide_block('nginx', TLS_BLOCK)
        listen = _replace_one(listen, r'listen 443 ssl;', 'listen 127.0.0.1:%d ssl;' % port)
        listen = _replace_one(listen, r'ssl_certificate\s+\S+;', 'ssl_certificate %s;'
                              % certificate)
        listen = _replace_one(listen, r'ssl_certificate_key\s+\S+;', 'ssl_certificate_key %s;'
                              % key)
    return _replace_one(site, r'listen 80;', listen)


MAIN_CONFIG = """\
daemon off;
{user}
pid {directory}/nginx.pid;
error_log stderr notice;
events {{}}
http {{
    default_type application/octet-stream;
    access_log {directory}/access.log;
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;

{site}
}}
"""


class NginxProcess(Process):
    """nginx on a free loopback port with the guide's site block, in front of
    ``upstream_port``; its error log is in ``lines``."""

    def __init__(self, upstream_port, directory, certificate=None, key=None, timeout=10):
        self.port = free_port()
        self.url = '%s://127.0.0.1:%d' % ('http' if certificate is None else 'https', self.port)
        user = ''
        if os.geteuid() == 0:
            # Workers would switch to nobody, who cannot enter the test's private directory.
            user = 'user %s %s;' % (pwd.getpwuid(os.geteuid()).pw_name,
                                    grp.getgrgid(os.getegid()).gr_name)
        config = directory / 'nginx.conf'
        config.write_text(MAIN_CONFIG.format(
            user=user, directory=directory,
            site=site_config(upstream_port, self.port, certificate, key)))
        super().__init__([NGINX, '-p', str(directory), '-c', str(config)], cwd=directory)
        self._wait_until_listening(timeout)

    def _wait_until_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError('nginx does not listen on %d:\n%s' % (self.port, self.output()))
