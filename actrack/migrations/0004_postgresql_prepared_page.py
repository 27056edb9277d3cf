"""PostgreSQL only: a function that runs a statement prepared once per session.

``actrack_prepared_page(statement, args)`` prepares ``statement`` (its
parameters written ``$1``, ``$2``...) under a name made from the md5 of its
text, the first time the database session sees that text, then executes it
with ``args`` (text values, NULL for None, cast by PostgreSQL to the types the
statement gives its parameters) and returns its rows. The caller names the
rows' columns and types (``AS _r(c0 bigint, ...)``).

The function runs with ``plan_cache_mode = force_generic_plan``, which the
prepared statement then uses: it is planned once per session rather than at
every call. ``actrack.pagefunction`` sends it the feed pages whose statement
reads the same indexes whatever its parameters (those of users following
whole models only, whose content types are constants of the text); planning
was 0.27-0.33 ms of such a page's 0.6-0.8 ms on the server.

The check of ``pg_prepared_statements`` on every call (rather than a memory of
the caller's) keeps it right behind a pooler, whose clients may each get
another server session, and after ``DEALLOCATE ALL`` or ``DISCARD ALL``.

Other databases get nothing here.
"""

from django.db import migrations

FUNCTION = "actrack_prepared_page"
SIGNATURE = f"{FUNCTION}(text, text[])"


def create_prepared_page(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE FUNCTION {FUNCTION}(p_statement text, p_args text[]) RETURNS SETOF record "
        "LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan SET jit = off "
        "AS $body$ DECLARE v_name text := 'actrack_page_' || md5(p_statement); BEGIN "
        "IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = v_name) THEN "
        "EXECUTE 'PREPARE ' || quote_ident(v_name) || ' AS ' || p_statement; "
        "END IF; "
        "RETURN QUERY EXECUTE 'EXECUTE ' || quote_ident(v_name) || COALESCE('(' || ("
        "SELECT string_agg(quote_nullable(u.a), ', ' ORDER BY u.n) "
        "FROM unnest(p_args) WITH ORDINALITY AS u(a, n)) || ')', ''); "
        "END $body$"
    )


def drop_prepared_page(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")


class Migration(migrations.Migration):
    dependencies = [("actrack", "0003_postgresql_object_page")]

    operations = [migrations.RunPython(create_prepared_page, drop_prepared_page)]
