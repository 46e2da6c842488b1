"""Settings for the test suite: the product's own settings, in demo mode unless told otherwise."""

import os

# Demo mode supplies the embedded secrets; CI still exercises production settings through
# subprocesses (tests/test_settings.py). Must run before the product settings are read.
os.environ.setdefault("DJANGO_DEBUG", "1")

from bff_project.settings import *  # noqa: F403

# The demo seed hashes five passwords per test that uses it; the default hasher is
# deliberately slow, which only costs time here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test client's login() authenticates without a request, which django-axes refuses;
# the lockout itself is tested with AXES_ENABLED switched back on (test_admin_login.py).
AXES_ENABLED = False
