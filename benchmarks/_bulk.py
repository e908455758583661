"""What the scale benchmarks share: Django on PostgreSQL, and fast bulk rows.

Rows are made by one ``INSERT … SELECT … FROM generate_series`` per table:
millions of ORM saves would take hours.  Every column of the model gets a
value: the SQL expression given for it, else the model field's default.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """Django with the benchmark's database (``DATABASE_URL``, PostgreSQL), migrated."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database of its own (its tables are filled with bulk rows)")
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "discsub.settings")
    os.environ.setdefault("DISCSUB_DATA_DIR", "/tmp/discsub-bench-data")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def insert_series(model, count: int, exprs: dict[str, str], *, start: int = 1) -> float:
    """Insert ``count`` rows of ``model``; ``exprs`` maps a column to an SQL
    expression of ``i`` (``start`` … ``start + count - 1``).  Returns seconds."""
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if column in exprs:
            columns.append(column)
            values.append(exprs[column])
        elif field.primary_key:
            continue
        elif field.has_default():
            columns.append(column)
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.null:
            continue
        elif getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False):
            columns.append(column)
            values.append("now()")
        elif field.get_internal_type() in ("CharField", "TextField"):
            columns.append(column)
            values.append("''")
        else:
            raise ValueError(f"{model.__name__}.{field.name} needs an expression")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(%s, %s) AS g(i)"
    )
    began = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(sql, [*params, start, start + count - 1])
    return time.perf_counter() - began


def analyze(*models) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for model in models:
            cur.execute(f"ANALYZE {model._meta.db_table}")


def explain(queryset) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a queryset, as PostgreSQL prints it."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cur.fetchall())
