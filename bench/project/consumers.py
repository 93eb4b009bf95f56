"""The Channels consumers: the peers of the superserver views in views.py."""
from channels.generic.websocket import AsyncWebsocketConsumer

GROUP = 'broadcast'


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=text_data, bytes_data=bytes_data)


class Broadcast(AsyncWebsocketConsumer):
    """What one client sends goes to every client, by ``group_send``."""

    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        await self.channel_layer.group_send(
            GROUP, {'type': 'broadcast.message', 'text': text_data, 'bytes': bytes_data})

    async def broadcast_message(self, event):
        await self.send(text_data=event['text'], bytes_data=event['bytes'])
