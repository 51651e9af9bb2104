"""sqlite: a durable work queue in one local file, with leases (new: not in the Go originals).

pushx appends; procx leases the oldest available item for a visibility timeout, renewed while the child runs;
clear deletes it; fail makes it available again (after -sqlite-fail-delay, or procx's -retry-backoff delay if
longer) keeping its attempt count. If procx dies, the lease expires and the item comes back. If a renewal finds
the lease gone (it expired, e.g. while the machine was suspended, and another procx took the item), procx is told
(Work.lose) and stops the child. Several procx processes may share one file (WAL mode, short write transactions). Its
dead-letter target (`-exit-codes ...=dead-letter`, `-max-attempts`) is the queue `<queue>.dead` in the same file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence

from core.errors import ProviderError
from core.options import PROCX, Delivery, DriverSpec, Option
from core.work import Sink, Source, Work

SCHEMA = """
CREATE TABLE IF NOT EXISTS procx_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    lease TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS procx_queue_fifo ON procx_queue (queue, id, available_at);
"""

LEASE = """
UPDATE procx_queue SET available_at = ?, attempts = attempts + 1, lease = ?
WHERE id = (SELECT id FROM procx_queue WHERE queue = ? AND available_at <= ? ORDER BY id LIMIT 1)
RETURNING id, payload, attempts
"""

DEAD_SUFFIX = ".dead"  # -exit-codes ...=dead-letter moves an item to the queue of this name (<queue>.dead)


def connect(path: str) -> sqlite3.Connection:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ProviderError(f"driver sqlite: cannot create the folder of -sqlite-path {directory}: "
                            f"{exc.strerror}") from exc
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise ProviderError(f"driver sqlite: cannot open {path}: {exc}") from exc
    return conn


class SqliteSource(Source):
    keeper: threading.Thread | None = None

    def open(self) -> None:
        self.conn = connect(self.config["sqlite-path"])
        self.queue = self.config["sqlite-queue"]
        self.visibility = float(self.config["sqlite-visibility-timeout"])
        self.lock = threading.Lock()  # one statement at a time on the connection (the keeper is another thread)
        self.held: dict[str, Work] = {}  # lease token -> work whose child runs
        self.stop = threading.Event()

    def get(self, wait: float) -> Work | None:
        now = time.time()
        token = os.urandom(16).hex()
        with self.lock:
            rows = self.conn.execute(LEASE, (now + self.visibility, token, self.queue, now)
                                     ).fetchall()  # fetch all: the statement (and its write lock) ends only then
        if not rows:
            return None
        row = rows[0]
        return Work(bytes(row[1]), str(row[0]), attempt=row[2], handle=token, exact=True)

    def keep(self, work: Work) -> None:
        """Renew the work's lease while its child runs (procx calls this as the child starts)."""
        with self.lock:
            self.held[work.handle] = work
            if self.keeper is None and self.visibility > 0:
                self.keeper = threading.Thread(target=self._renew, name="sqlite-lease", daemon=True)
                self.keeper.start()

    def _renew(self) -> None:
        """Renew the lease of every held item each third of the visibility timeout; tell the work when its lease
        is gone (a busy database is tried again next round)."""
        while not self.stop.wait(max(0.05, self.visibility / 3)):
            with self.lock:
                held = list(self.held.values())
            for work in held:
                with self.lock:
                    if work.handle not in self.held or self.stop.is_set():
                        continue
                    try:
                        kept = self.extend(work, self.visibility)
                    except sqlite3.Error:
                        continue
                    if not kept:
                        self.held.pop(work.handle, None)
                if not kept:
                    work.lose(f"the lease on item {work.id} of queue {self.queue!r} expired and another consumer "
                              "took it")

    def _finish(self, work: Work, sql: str, *args: object) -> None:
        with self.lock:
            self.held.pop(work.handle, None)
            self.conn.execute(sql, (*args, int(work.id), work.handle))

    def clear(self, work: Work) -> None:
        self._finish(work, "DELETE FROM procx_queue WHERE id = ? AND lease = ?")

    def fail(self, work: Work) -> None:
        delay = max(float(self.config["sqlite-fail-delay"]), work.retry_delay)
        self._finish(work, "UPDATE procx_queue SET available_at = ?, lease = NULL WHERE id = ? AND lease = ?",
                     time.time() + delay)

    def dead_letter(self, work: Work) -> None:
        """Move the item to the queue `<queue>.dead` of the same file (same id and payload, attempts kept), where
        it waits, available, for whoever looks at dead letters (procx -sqlite-queue NAME.dead)."""
        self._finish(work, "UPDATE procx_queue SET queue = ?, available_at = ?, lease = NULL WHERE id = ? "
                           "AND lease = ?", self.queue + DEAD_SUFFIX, time.time())

    def extend(self, work: Work, seconds: float) -> bool:
        """Keep the lease for `seconds` more; False when it was lost (expired and taken by another)."""
        cur = self.conn.execute("UPDATE procx_queue SET available_at = ? WHERE id = ? AND lease = ?",
                                (time.time() + seconds, int(work.id), work.handle))
        return cur.rowcount == 1

    def depth(self) -> int:
        """Items available now (not leased)."""
        return self.conn.execute("SELECT count(*) FROM procx_queue WHERE queue = ? AND available_at <= ?",
                                 (self.queue, time.time())).fetchone()[0]

    def close(self) -> None:
        stop = getattr(self, "stop", None)
        if stop is not None:
            stop.set()
        if self.keeper is not None and self.keeper is not threading.current_thread():
            self.keeper.join(timeout=5)
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()


class SqliteSink(Sink):
    def open(self) -> None:
        self.conn = connect(self.config["sqlite-path"])

    def push(self, payload: bytes) -> str | None:
        return self.push_many([payload])[0]

    def push_many(self, payloads: Sequence[bytes]) -> list[str | None]:
        now = time.time()
        queue = self.config["sqlite-queue"]
        ids: list[str | None] = []
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for payload in payloads:
                cur = self.conn.execute(
                    "INSERT INTO procx_queue (queue, payload, available_at, created_at) VALUES (?, ?, ?, ?)",
                    (queue, sqlite3.Binary(payload), now, now))
                ids.append(str(cur.lastrowid))
        return ids

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()


SPEC = DriverSpec(
    "sqlite",
    "a durable local work queue in one SQLite file (no server needed)",
    [
        Option("sqlite-path", help="the queue's database file (created if missing)", required=True,
               extension=True, placeholder="PATH"),
        Option("sqlite-queue", default="default", help="queue name: one file can hold several queues",
               extension=True),
        Option("sqlite-visibility-timeout", "duration", 30.0, sides=PROCX, extension=True, group="retrieve",
               advanced=True,
               help="how long a taken item stays leased before it is offered again (if procx died)"),
        Option("sqlite-fail-delay", "duration", 0.0, sides=PROCX, extension=True, group="fail", advanced=True,
               help="after a failure, how long before the item is offered again"),
    ],
    source="drivers.sqlite:SqliteSource",
    sink="drivers.sqlite:SqliteSink",
    delivery=Delivery(
        "at-least-once",
        hold="lease for -sqlite-visibility-timeout, renewed while the child runs; an expired lease brings the item "
             "back (a lease found lost stops the child)",
        fail="released at once, or after -sqlite-fail-delay (or -retry-backoff if longer); the attempt count is "
             "kept and is the attempt (-max-attempts)",
        dead_letter="-exit-codes …=dead-letter and -max-attempts move the item to the queue <queue>.dead in the "
                    "same file",
        pushx="committed transaction",
        tested="real: SQLite 3 (stdlib)",
    ),
)
