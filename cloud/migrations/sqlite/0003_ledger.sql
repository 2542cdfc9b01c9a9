-- The SQL-backed ledger (cloud/src/money). Mirrors postgres/0003_ledger.sql; money is the
-- exact decimal string of yuan (TEXT), instants are INTEGER microseconds since 1970 (UTC).

-- One row per ledger account: its policy and its four sums of postings. Every write is
-- `UPDATE ... WHERE id = ? AND version = ?` (optimistic concurrency); `lease_token` records
-- the Redis lease under which the last write was made (fencing is by the version check).
-- lower_limit NULL = unbounded; a wallet's credit limit is -lower_limit.
CREATE TABLE ledger_accounts (
    id               TEXT    NOT NULL PRIMARY KEY,
    kind             TEXT    NOT NULL,
    owner            TEXT,
    normal_side      TEXT    NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    lower_limit      TEXT,
    debits_pending   TEXT    NOT NULL DEFAULT '0',
    debits_posted    TEXT    NOT NULL DEFAULT '0',
    credits_pending  TEXT    NOT NULL DEFAULT '0',
    credits_posted   TEXT    NOT NULL DEFAULT '0',
    version          INTEGER NOT NULL DEFAULT 0,
    lease_token      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- Every applied transfer set, once per idempotency key, with its content for replay checks.
CREATE TABLE ledger_sets (
    sequence    INTEGER NOT NULL PRIMARY KEY,
    idem_key    TEXT    NOT NULL UNIQUE,
    reason      TEXT    NOT NULL,
    order_id    TEXT,
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Two-phase transfers (holds): open until posted or voided, once.
CREATE TABLE ledger_pendings (
    id             TEXT    NOT NULL PRIMARY KEY,
    set_key        TEXT    NOT NULL,
    debit          TEXT    NOT NULL,
    credit         TEXT    NOT NULL,
    amount         TEXT    NOT NULL,
    expires_at     INTEGER,
    state          TEXT    NOT NULL CHECK (state IN ('open', 'posted', 'voided')),
    posted_amount  TEXT,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX ledger_pendings_open ON ledger_pendings (state, expires_at);

-- The append-only journal: each account's four sums are the sums of its postings here.
CREATE TABLE ledger_postings (
    id           INTEGER NOT NULL PRIMARY KEY,
    transfer_id  TEXT    NOT NULL,
    set_key      TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    field        TEXT    NOT NULL CHECK (field IN ('debits_pending', 'debits_posted', 'credits_pending', 'credits_posted')),
    delta        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX ledger_postings_by_account ON ledger_postings (account, id);

-- One settlement per charger transaction (pile, serial), written in the same database
-- transaction as its postings.
CREATE TABLE settlements (
    pile_code       TEXT    NOT NULL,
    serial          TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL UNIQUE,
    order_id        TEXT,
    account_id      TEXT    NOT NULL,
    cost            TEXT    NOT NULL,
    charger_total   TEXT    NOT NULL,
    mismatch        INTEGER NOT NULL CHECK (mismatch IN (0, 1)),
    difference      TEXT    NOT NULL,
    from_hold       TEXT    NOT NULL,
    released        TEXT    NOT NULL,
    from_wallet     TEXT    NOT NULL,
    receivable      TEXT    NOT NULL,
    operator_share  TEXT    NOT NULL,
    platform_fee    TEXT    NOT NULL,
    breakdown       TEXT    NOT NULL,
    settled_at      INTEGER NOT NULL,
    PRIMARY KEY (pile_code, serial)
) STRICT;
CREATE INDEX settlements_by_order ON settlements (order_id);

-- What settlement writes on the order: the billed cost and whether the charger disagreed.
ALTER TABLE orders ADD COLUMN settled_cost TEXT;
ALTER TABLE orders ADD COLUMN cost_mismatch INTEGER CHECK (cost_mismatch IN (0, 1));
