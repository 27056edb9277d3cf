"""PostgreSQL only: a function returning one page of an object's actions.

``actrack_object_page(ct, key, before, before_id, size)`` returns the ``size``
newest actions (rows of ``actrack_action``) where the object (content type id
``ct``, key ``key``) is the actor, a target or a related object, and that come
strictly before ``(before, before_id)`` in newest-first order (NULLs for the
first page). It reads the newest ``size`` per
role through the per-object indexes, as the statement the feed engine builds
does.

A PL/pgSQL function plans its statement once per database session and keeps
the plan; ``plan_cache_mode`` makes that PostgreSQL's generic plan, which reads
the same indexes whatever the object. The statement sent to the server each
time is then a function call: parsing and planning the whole statement was
about half of the server's work for an object's page. See
:mod:`actrack.objectpage`, which calls it.

Other databases get nothing here. The function returns the action table's
rows, whatever columns it has then; its statement names the tables, their
object columns and ``timestamp``: a later migration renaming any of them
must replace the function too (``CREATE OR REPLACE FUNCTION``, in the same
migration).
"""

from django.db import migrations

FUNCTION = "actrack_object_page"
SIGNATURE = f"{FUNCTION}(integer, text, timestamptz, bigint, integer)"


def _newest(table: str, ct: str, key: str, action: str) -> str:
    return (
        f'(SELECT x."timestamp" AS ts, {action} AS id FROM "{table}" AS x '
        f'WHERE x."{ct}" = p_ct AND x."{key}" = p_key AND (x."timestamp", {action}) < '
        "(COALESCE(p_before, 'infinity'), COALESCE(p_before_id, 0)) "
        f'ORDER BY x."{ct}", x."{key}", x."timestamp" DESC, {action} DESC LIMIT p_size)'
    )


def create_object_page(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # Each role's newest, merged (an action is once in the merge: its link rows carry
    # its timestamp), then the page's actions alone read from the action table.
    newest = " UNION ".join(
        [
            _newest("actrack_action", "actor_ct_id", "actor_key", 'x."id"'),
            _newest("actrack_action_targets", "obj_ct_id", "obj_key", 'x."action_id"'),
            _newest("actrack_action_related", "obj_ct_id", "obj_key", 'x."action_id"'),
        ]
    )
    schema_editor.execute(
        f"CREATE FUNCTION {FUNCTION}(p_ct integer, p_key text, p_before timestamptz, "
        "p_before_id bigint, p_size integer) "
        'RETURNS SETOF "actrack_action" LANGUAGE plpgsql STABLE '
        "SET plan_cache_mode = force_generic_plan AS $body$ BEGIN "
        f"RETURN QUERY SELECT a.* FROM (SELECT u.ts, u.id FROM ({newest}) AS u "
        "ORDER BY u.ts DESC, u.id DESC LIMIT p_size) AS p "
        'JOIN "actrack_action" AS a ON a."id" = p.id ORDER BY p.ts DESC, p.id DESC; '
        "END $body$"
    )


def drop_object_page(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")


class Migration(migrations.Migration):
    dependencies = [("actrack", "0002_sqlite_action_log")]

    operations = [migrations.RunPython(create_object_page, drop_object_page)]
