-- Voltline cloud store, SQLite dialect. Mirrors migrations/postgres/0001_foundation.sql
-- table for table; only the column types differ:
--   instants  INTEGER  microseconds since 1970-01-01T00:00:00Z (UTC, exact)
--   money     TEXT     the exact decimal string of yuan ("12.50"), never REAL
--   JSON      TEXT     serde_json text
--   booleans  INTEGER  0 / 1
-- Tables are STRICT so that no value of another type (a REAL above all) can slip in.

CREATE TABLE operators (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sites (
    id                    TEXT    NOT NULL PRIMARY KEY,
    operator_id           TEXT    NOT NULL REFERENCES operators (id),
    name                  TEXT    NOT NULL,
    time_zone             TEXT    NOT NULL,
    edge_credential_hash  TEXT    NOT NULL,
    config_version        INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX sites_by_operator ON sites (operator_id);

CREATE TABLE chargers (
    pile_code        TEXT    NOT NULL PRIMARY KEY,
    site_id          TEXT    NOT NULL REFERENCES sites (id),
    connector_count  INTEGER NOT NULL CHECK (connector_count BETWEEN 1 AND 99),
    credential_hash  TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX chargers_by_site ON chargers (site_id);

CREATE TABLE accounts (
    id           TEXT    NOT NULL PRIMARY KEY,
    operator_id  TEXT    REFERENCES operators (id),
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

-- One immutable row per (tariff, version); a new price is a new version.
CREATE TABLE tariffs (
    tariff_id       TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 0),
    operator_id     TEXT    NOT NULL REFERENCES operators (id),
    tariff          TEXT    NOT NULL,
    effective_from  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (tariff_id, version)
) STRICT;

CREATE TABLE site_tariffs (
    site_id         TEXT    NOT NULL REFERENCES sites (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    effective_from  INTEGER NOT NULL,
    tariff_id       TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    assigned_at     INTEGER NOT NULL,
    PRIMARY KEY (site_id, kind, effective_from),
    FOREIGN KEY (tariff_id, version) REFERENCES tariffs (tariff_id, version)
) STRICT;

-- Bearer tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    secret_hash  TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'driver', 'edge')),
    subject      TEXT,
    label        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    CHECK ((role = 'admin') = (subject IS NULL))
) STRICT;

-- hold_id: the ledger's pending transfer (next issue); transaction_serial: the serial the
-- start command gave the pile, which settlement matches against `transactions`.
CREATE TABLE orders (
    id                  TEXT    NOT NULL PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES accounts (id),
    site_id             TEXT    NOT NULL REFERENCES sites (id),
    pile_code           TEXT    NOT NULL REFERENCES chargers (pile_code),
    connector           INTEGER NOT NULL CHECK (connector BETWEEN 0 AND 99),
    kind                TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    payment_method      TEXT    NOT NULL,
    limit_amount        TEXT,
    limit_energy_mwh    INTEGER,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'charging', 'discharging', 'stopping', 'completed', 'settled', 'failed')),
    hold_id             TEXT,
    transaction_serial  TEXT    UNIQUE,
    idempotency_key     TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    UNIQUE (account_id, idempotency_key)
) STRICT;
CREATE INDEX orders_by_site ON orders (site_id, created_at);
CREATE INDEX orders_by_account ON orders (account_id, created_at);

CREATE TABLE commands (
    id               TEXT    NOT NULL PRIMARY KEY,
    site_id          TEXT    NOT NULL REFERENCES sites (id),
    order_id         TEXT    REFERENCES orders (id),
    kind             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'accepted', 'rejected', 'expired', 'failed')),
    reason           TEXT,
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_attempt_at  INTEGER
) STRICT;
CREATE INDEX commands_by_state ON commands (state, expires_at);
CREATE INDEX commands_by_site ON commands (site_id, state, created_at);
CREATE INDEX commands_by_order ON commands (order_id);

-- Per site: every sequence 1..=acked_seq is committed.
CREATE TABLE edge_ingest (
    site_id     TEXT    NOT NULL PRIMARY KEY REFERENCES sites (id),
    acked_seq   INTEGER NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    updated_at  INTEGER NOT NULL
) STRICT;

-- Committed sequences above the site's acked_seq (they arrived before a gap was filled).
CREATE TABLE edge_pending_seqs (
    site_id  TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (site_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE meter_readings (
    site_id          TEXT    NOT NULL,
    seq              INTEGER NOT NULL,
    pile_code        TEXT    NOT NULL,
    connector        INTEGER NOT NULL,
    serial           TEXT    NOT NULL,
    measured_at      INTEGER NOT NULL,
    import_mwh       INTEGER NOT NULL,
    export_mwh       INTEGER,
    power_w          INTEGER,
    soc_pct          INTEGER,
    amount           TEXT,
    recorded_at      INTEGER NOT NULL,
    PRIMARY KEY (site_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX meter_readings_by_serial ON meter_readings (serial);

-- Transaction and discharge records, exactly once per (pile, serial). Settlement (the ledger
-- issue) flips `settled` in the same database transaction as its postings.
CREATE TABLE transactions (
    pile_code      TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    site_id        TEXT    NOT NULL REFERENCES sites (id),
    seq            INTEGER NOT NULL,
    order_id       TEXT,
    energy_mwh     INTEGER NOT NULL,
    total_amount   TEXT,
    edge_cost      TEXT,
    record         TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    settled        INTEGER NOT NULL DEFAULT 0 CHECK (settled IN (0, 1)),
    settled_at     INTEGER,
    PRIMARY KEY (pile_code, serial)
) STRICT;
CREATE INDEX transactions_unsettled ON transactions (settled, received_at);
CREATE INDEX transactions_by_order ON transactions (order_id);

CREATE TABLE command_results (
    site_id      TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    command_id   TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    applied      INTEGER NOT NULL CHECK (applied IN (0, 1)),
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (site_id, seq)
) STRICT;
CREATE INDEX command_results_by_command ON command_results (command_id);

-- Connector status changes and alarms, as the edge sent them.
CREATE TABLE edge_events (
    site_id      TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    recorded_at  INTEGER NOT NULL,
    PRIMARY KEY (site_id, seq)
) STRICT;

-- The latest known state per connector (by the edge's sequence, so late batches lose).
CREATE TABLE connector_states (
    pile_code   TEXT    NOT NULL,
    connector   INTEGER NOT NULL,
    site_id     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL,
    PRIMARY KEY (pile_code, connector)
) STRICT;
