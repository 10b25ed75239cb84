"""The `kefu` command: `kefu run`, `kefu demo`, `kefu backup`, ... are Django management commands."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kefu.settings")
    from django.core.management import execute_from_command_line

    if len(sys.argv) < 2:
        sys.argv.append("help")
    execute_from_command_line(["kefu", *sys.argv[1:]])
