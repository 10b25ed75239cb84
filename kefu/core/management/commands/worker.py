from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the background worker and scheduler (Huey on SQLite, or Redis with KEFU_REDIS_URL)."

    def handle(self, *args, **options):
        call_command("run_huey")
