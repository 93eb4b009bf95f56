from django.apps import AppConfig


class Ws4RedisConfig(AppConfig):
    """Labelled apart from ws4redis's own app, which may stay installed while migrating."""

    name = 'extensions.ws4redis'
    label = 'superserver_ws4redis'
    verbose_name = 'superserver for django-websocket-redis'

    def ready(self):
        from . import checks, membership
        checks.register()
        membership.connect()
