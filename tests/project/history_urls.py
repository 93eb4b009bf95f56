"""History and recovery: views of the tests of extensions.pubsub history."""
urlpatterns = []
