"""Async views through Django's test client and superserver's live server, run by
``manage.py test tests.project.async_checks`` (tests/test_async.py): patched, as served."""
import json
from urllib.request import urlopen

import gevent
from django.contrib.auth.models import User
from django.test import TestCase
from gevent import monkey

from extensions.testing import LiveServerTestCase


class TestClientTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        User.objects.create_user('bob')

    def test_the_tests_run_patched(self):
        self.assertTrue(monkey.is_module_patched('socket'))

    def test_the_async_orm_sees_the_tests_transaction(self):
        response = self.client.get('/async/users/')
        self.assertEqual(response.json(), {'count': 1, 'names': ['bob'], 'exists': True})

    async def test_the_async_client(self):
        response = await self.async_client.get('/async/calls/?n=4')
        self.assertEqual(response.json(), {'twice': 8, 'patched': True})


class LiveServerTests(LiveServerTestCase):
    def setUp(self):
        User.objects.create_user('carol')

    def get(self, path):
        with urlopen(self.live_server_url + path, timeout=30) as response:
            return json.load(response) if path.startswith('/async/users/') else response.read()

    def test_async_views_at_once(self):
        requests = [gevent.spawn(self.get, '/async/sleeps/?seconds=0.5') for _ in range(20)]
        requests += [gevent.spawn(self.get, '/async/users/') for _ in range(20)]
        gevent.joinall(requests, timeout=30, raise_error=True)
        self.assertEqual({request.value for request in requests[:20]}, {b'slept'})
        self.assertEqual([request.value['names'] for request in requests[20:]], [['carol']] * 20)
