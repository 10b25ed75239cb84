from django.core.management.base import BaseCommand, CommandError

from kefu.accounts.models import ApiToken, User
from kefu.accounts.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create, list or revoke API tokens: kefu token create USERNAME NAME | list | revoke ID"

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("username")
        create.add_argument("name")
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("id", type=int)

    def handle(self, *args, action, **options):
        if action == "create":
            try:
                user = User.objects.get(username=options["username"])
            except User.DoesNotExist:
                raise CommandError(f"No user {options['username']!r}.") from None
            token, key = api_token_create(user=user, name=options["name"], actor=None)
            self.stdout.write(key)
            self.stderr.write(f"Token {token.pk} for {user.username}; the key is shown only once.")
        elif action == "list":
            for t in ApiToken.objects.select_related("user"):
                state = "revoked" if t.revoked_at else "active"
                self.stdout.write(f"{t.pk}\t{t.prefix}…\t{t.user.username}\t{t.name}\t{state}")
        else:
            api_token_revoke(token_id=options["id"], actor=None)
            self.stdout.write(f"Token {options['id']} revoked.")
