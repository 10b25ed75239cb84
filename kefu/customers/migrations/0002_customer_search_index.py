from django.db import migrations


def create_search_index(apps, schema_editor):
    from kefu.customers.search_index import search_index_ensure

    search_index_ensure(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [migrations.RunPython(create_search_index, migrations.RunPython.noop)]
