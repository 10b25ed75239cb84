import logging.config
import os
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.db import connection

from kefu.core.log import logging_config, uvicorn_log_config
from kefu.core.public_address import served_url


class Command(BaseCommand):
    help = (
        "Prepare the database (migrate; demo data on first run) and serve Kefu with a background"
        " worker. The terminal shows the address, the logins and errors; the server's and the"
        " worker's log goes to var/log/kefu.log (KEFU_LOG_FILE)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SERVE_HOST)
        parser.add_argument("--port", type=int, default=settings.SERVE_PORT)
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

    def _serve_here(self, host: str, port: int) -> Path:
        """Make this process and the ones it starts agree on the address and the log file."""
        os.environ["KEFU_HOST"], os.environ["KEFU_PORT"] = host, str(port)
        settings.SERVE_HOST, settings.SERVE_PORT = host, port
        settings.SERVED_URL = served_url(host, port)
        if not os.environ.get("KEFU_BASE_URL", "").strip():
            settings.BASE_URL = settings.SERVED_URL  # links point where this server answers
        log_file = Path(settings.LOG_FILE or settings.VAR_DIR / "log" / "kefu.log")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        os.environ["KEFU_LOG_FILE"] = settings.LOG_FILE = str(log_file)
        # Also kept in the settings: loading the ASGI application sets logging up again.
        settings.LOGGING = logging_config(
            log_file=str(log_file), level=os.environ.get("KEFU_LOG_LEVEL", "INFO")
        )
        logging.config.dictConfig(settings.LOGGING)
        return log_file

    def _watch(self, worker: subprocess.Popen, log_file: Path, stopping: threading.Event) -> None:
        """Say so on the terminal when the background worker ends before the server does: its
        own output is in the log file, where nobody would see it."""
        code = worker.wait()
        # Ctrl-C reaches the worker and the server together: give the server time to stop too.
        if not stopping.wait(timeout=5):
            self.stderr.write(
                f"The background worker stopped (exit code {code}): tasks wait until Kefu is"
                f" restarted. See {log_file}."
            )

    def handle(self, *args, host, port, no_demo, no_worker, workers, **options):
        import uvicorn

        if workers <= 0:
            workers = min(os.cpu_count() or 1, 4) if settings.REDIS_URL else 1
        log_file = self._serve_here(host, port)

        call_command("compiletranslations", verbosity=0)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        if "demo" in get_commands():
            # The demo app, when installed, loads itself into a database without users
            # (`kefu demo --first-run`); it shows its logins when they are there.
            call_command("demo", **({"logins": True} if no_demo else {"first_run": True}))
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA optimize")  # fresh planner statistics for the indexes
        connection.close()
        db = settings.DATABASES["default"]
        self.stdout.write(f"Database: {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        worker = None
        if not no_worker:
            # The background worker and scheduler (`kefu worker`), stopped with the server; its
            # output goes to the log file.
            with log_file.open("ab") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "django", "worker"],
                    env={**os.environ, "DJANGO_SETTINGS_MODULE": "kefu.settings"},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        self.stdout.write(f"Log: {log_file} (web server{', background worker' if worker else ''})")
        if settings.BASE_URL != settings.SERVED_URL:
            self.stdout.write(f"Links for customers and in e-mails: {settings.BASE_URL}/")
        self.stdout.write(f"Kefu is at {settings.SERVED_URL}/  (Ctrl-C stops it)")
        self.stdout.flush()
        stopping = threading.Event()
        if worker is not None:
            threading.Thread(
                target=self._watch, args=(worker, log_file, stopping), daemon=True
            ).start()
        try:
            uvicorn.run(
                "kefu.asgi:application",
                host=host,
                port=port,
                workers=workers,
                log_config=uvicorn_log_config(log_file=str(log_file)),
                log_level="info",
                lifespan="off",
            )
        finally:
            stopping.set()
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
