"""PostgreSQL only: a function writing one action and its link rows.

``actrack_log_action(actor_ct, actor_key, verb, level, data, timestamp,
targets, related)`` inserts the action, then its targets and related objects
(``targets`` and ``related``: JSON arrays of ``[content type id, key]``
pairs, or NULL for none), link rows in the order given, and returns the
action's id. It is one statement for the caller, so atomic by itself.

``log()`` outside a queue sent the three inserts as one statement with
data-modifying ``WITH`` clauses, which PostgreSQL parsed and planned at
every call; a PL/pgSQL function plans its statements once per database
session. See :mod:`actrack.logfunction`, which calls it.

Other databases get nothing here. The function names the action and link
tables and their columns: a later migration renaming any of them must
replace the function too (``CREATE OR REPLACE FUNCTION``, in the same
migration).
"""

from django.db import migrations

FUNCTION = "actrack_log_action"
SIGNATURE = f"{FUNCTION}(integer, text, text, smallint, jsonb, timestamptz, json, json)"


def _links(table: str, parameter: str) -> str:
    return (
        f"IF {parameter} IS NOT NULL THEN "
        f'INSERT INTO "{table}" ("action_id", "obj_ct_id", "obj_key", "timestamp") '
        "SELECT v_id, (link.v ->> 0)::integer, link.v ->> 1, p_timestamp "
        f"FROM json_array_elements({parameter}) WITH ORDINALITY AS link(v, n) "
        "ORDER BY link.n; "
        "END IF; "
    )


def create_log_action(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE FUNCTION {FUNCTION}(p_actor_ct integer, p_actor_key text, p_verb text, "
        "p_level smallint, p_data jsonb, p_timestamp timestamptz, p_targets json, "
        "p_related json) RETURNS bigint LANGUAGE plpgsql VOLATILE "
        "AS $body$ DECLARE v_id bigint; BEGIN "
        'INSERT INTO "actrack_action" ("actor_ct_id", "actor_key", "verb", "level", "data", '
        '"timestamp") VALUES (p_actor_ct, p_actor_key, p_verb, p_level, p_data, p_timestamp) '
        'RETURNING "id" INTO v_id; '
        f"{_links('actrack_action_targets', 'p_targets')}"
        f"{_links('actrack_action_related', 'p_related')}"
        "RETURN v_id; END $body$"
    )


def drop_log_action(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")


class Migration(migrations.Migration):
    dependencies = [("actrack", "0004_postgresql_prepared_page")]

    operations = [migrations.RunPython(create_log_action, drop_log_action)]
