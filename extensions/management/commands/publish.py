"""./manage.py publish CHANNEL MESSAGE: publish from outside the server (a script, cron)."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from extensions.pubsub import MemoryBroker, PublishError, get_broker, publish


class Command(BaseCommand):
    help = 'Publish a message on a channel, to every subscriber in every server process.'

    def add_arguments(self, parser):
        parser.add_argument('channel')
        parser.add_argument('message')

    def handle(self, channel, message, **options):
        if isinstance(get_broker(), MemoryBroker):
            raise CommandError('SUPERSERVER_BROKER is %s, which reaches this process only: '
                               'set it to a redis:// URL to publish to the servers'
                               % getattr(settings, 'SUPERSERVER_BROKER', 'memory://'))
        try:
            publish(channel, message)
        except PublishError as error:
            raise CommandError(str(error)) from None
