# A customer has at most one open follow-up per purpose outside tickets (0003 merged the
# duplicates there were). Its own migration: on PostgreSQL the index is built after 0003's
# updates are committed.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("followups", "0003_birthday_greeting_merge_open_duplicates"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='followup',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'open'), ('ticket__isnull', True)), fields=('customer', 'purpose'), name='followup_one_open_per_purpose'),
        ),
    ]
