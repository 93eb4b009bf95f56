"""Presence: views of the tests of extensions.presence."""
urlpatterns = []
