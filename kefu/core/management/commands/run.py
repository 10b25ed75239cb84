import os
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

from kefu.accounts.models import User
from kefu.demo import data as demo_data


class Command(BaseCommand):
    help = "Prepare the database (migrate; demo data on first run) and serve Kefu."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("KEFU_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("KEFU_PORT", "8000")))
        parser.add_argument(
            "--no-demo", action="store_true", help="Do not load demo data into an empty database."
        )
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not start a background worker."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("KEFU_WEB_WORKERS", "0")),
            help=(
                "Web server processes (KEFU_WEB_WORKERS). Default: one per core, at most 4, with"
                " Redis (KEFU_REDIS_URL); one without, since live chat then runs in one process."
            ),
        )

    def handle(self, *args, host, port, no_demo, no_worker, workers, **options):
        import uvicorn

        if workers <= 0:
            workers = min(os.cpu_count() or 1, 4) if settings.REDIS_URL else 1

        call_command("compiletranslations", verbosity=0)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        if not no_demo and not User.objects.exists():
            self.stdout.write("First run: loading the demo department (kefu demo)...")
            call_command("demo")
        elif User.objects.filter(username__in=demo_data.USERNAMES).exists():
            self.stdout.write(demo_data.LOGINS_HELP)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA optimize")  # fresh planner statistics for the indexes
        connection.close()
        db = settings.DATABASES["default"]
        self.stdout.write(f"Database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        self.stdout.write(f"Kefu is at http://{host}:{port}/  (Ctrl-C stops it)")
        worker = None
        if not no_worker:
            # The background worker and scheduler (`kefu worker`), stopped with the server.
            env = {**os.environ, "DJANGO_SETTINGS_MODULE": "kefu.settings"}
            worker = subprocess.Popen([sys.executable, "-m", "django", "worker"], env=env)
            self.stdout.write(f"Background worker started (pid {worker.pid}).")
        try:
            uvicorn.run(
                "kefu.asgi:application",
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                lifespan="off",
            )
        finally:
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
