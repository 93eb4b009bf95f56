"""The Django project the tests serve: production-like (DEBUG off, persistent DB connections).

SQLite by default. ``SUPERSERVER_TEST_POSTGRES=host:port:name`` switches to PostgreSQL
(tests/test_postgres.py) with Django's defaults; ``SUPERSERVER_TEST_DB_POOL=N`` adds
Django's connection pool, at most N connections (psycopg 3 only).
"""
import os

import django

SECRET_KEY = 'tests-only'
DEBUG = os.environ.get('SUPERSERVER_TEST_DEBUG') == '1'
ALLOWED_HOSTS = ['127.0.0.1', 'localhost', 'allowed-host.example']
CSRF_TRUSTED_ORIGINS = ['https://trusted.example', 'https://*.wild.example']
SUPERSERVER_ALLOWED_ORIGINS = ['http://allowed.example']
SUPERSERVER_BROKER = os.environ.get('SUPERSERVER_TEST_BROKER', 'memory://')
SUPERSERVER_PRESENCE_TIMEOUT = float(os.environ.get('SUPERSERVER_TEST_PRESENCE_TIMEOUT', 15))
# History and recovery (tests/test_history.py): group:history-* rooms keep plenty,
# group:short-* rooms only their last 5 messages.
SUPERSERVER_CHANNEL_HISTORY = {
    'group:history-*': {'size': 2000, 'ttl': 600},
    'group:short-*': {'size': 5},
}
SUPERSERVER_GRACEFUL_TIMEOUT = float(os.environ.get('SUPERSERVER_TEST_GRACEFUL_TIMEOUT', 30))
SUPERSERVER_DATABASE_CONNECTIONS = int(os.environ.get('SUPERSERVER_TEST_DATABASE_CONNECTIONS', 10))
# Behind nginx (tests/test_nginx.py): SUPERSERVER_TEST_TRUSTED_PROXIES=127.0.0.1.
SUPERSERVER_TRUSTED_PROXIES = [proxy for proxy in
                               os.environ.get('SUPERSERVER_TEST_TRUSTED_PROXIES', '').split(',')
                               if proxy]

INSTALLED_APPS = [
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'extensions',
]
MIDDLEWARE = [
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
]
# tests/test_async.py: an async-only middleware, which Django runs through asgiref.
if os.environ.get('SUPERSERVER_TEST_ASYNC_MIDDLEWARE') == '1':
    MIDDLEWARE.append('tests.project.async_views.AsyncMiddleware')
ROOT_URLCONF = 'tests.project.urls'
TEMPLATES = [{'BACKEND': 'django.template.backends.django.DjangoTemplates', 'APP_DIRS': True,
              'DIRS': [os.path.join(os.path.dirname(__file__), 'templates')]}]
# tests/test_django_features.py: Django 6.0's Content Security Policy, with a nonce for
# inline scripts; ignored before 6.0, which has neither the middleware nor the setting.
if os.environ.get('SUPERSERVER_TEST_CSP') == '1' and django.VERSION >= (6, 0):
    from django.utils.csp import CSP
    MIDDLEWARE.append('django.middleware.csp.ContentSecurityPolicyMiddleware')
    TEMPLATES[0]['OPTIONS'] = {'context_processors': ['django.template.context_processors.csp']}
    SECURE_CSP = {'default-src': [CSP.SELF], 'script-src': [CSP.SELF, CSP.NONCE],
                  'connect-src': [CSP.SELF]}
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ.get('SUPERSERVER_TEST_DATABASE', ':memory:'),
        # Persistent connections, as in production: only superserver closes a
        # websocket view's connection when the view ends.
        'CONN_MAX_AGE': 600,
    }
}

if os.environ.get('SUPERSERVER_TEST_POSTGRES'):
    _host, _port, _name = os.environ['SUPERSERVER_TEST_POSTGRES'].split(':')
    # CONN_MAX_AGE left at Django's default (0), as an untuned project has it.
    DATABASES['default'] = {'ENGINE': 'django.db.backends.postgresql', 'HOST': _host,
                            'PORT': _port, 'NAME': _name, 'USER': 'postgres'}
    if os.environ.get('SUPERSERVER_TEST_DB_POOL'):
        DATABASES['default']['OPTIONS'] = {
            'pool': {'min_size': 1, 'max_size': int(os.environ['SUPERSERVER_TEST_DB_POOL'])}}

USE_TZ = True
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
LOGIN_URL = '/accounts/login/'
STATIC_URL = 'static/'   # Django's live server (extensions.testing) serves static files

# Errors on the console, as a deployed project would send them to its logs.
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'console': {'class': 'logging.StreamHandler'}},
    'loggers': {
        'django.request': {'handlers': ['console'], 'level': 'ERROR'},
        # What the test views say they are doing, for the tests to wait for.
        'tests.project': {'handlers': ['console'], 'level': 'INFO'},
    },
}
