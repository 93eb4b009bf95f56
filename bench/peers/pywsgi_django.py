"""The benchmark project's Django WSGI application on plain ``gevent.pywsgi.WSGIServer``,
the standard library patched first."""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from bench.project.wsgi import application  # noqa: E402

if __name__ == '__main__':
    WSGIServer(('127.0.0.1', int(sys.argv[1])), application).serve_forever()
