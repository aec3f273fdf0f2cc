"""Which database errors a retry can fix, by SQLSTATE (PostgreSQL's error codes).

A consumer must tell "the database cannot serve me right now" (hold the work, retry with backoff)
from "this work fails" (count it against the message; after a few, dead-letter it). PostgreSQL
says which in the SQLSTATE; SQLAlchemy raises most of these as a plain DBAPIError, so the class
of the exception alone is not enough (57P03 "the database system is starting up" is one).

Transient (retry, never a processing failure):
- class 08 connection exception; 53 insufficient resources (53300 too many connections);
  57 operator intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now,
  57014 query cancelled, e.g. by statement_timeout); 40 transaction rollback (serialization
  failure, deadlock); 25P03 idle-in-transaction timeout; 55P03 lock not available; 25006
  read-only transaction (connected to a standby during a failover);
- no SQLSTATE at all but a broken link: OSError, TimeoutError, a connection SQLAlchemy invalidated,
  SQLAlchemy's own pool timeout (every connection busy).
Anything else (a constraint, a type, a bug) is a processing failure.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57"})
TRANSIENT_CODES = frozenset({"25P03", "55P03", "25006"})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE carried by `exc` or by what it wraps (SQLAlchemy's .orig, the driver's cause)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in TRANSIENT_CLASSES or code in TRANSIENT_CODES
    return isinstance(exc, OSError | TimeoutError | PoolTimeout | OperationalError | InterfaceError)
