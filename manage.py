#!/usr/bin/env python
"""Run the actrack demo site (settings in tests/demo/settings.py)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
