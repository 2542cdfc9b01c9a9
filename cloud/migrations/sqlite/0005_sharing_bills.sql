-- Multi-operator settlement (issue #9), SQLite dialect. Mirrors
-- postgres/0005_sharing_bills.sql: instants INTEGER microseconds since 1970 (UTC), money the
-- exact decimal string of yuan (TEXT), JSON as TEXT. Tables are STRICT.

-- Revenue-sharing rules, versioned per operator and optionally per site. `scope` is '' for
-- the operator-wide rule and the site id otherwise (a NULL would not be unique). A rule is
-- never updated: a new price is a new version with a later effective instant.
CREATE TABLE sharing_rules (
    operator_id     TEXT        NOT NULL REFERENCES operators (id),
    scope           TEXT        NOT NULL,
    site_id         TEXT        REFERENCES sites (id),
    version         INTEGER     NOT NULL CHECK (version >= 1),
    effective_from  INTEGER     NOT NULL,
    terms           TEXT        NOT NULL,
    created_at      INTEGER     NOT NULL,
    PRIMARY KEY (operator_id, scope, version),
    UNIQUE (operator_id, scope, effective_from),
    CHECK ((scope = '') = (site_id IS NULL))
) STRICT;

-- What each settlement's split was, written in the same transaction as its postings. Rows
-- settled before this migration get operator, site and energy from their transaction.
ALTER TABLE settlements ADD COLUMN operator_id TEXT;
ALTER TABLE settlements ADD COLUMN site_id TEXT;
ALTER TABLE settlements ADD COLUMN started_at INTEGER    ;
ALTER TABLE settlements ADD COLUMN ended_at INTEGER    ;
ALTER TABLE settlements ADD COLUMN energy_mwh INTEGER NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN export_mwh INTEGER NOT NULL DEFAULT 0;
ALTER TABLE settlements ADD COLUMN v2g_driver_credit TEXT NOT NULL DEFAULT '0';
ALTER TABLE settlements ADD COLUMN v2g_operator_share TEXT NOT NULL DEFAULT '0';
-- NULL: split by the configured default platform fee (no sharing rule in force).
ALTER TABLE settlements ADD COLUMN rule_version INTEGER;
UPDATE settlements SET
    site_id = t.site_id,
    operator_id = s.operator_id,
    energy_mwh = t.energy_mwh
FROM transactions t JOIN sites s ON s.id = t.site_id
WHERE t.pile_code = settlements.pile_code AND t.serial = settlements.serial;
CREATE INDEX settlements_by_operator ON settlements (operator_id, settled_at);

-- Per operator: the time zone its days are cut in and the first local day it is billed for.
-- An operator without a row is billed in its first site's zone (UTC without sites) from the
-- day it was created.
CREATE TABLE operator_billing (
    operator_id  TEXT        NOT NULL PRIMARY KEY REFERENCES operators (id),
    time_zone    TEXT        NOT NULL,
    first_day    TEXT        NOT NULL,
    updated_at   INTEGER     NOT NULL
) STRICT;

-- Issued daily bills: immutable once written (nothing updates or deletes them).
CREATE TABLE bills (
    id                  TEXT        NOT NULL PRIMARY KEY,
    operator_id         TEXT        NOT NULL REFERENCES operators (id),
    day                 TEXT        NOT NULL,
    time_zone           TEXT        NOT NULL,
    period_start        INTEGER     NOT NULL,
    period_end          INTEGER     NOT NULL,
    sessions            INTEGER     NOT NULL,
    adjustment_sessions INTEGER     NOT NULL,
    energy_in_mwh       INTEGER     NOT NULL,
    energy_out_mwh      INTEGER     NOT NULL,
    gross               TEXT        NOT NULL,
    platform_fees       TEXT        NOT NULL,
    operator_payable    TEXT        NOT NULL,
    v2g_payouts         TEXT        NOT NULL,
    v2g_operator_share  TEXT        NOT NULL,
    net_payable         TEXT        NOT NULL,
    body                TEXT        NOT NULL,
    digest              TEXT        NOT NULL,
    lease_token         INTEGER     NOT NULL,
    issued_at           INTEGER     NOT NULL,
    UNIQUE (operator_id, day)
) STRICT;
CREATE INDEX bills_by_issued ON bills (issued_at);

-- Which bill each settled session is on: at most one, enforced by the key.
CREATE TABLE bill_sessions (
    settlement_key  TEXT NOT NULL PRIMARY KEY,
    bill_id         TEXT NOT NULL
) STRICT;
CREATE INDEX bill_sessions_by_bill ON bill_sessions (bill_id);

-- Leases for scheduled jobs: one holder at a time until expires_at; `token` grows with
-- every change of holder and fences the holder's writes.
CREATE TABLE job_leases (
    name        TEXT        NOT NULL PRIMARY KEY,
    holder      TEXT        NOT NULL,
    token       INTEGER     NOT NULL,
    expires_at  INTEGER     NOT NULL
) STRICT;

-- One webhook endpoint per operator; the secret signs bodies (HMAC-SHA256), so it is kept.
CREATE TABLE webhook_endpoints (
    operator_id  TEXT        NOT NULL PRIMARY KEY REFERENCES operators (id),
    url          TEXT        NOT NULL,
    secret       TEXT        NOT NULL,
    updated_at   INTEGER     NOT NULL
) STRICT;

-- Events to deliver, written in the same transaction as what they announce.
CREATE TABLE webhook_outbox (
    event_id         TEXT        NOT NULL PRIMARY KEY,
    operator_id      TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    body             TEXT        NOT NULL,
    state            TEXT        NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER     NOT NULL,
    last_error       TEXT,
    created_at       INTEGER     NOT NULL,
    delivered_at     INTEGER    
) STRICT;
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
