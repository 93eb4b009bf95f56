"""Tests of the demo's chat, written with superserver's test client (the README's
example): ``./manage.py test superserver``."""
import json

from django.contrib.auth.models import User
from django.test import TestCase

from extensions.testing import Client


def receive(ws):
    """The chat socket's next frame: ``('said', user, text, position)``, a presence event
    ``('join' | 'leave', member)``, ``('members', {member: connections})`` or
    ``('reset',)``."""
    frame = ws.receive_json()
    if frame.get('kind') == 'members':
        return 'members', frame['members']
    if frame.get('reset'):
        return ('reset',)
    data = json.loads(frame['data'])
    if frame['position'] is None:   # from the room's presence channel
        return data['event'], data['member']
    return 'said', data['user'], data['text'], frame['position']


def said(ws, count):
    """The next ``count`` things said in the room, as (user, text, position), past the
    presence frames."""
    lines = []
    for _ in range(count + 10):
        if len(lines) == count:
            return lines
        frame = receive(ws)
        if frame[0] == 'said':
            lines.append(frame[1:])
    raise AssertionError('only %d of %d messages came: %r' % (len(lines), count, lines))


class ChatTests(TestCase):
    client_class = Client   # Django's test client, with websocket()

    @classmethod
    def setUpTestData(cls):
        cls.alice = User.objects.create_user('alice')
        cls.bob = User.objects.create_user('bob')

    def test_members_of_a_room_hear_each_other_and_see_who_comes_and_goes(self):
        self.client.force_login(self.alice)
        bob = Client()
        bob.force_login(self.bob)
        with self.client.websocket('/ws/chat/lobby/') as alice_socket:
            self.assertEqual(receive(alice_socket), ('join', 'alice'))
            self.assertEqual(receive(alice_socket), ('members', {'alice': 1}))
            with bob.websocket('/ws/chat/lobby/') as bob_socket:
                self.assertEqual(receive(alice_socket), ('join', 'bob'))
                bob_socket.send('hello, alice')
                self.assertEqual(receive(alice_socket)[:3], ('said', 'bob', 'hello, alice'))
            self.assertEqual(receive(alice_socket), ('leave', 'bob'))

    def test_who_comes_back_gets_what_was_said_meanwhile_and_a_reload_gets_it_all(self):
        self.client.force_login(self.alice)
        with self.client.websocket('/ws/chat/garden/') as alice_socket:
            alice_socket.send('before')
            (_, _, position), = said(alice_socket, 1)
            alice_socket.send('after 1')
            alice_socket.send('after 2')
            self.assertEqual([text for _, text, _ in said(alice_socket, 2)],
                             ['after 1', 'after 2'])
        with self.client.websocket('/ws/chat/garden/', query_params={'since': position}) as ws:
            self.assertEqual([text for _, text, _ in said(ws, 2)], ['after 1', 'after 2'])
        with self.client.websocket('/ws/chat/garden/') as ws:   # no position: all kept
            self.assertEqual([text for _, text, _ in said(ws, 3)],
                             ['before', 'after 1', 'after 2'])

    def test_a_position_the_room_cannot_recover_from_is_reset(self):
        self.client.force_login(self.alice)
        with self.client.websocket('/ws/chat/pond/', query_params={'since': '1-1'}) as ws:
            self.assertEqual(receive(ws), ('reset',))

    def test_rooms_are_separate(self):
        self.client.force_login(self.alice)
        with self.client.websocket('/ws/chat/hall/') as hall, \
                self.client.websocket('/ws/chat/attic/') as attic:
            attic.send('only the attic hears this')
            self.assertEqual(said(attic, 1)[0][1], 'only the attic hears this')
            self.assertEqual([receive(hall) for _ in range(2)],
                             [('join', 'alice'), ('members', {'alice': 1})])
            hall.assert_no_message()

    def test_anonymous_visitors_are_refused(self):
        ws = self.client.websocket('/ws/chat/lobby/')
        self.assertEqual(ws.response.status_code, 403)   # not a redirect it cannot follow
