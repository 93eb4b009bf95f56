"""
WSGI config for the test project, as Django's startproject writes it: no gevent_specific,
no superserver import. The gunicorn worker must serve it as it is.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tests.project.settings')

application = get_wsgi_application()
