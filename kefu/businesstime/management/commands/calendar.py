from django.core.management.base import BaseCommand

from kefu.businesstime.services import calendar_seed_official


class Command(BaseCommand):
    help = "Copy public holidays and make-up workdays from chinese-calendar (manual entries kept)."

    def add_arguments(self, parser):
        parser.add_argument("years", nargs="*", type=int, help="only these years (default: all)")

    def handle(self, *args, years, **options):
        written = calendar_seed_official(years=years or None)
        self.stdout.write(f"{written} calendar days written.")
