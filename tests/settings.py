"""Settings for the test suite: the product's own settings, in demo mode unless told otherwise."""

import os

# Demo mode supplies the embedded secrets; CI still exercises production settings through
# subprocesses (tests/test_settings.py). Must run before the product settings are read.
os.environ.setdefault("DJANGO_DEBUG", "1")

from bff_project.settings import *  # noqa: F403
