#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bff_project.settings")
    # `contracts check|propose|export --registry URL` is a client of a remote registry: it
    # runs in CI with no database and none of the server's secrets (see settings.py).
    if sys.argv[1:2] == ["contracts"] and any(
        arg == "--registry" or arg.startswith("--registry=") for arg in sys.argv[2:]
    ):
        os.environ["BFF_REGISTRY_CLIENT"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
