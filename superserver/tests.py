"""Tests of the demo's chat, written with superserver's test client (the README's
example): ``./manage.py test superserver``."""
from django.contrib.auth.models import User
from django.test import TestCase

from extensions.testing import Client


class ChatTests(TestCase):
    client_class = Client   # Django's test client, with websocket()

    @classmethod
    def setUpTestData(cls):
        cls.alice = User.objects.create_user('alice')
        cls.bob = User.objects.create_user('bob')

    def test_members_of_a_room_hear_each_other(self):
        self.client.force_login(self.alice)
        bob = Client()
        bob.force_login(self.bob)
        with self.client.websocket('/ws/chat/lobby/') as alice_socket:
            self.assertEqual(alice_socket.receive_json(), {'kind': 'join', 'user': 'alice'})
            with bob.websocket('/ws/chat/lobby/') as bob_socket:
                self.assertEqual(alice_socket.receive_json(), {'kind': 'join', 'user': 'bob'})
                bob_socket.send('hello, alice')
                self.assertEqual(alice_socket.receive_json(),
                                 {'kind': 'message', 'user': 'bob', 'text': 'hello, alice'})
            self.assertEqual(alice_socket.receive_json(), {'kind': 'leave', 'user': 'bob'})

    def test_rooms_are_separate(self):
        self.client.force_login(self.alice)
        with self.client.websocket('/ws/chat/lobby/') as lobby, \
                self.client.websocket('/ws/chat/garden/') as garden:
            lobby.receive_json()   # her own join notices
            garden.receive_json()
            garden.send('only the garden hears this')
            self.assertEqual(garden.receive_json()['text'], 'only the garden hears this')
            lobby.assert_no_message()

    def test_anonymous_visitors_are_sent_to_the_login_page(self):
        ws = self.client.websocket('/ws/chat/lobby/')
        self.assertEqual(ws.response.status_code, 302)
        self.assertEqual(ws.response['Location'], '/accounts/login/?next=/ws/chat/lobby/')
