import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kefu.conversations.mail import smtp_controller


class Command(BaseCommand):
    help = (
        "Receive e-mail for the e-mail channels: an SMTP server that takes mail addressed to an "
        "active e-mail channel's mailbox (Channel settings 'address') and refuses the rest. "
        "Point the domain's MX record, or a forwarding rule of the mail provider, at it. "
        "Environment: KEFU_SMTP_LISTEN_HOST (default 127.0.0.1), KEFU_SMTP_LISTEN_PORT "
        "(default 2525), KEFU_INBOUND_MAIL_MAX_BYTES (default 25 MiB; larger mail gets 552). "
        "Mailboxes read over IMAP instead are polled by `kefu worker` every "
        "KEFU_IMAP_POLL_MINUTES (default 2)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=settings.SMTP_LISTEN_HOST,
            help="Interface to listen on (KEFU_SMTP_LISTEN_HOST; 0.0.0.0 for every one).",
        )
        parser.add_argument(
            "--port",
            type=int,
            default=settings.SMTP_LISTEN_PORT,
            help="Port to listen on (KEFU_SMTP_LISTEN_PORT).",
        )

    def handle(self, *args, host, port, **options):
        controller = smtp_controller(host, port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_args: stop.set())
        try:
            controller.start()
        except Exception as exc:  # the port is taken, the address is not ours...
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
        self.stdout.write(
            f"Receiving mail for the e-mail channels on {host}:{port}  (Ctrl-C stops it)"
        )
        try:
            stop.wait()
        finally:
            controller.stop()
            self.stdout.write("SMTP listener stopped.")
