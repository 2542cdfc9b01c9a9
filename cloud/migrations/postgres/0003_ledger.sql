-- The SQL-backed ledger (cloud/src/money). Mirrors sqlite/0003_ledger.sql; money is NUMERIC,
-- instants TIMESTAMPTZ (UTC).

-- One row per ledger account: its policy and its four sums of postings. Every write is
-- `UPDATE ... WHERE id = ? AND version = ?` (optimistic concurrency); `lease_token` records
-- the Redis lease under which the last write was made (fencing is by the version check).
-- lower_limit NULL = unbounded; a wallet's credit limit is -lower_limit.
CREATE TABLE ledger_accounts (
    id               TEXT    NOT NULL PRIMARY KEY,
    kind             TEXT    NOT NULL,
    owner            TEXT,
    normal_side      TEXT    NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    lower_limit      NUMERIC,
    debits_pending   NUMERIC NOT NULL DEFAULT 0,
    debits_posted    NUMERIC NOT NULL DEFAULT 0,
    credits_pending  NUMERIC NOT NULL DEFAULT 0,
    credits_posted   NUMERIC NOT NULL DEFAULT 0,
    version          BIGINT  NOT NULL DEFAULT 0,
    lease_token      TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Every applied transfer set, once per idempotency key, with its content for replay checks.
CREATE TABLE ledger_sets (
    sequence    BIGSERIAL PRIMARY KEY,
    idem_key    TEXT    NOT NULL UNIQUE,
    reason      TEXT    NOT NULL,
    order_id    TEXT,
    content     JSONB   NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- Two-phase transfers (holds): open until posted or voided, once.
CREATE TABLE ledger_pendings (
    id             TEXT    NOT NULL PRIMARY KEY,
    set_key        TEXT    NOT NULL,
    debit          TEXT    NOT NULL,
    credit         TEXT    NOT NULL,
    amount         NUMERIC    NOT NULL,
    expires_at     TIMESTAMPTZ,
    state          TEXT    NOT NULL CHECK (state IN ('open', 'posted', 'voided')),
    posted_amount  NUMERIC,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_pendings_open ON ledger_pendings (state, expires_at);

-- The append-only journal: each account's four sums are the sums of its postings here.
CREATE TABLE ledger_postings (
    id           BIGSERIAL PRIMARY KEY,
    transfer_id  TEXT    NOT NULL,
    set_key      TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    field        TEXT    NOT NULL CHECK (field IN ('debits_pending', 'debits_posted', 'credits_pending', 'credits_posted')),
    delta        NUMERIC    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_postings_by_account ON ledger_postings (account, id);

-- One settlement per charger transaction (pile, serial), written in the same database
-- transaction as its postings.
CREATE TABLE settlements (
    pile_code       TEXT    NOT NULL,
    serial          TEXT    NOT NULL,
    idem_key        TEXT    NOT NULL UNIQUE,
    order_id        TEXT,
    account_id      TEXT    NOT NULL,
    cost            NUMERIC    NOT NULL,
    charger_total   NUMERIC    NOT NULL,
    mismatch        BOOLEAN NOT NULL,
    difference      NUMERIC    NOT NULL,
    from_hold       NUMERIC    NOT NULL,
    released        NUMERIC    NOT NULL,
    from_wallet     NUMERIC    NOT NULL,
    receivable      NUMERIC    NOT NULL,
    operator_share  NUMERIC    NOT NULL,
    platform_fee    NUMERIC    NOT NULL,
    breakdown       JSONB   NOT NULL,
    settled_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pile_code, serial)
);
CREATE INDEX settlements_by_order ON settlements (order_id);

-- What settlement writes on the order: the billed cost and whether the charger disagreed.
ALTER TABLE orders ADD COLUMN settled_cost NUMERIC;
ALTER TABLE orders ADD COLUMN cost_mismatch BOOLEAN;
