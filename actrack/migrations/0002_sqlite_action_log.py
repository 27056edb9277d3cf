"""SQLite only: a view through which one ``INSERT`` writes an action and its link rows.

SQLite has no data-modifying ``WITH`` clause, so a single ``log()`` took an
``INSERT`` per table inside a transaction: three statements plus ``BEGIN`` and
``COMMIT``. Inserting one row into ``actrack_action_log`` runs its ``INSTEAD OF``
trigger, which writes the action (with the id given) and a link row per element
of the ``targets`` and ``related`` JSON arrays (``[content type id, key]`` pairs,
in their order), atomically, as one statement. See
:func:`actrack.inserts._insert_one_sqlite`.

Other databases get nothing here.

A later migration that makes Django rebuild ``actrack_action``,
``actrack_action_targets`` or ``actrack_action_related`` on SQLite (most field
changes do: new table, copy, drop, rename) must drop the trigger first and
create it again after (``drop_log_view`` and ``create_log_view`` below, as
``RunPython`` steps): SQLite refuses to rename a table into place while a trigger
names the dropped one ("error in trigger actrack_action_log_insert").
"""

from django.db import migrations

VIEW = "actrack_action_log"
TRIGGER = "actrack_action_log_insert"
ACTION_COLUMNS = ("id", "actor_ct_id", "actor_key", "verb", "level", "data", "timestamp")


def _link_insert(table: str, array: str) -> str:
    return (
        f'INSERT INTO "{table}" ("action_id", "obj_ct_id", "obj_key", "timestamp") '
        "SELECT NEW.\"id\", json_extract(link.value, '$[0]'), json_extract(link.value, '$[1]'), "
        f'NEW."timestamp" FROM json_each(NEW."{array}") AS link ORDER BY link.key;'
    )


def create_log_view(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    columns = ", ".join(f'"{column}"' for column in ACTION_COLUMNS)
    news = ", ".join(f'NEW."{column}"' for column in ACTION_COLUMNS)
    nulls = ", ".join(f'NULL AS "{column}"' for column in (*ACTION_COLUMNS, "targets", "related"))
    schema_editor.execute(f'CREATE VIEW "{VIEW}" AS SELECT {nulls} WHERE 0')
    schema_editor.execute(
        f'CREATE TRIGGER "{TRIGGER}" INSTEAD OF INSERT ON "{VIEW}" BEGIN '
        f'INSERT INTO "actrack_action" ({columns}) VALUES ({news}); '
        f"{_link_insert('actrack_action_targets', 'targets')} "
        f"{_link_insert('actrack_action_related', 'related')} "
        "END"
    )


def drop_log_view(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(f'DROP TRIGGER IF EXISTS "{TRIGGER}"')
    schema_editor.execute(f'DROP VIEW IF EXISTS "{VIEW}"')


class Migration(migrations.Migration):
    dependencies = [("actrack", "0001_initial")]

    operations = [migrations.RunPython(create_log_view, drop_log_view)]
