"""The reference's deduction, built once (its insert and settle: common.orders).

One statement sent in autocommit (one statement is one transaction: one round trip, no BEGIN /
COMMIT) that decides all-or-nothing itself:

    WITH want    AS (the order's lines, in line order),
         seen    AS (SELECT .. FROM t_stock WHERE sku IN want ORDER BY sku FOR UPDATE),
         verdict AS (every line's SKU exists and has enough),
         taken   AS (UPDATE t_stock SET quantity = seen.quantity - wanted .. WHERE verdict),
         logged  AS (INSERT INTO t_deduction_log .. WHERE verdict, in line order)
    SELECT count(*) FROM taken, the quantities seen

Rows are locked in sku order (no deadlock between orders); `seen` reads their latest committed
quantity, which nobody can change until this statement commits, and `verdict` decides on it.
The UPDATE must take neither its filter nor its new value from its own row: it reads the rows of
the statement's snapshot, which is older than the lock. A WHERE on that quantity skipped a row
restocked while the order waited (one line of the order taken, the other not), and
`quantity - wanted` on it broke the CHECK (quantity >= 0) before PostgreSQL moved to the row's
latest version. So the new value is `seen`'s quantity minus the line's; the row lock is what
makes that right (tests/compare/test_reference.py races restocks and orders). The caller decides
the outcome and its reason with the pure rule (common.deduction.decide) on the quantities seen,
and checks that the statement agreed.
"""

from __future__ import annotations

from sqlalchemy import Integer, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB

from common.schema import InventorySchema


def deduct_and_log(schema: InventorySchema) -> TextClause:
    stock, log = schema.stock.name, schema.deduction_log.name
    return (
        text(
            "WITH want AS (SELECT w.sku, w.quantity, w.n FROM ROWS FROM (jsonb_to_recordset(:lines) "
            "AS (sku text, quantity integer)) WITH ORDINALITY AS w(sku, quantity, n)), "
            f"seen AS (SELECT s.sku, s.quantity FROM {stock} AS s WHERE s.sku IN (SELECT sku FROM want) "
            "ORDER BY s.sku FOR UPDATE), "
            "verdict AS (SELECT bool_and(seen.quantity IS NOT NULL AND seen.quantity >= want.quantity) AS ok "
            "FROM want LEFT JOIN seen ON seen.sku = want.sku), "
            f"taken AS (UPDATE {stock} AS s SET quantity = seen.quantity - want.quantity "
            "FROM want JOIN seen ON seen.sku = want.sku, verdict "
            "WHERE verdict.ok AND s.sku = want.sku RETURNING s.sku), "
            f"logged AS (INSERT INTO {log} (order_id, sku, quantity, source_id) "
            "SELECT :order_id, want.sku, want.quantity, :source_id FROM want, verdict "
            "WHERE verdict.ok ORDER BY want.n) "
            "SELECT (SELECT count(*) FROM taken) AS taken, "
            "(SELECT coalesce(jsonb_object_agg(sku, quantity), '{}') FROM seen) AS on_hand"
        )
        .bindparams(bindparam("lines", type_=JSONB))
        .columns(taken=Integer, on_hand=JSONB)
    )
