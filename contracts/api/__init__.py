"""The registry over HTTP: ``/registry/api/v1/``, its tokens, and its notifications."""
