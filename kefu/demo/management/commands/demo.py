import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from kefu.accounts.models import User
from kefu.customers.imports import customer_import_rows
from kefu.customers.models import Customer
from kefu.demo import care as demo_care
from kefu.demo import conversations as demo_conversations
from kefu.demo import data
from kefu.demo import tickets as demo_tickets
from kefu.tickets.models import Category

# Customers per import call, so a large --customers does not hold every row in memory at once.
CHUNK = 10_000


class Command(BaseCommand):
    help = (
        "Load the demo department: the customer service of a pharmacy chain with four stores, "
        "22 staff logins (password kefu-demo), generated customers and tickets of the last 60 "
        "days worked through the ticket workflow, chats and hotline calls of the last two weeks. "
        "Same seed, same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--customers", type=int, default=5000, help="How many customers (default 5000)."
        )
        parser.add_argument(
            "--tickets",
            type=int,
            default=None,
            help=(
                f"How many tickets (default one per 10 customers, at most "
                f"{demo_tickets.DEFAULT_TICKETS}); 0 loads neither tickets nor their settings, "
                "nor chats and calls."
            ),
        )
        parser.add_argument(
            "--categories",
            choices=sorted(set(demo_tickets.CATEGORY_SETS) - {"pharmacy"}),
            help=(
                "Load only the ticket categories of another example trade into this database "
                "(property: a property-management company's service desk) and stop."
            ),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Load into a database that already holds other users or customers.",
        )
        when = parser.add_mutually_exclusive_group()
        when.add_argument(
            "--first-run",
            action="store_true",
            help=(
                "What `kefu run` asks for: load the demo department only into a database without"
                " users; otherwise show the demo logins if they are there."
            ),
        )
        when.add_argument(
            "--logins",
            action="store_true",
            help="Only show the demo logins, if the demo department is loaded.",
        )

    def handle(
        self,
        *args,
        seed: int,
        customers: int,
        tickets: int | None,
        force: bool,
        categories: str | None = None,
        first_run: bool = False,
        logins: bool = False,
        **options,
    ):
        if first_run and not User.objects.exists():
            self.stdout.write("First run: loading the demo department (kefu demo)...")
        elif first_run or logins:
            if User.objects.filter(username__in=data.USERNAMES).exists():
                self.stdout.write(data.LOGINS_HELP)
            return
        if categories:
            tree = demo_tickets.CATEGORY_SETS[categories]
            before = Category.objects.count()
            with transaction.atomic():
                found = demo_tickets.categories_create(tree)
            self.stdout.write(
                f"Ticket categories of the {categories} example: {len(found)} "
                f"({Category.objects.count() - before} new), under "
                + ", ".join(name for name, _children in tree)
                + "."
            )
            return
        if customers < 0:
            raise CommandError("--customers cannot be negative.")
        if tickets is None:
            tickets = min(demo_tickets.DEFAULT_TICKETS, customers // 10)
        if tickets < 0:
            raise CommandError("--tickets cannot be negative.")
        taken = set(
            User.objects.filter(username__in=data.USERNAMES).values_list("username", flat=True)
        )
        if taken:
            first = next(u for u in data.USERNAMES if u in taken)
            raise CommandError(
                f"The demo department is already loaded (user {first!r} exists). "
                "Load it into an empty database, e.g. KEFU_VAR_DIR=$(mktemp -d) kefu demo."
            )
        users, existing = User.objects.count(), Customer.objects.count()
        if (users or existing) and not force:
            raise CommandError(
                f"This database already holds {users} users and {existing} customers. The demo "
                "adds logins with a published password; use --force to load it anyway."
            )
        started = time.monotonic()
        created = 0
        # One transaction: a refused row or an interruption leaves the database as it was.
        with transaction.atomic():
            data.department_create()
            for rows in data.customer_row_chunks(seed=seed, count=customers, size=CHUNK):
                result = customer_import_rows(
                    actor=None, rows=rows, commit=True, filename=f"kefu demo --seed {seed}"
                )
                if result.errors:
                    # Generated rows are all valid; if the import rules changed, load nothing.
                    raise CommandError(
                        f"{result.invalid} demo customers were refused by the import, e.g. "
                        + "; ".join(
                            f"{e.field}: {e.message} ({e.value})" for e in result.errors[:3]
                        )
                    )
                created += result.created
            if tickets and created:
                demo_tickets.tickets_load(seed=seed, count=tickets)
            else:
                tickets = 0
            chats: Counter[str] = Counter()
            if tickets:  # --tickets 0: the department and its customers alone, no activity
                chats = demo_conversations.conversations_load(
                    seed=seed,
                    count=min(
                        demo_conversations.DEFAULT_CONVERSATIONS,
                        created // demo_conversations.CUSTOMERS_PER_CONVERSATION,
                    ),
                )
            # Member care and store visits, with the activity only (--tickets 0 leaves it out).
            care = (
                demo_care.care_load(seed=seed)
                if tickets
                else {"appointments": 0, "visits": 0, "visit_orders": 0}
            )
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Loaded the demo department in {elapsed:.1f} s: {len(data.STORES)} stores, "
            f"{len(data.STAFF)} staff, {created:,} customers, {tickets:,} tickets, "
            f"{chats['conversations']:,} chats, {chats['call']:,} calls, "
            f"{care['appointments']:,} store visits booked ({care['visits']:,} made, "
            f"{care['visit_orders']:,} with a purchase) (seed {seed})."
        )
        self.stdout.write(data.LOGINS_HELP)
        if tickets:
            self.stdout.write(demo_tickets.HANDLERS_HELP)
