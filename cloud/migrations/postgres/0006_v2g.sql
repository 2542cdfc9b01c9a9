-- V2G discharging (issue #8), PostgreSQL dialect. Mirrors sqlite/0006_v2g.sql: instants
-- TIMESTAMPTZ, booleans BOOLEAN.

-- Whether a charger can discharge a vehicle into the grid (a bidirectional pile with an
-- export register). Discharge orders are refused for chargers without it.
ALTER TABLE chargers ADD COLUMN v2g BOOLEAN NOT NULL DEFAULT FALSE;

-- A discharge order's own terms, one row per order of kind 'discharge', written in the same
-- transaction as the order and its start command: the state of charge the driver keeps, when
-- they leave, and the most power the pile may export.
CREATE TABLE discharge_orders (
    order_id        TEXT        NOT NULL PRIMARY KEY REFERENCES orders (id),
    soc_floor_pct   BIGINT      NOT NULL CHECK (soc_floor_pct BETWEEN 0 AND 100),
    departure       TIMESTAMPTZ NOT NULL,
    max_power_w     BIGINT      NOT NULL CHECK (max_power_w > 0),
    created_at      TIMESTAMPTZ NOT NULL
);

-- At most one running discharge order per connector (pending or discharging; a stopping
-- order is ending and no longer blocks a new one). The API checks first for a clear 409;
-- this closes the race between two concurrent starts.
CREATE UNIQUE INDEX orders_one_running_discharge ON orders (pile_code, connector)
    WHERE kind = 'discharge' AND state IN ('pending', 'discharging');

-- Grid events sent to a site's edge (discharge `power_w` from `from_at` to `to_at`), each
-- with the command that carries it; the command is polled like any other.
CREATE TABLE grid_events (
    event_id    TEXT        NOT NULL PRIMARY KEY,
    site_id     TEXT        NOT NULL REFERENCES sites (id),
    command_id  TEXT        NOT NULL REFERENCES commands (id),
    power_w     BIGINT      NOT NULL CHECK (power_w > 0),
    from_at     TIMESTAMPTZ NOT NULL,
    to_at       TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    CHECK (to_at > from_at)
);
CREATE INDEX grid_events_by_site ON grid_events (site_id, from_at);

-- Unsettled discharge records are walked by the reverse settler.
CREATE INDEX transactions_unsettled_by_kind ON transactions (kind, settled, received_at);
