-- Voltline cloud store, PostgreSQL dialect. Mirrors migrations/sqlite/0001_foundation.sql
-- table for table; only the column types differ: instants are TIMESTAMPTZ (UTC), money is
-- NUMERIC (exact), JSON is JSONB, booleans are BOOLEAN.

CREATE TABLE operators (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE sites (
    id                    TEXT    NOT NULL PRIMARY KEY,
    operator_id           TEXT    NOT NULL REFERENCES operators (id),
    name                  TEXT    NOT NULL,
    time_zone             TEXT    NOT NULL,
    edge_credential_hash  TEXT    NOT NULL,
    config_version        BIGINT NOT NULL DEFAULT 1,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX sites_by_operator ON sites (operator_id);

CREATE TABLE chargers (
    pile_code        TEXT    NOT NULL PRIMARY KEY,
    site_id          TEXT    NOT NULL REFERENCES sites (id),
    connector_count  BIGINT NOT NULL CHECK (connector_count BETWEEN 1 AND 99),
    credential_hash  TEXT    NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX chargers_by_site ON chargers (site_id);

CREATE TABLE accounts (
    id           TEXT    NOT NULL PRIMARY KEY,
    operator_id  TEXT    REFERENCES operators (id),
    name         TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

-- One immutable row per (tariff, version); a new price is a new version.
CREATE TABLE tariffs (
    tariff_id       TEXT    NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 0),
    operator_id     TEXT    NOT NULL REFERENCES operators (id),
    tariff          JSONB    NOT NULL,
    effective_from  TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tariff_id, version)
);

CREATE TABLE site_tariffs (
    site_id         TEXT    NOT NULL REFERENCES sites (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    effective_from  TIMESTAMPTZ NOT NULL,
    tariff_id       TEXT    NOT NULL,
    version         BIGINT NOT NULL,
    assigned_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, kind, effective_from),
    FOREIGN KEY (tariff_id, version) REFERENCES tariffs (tariff_id, version)
);

-- Bearer tokens: only the SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    secret_hash  TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'driver', 'edge')),
    subject      TEXT,
    label        TEXT    NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CHECK ((role = 'admin') = (subject IS NULL))
);

-- hold_id: the ledger's pending transfer (next issue); transaction_serial: the serial the
-- start command gave the pile, which settlement matches against `transactions`.
CREATE TABLE orders (
    id                  TEXT    NOT NULL PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES accounts (id),
    site_id             TEXT    NOT NULL REFERENCES sites (id),
    pile_code           TEXT    NOT NULL REFERENCES chargers (pile_code),
    connector           BIGINT NOT NULL CHECK (connector BETWEEN 0 AND 99),
    kind                TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    payment_method      TEXT    NOT NULL,
    limit_amount        NUMERIC,
    limit_energy_mwh    BIGINT,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'charging', 'discharging', 'stopping', 'completed', 'settled', 'failed')),
    hold_id             TEXT,
    transaction_serial  TEXT    UNIQUE,
    idempotency_key     TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    version             BIGINT NOT NULL,
    UNIQUE (account_id, idempotency_key)
);
CREATE INDEX orders_by_site ON orders (site_id, created_at);
CREATE INDEX orders_by_account ON orders (account_id, created_at);

CREATE TABLE commands (
    id               TEXT    NOT NULL PRIMARY KEY,
    site_id          TEXT    NOT NULL REFERENCES sites (id),
    order_id         TEXT    REFERENCES orders (id),
    kind             TEXT    NOT NULL,
    payload          JSONB    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'delivered', 'accepted', 'rejected', 'expired', 'failed')),
    reason           TEXT,
    expires_at       TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_attempt_at  TIMESTAMPTZ
);
CREATE INDEX commands_by_state ON commands (state, expires_at);
CREATE INDEX commands_by_site ON commands (site_id, state, created_at);
CREATE INDEX commands_by_order ON commands (order_id);

-- Per site: every sequence 1..=acked_seq is committed.
CREATE TABLE edge_ingest (
    site_id     TEXT    NOT NULL PRIMARY KEY REFERENCES sites (id),
    acked_seq   BIGINT NOT NULL DEFAULT 0 CHECK (acked_seq >= 0),
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Committed sequences above the site's acked_seq (they arrived before a gap was filled).
CREATE TABLE edge_pending_seqs (
    site_id  TEXT    NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (site_id, seq)
);

CREATE TABLE meter_readings (
    site_id          TEXT    NOT NULL,
    seq              BIGINT NOT NULL,
    pile_code        TEXT    NOT NULL,
    connector        BIGINT NOT NULL,
    serial           TEXT    NOT NULL,
    measured_at      TIMESTAMPTZ NOT NULL,
    import_mwh       BIGINT NOT NULL,
    export_mwh       BIGINT,
    power_w          BIGINT,
    soc_pct          BIGINT,
    amount           NUMERIC,
    recorded_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX meter_readings_by_serial ON meter_readings (serial);

-- Transaction and discharge records, exactly once per (pile, serial). Settlement (the ledger
-- issue) flips `settled` in the same database transaction as its postings.
CREATE TABLE transactions (
    pile_code      TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('charge', 'discharge')),
    site_id        TEXT    NOT NULL REFERENCES sites (id),
    seq            BIGINT NOT NULL,
    order_id       TEXT,
    energy_mwh     BIGINT NOT NULL,
    total_amount   NUMERIC,
    edge_cost      NUMERIC,
    record         JSONB    NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    settled        BOOLEAN NOT NULL DEFAULT FALSE,
    settled_at     TIMESTAMPTZ,
    PRIMARY KEY (pile_code, serial)
);
CREATE INDEX transactions_unsettled ON transactions (settled, received_at);
CREATE INDEX transactions_by_order ON transactions (order_id);

CREATE TABLE command_results (
    site_id      TEXT    NOT NULL,
    seq          BIGINT NOT NULL,
    command_id   TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    reason       TEXT,
    applied      BOOLEAN NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX command_results_by_command ON command_results (command_id);

-- Connector status changes and alarms, as the edge sent them.
CREATE TABLE edge_events (
    site_id      TEXT    NOT NULL,
    seq          BIGINT NOT NULL,
    kind         TEXT    NOT NULL,
    body         JSONB    NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (site_id, seq)
);

-- The latest known state per connector (by the edge's sequence, so late batches lose).
CREATE TABLE connector_states (
    pile_code   TEXT    NOT NULL,
    connector   BIGINT NOT NULL,
    site_id     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    seq         BIGINT NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pile_code, connector)
);
