-- Credit payments through providers (issue #10), sqlite dialect. Mirrors
-- postgres/0007_payments.sql: instants INTEGER microseconds since 1970 (UTC), money the exact decimal string of yuan (TEXT); tables are STRICT.
-- (0006 is reserved for the V2G discharge records; sqlx applies whatever this build carries
-- that the database lacks, so the numbering gap is harmless.)

-- One credit payment per order. `out_trade_no` is derived from the order (the provider-side
-- number, so a retried capture is the same capture) and unique; `state` is the capture state
-- machine's (payment/state.rs) and changes only by an update conditional on `version`.
CREATE TABLE payments (
    order_id           TEXT        NOT NULL PRIMARY KEY,
    account_id         TEXT        NOT NULL,
    operator_id        TEXT        NOT NULL,
    provider           TEXT        NOT NULL,
    out_trade_no       TEXT        NOT NULL UNIQUE,
    hold_id            TEXT        NOT NULL UNIQUE,
    provider_ref       TEXT,
    authorised_amount  TEXT     NOT NULL,
    state              TEXT        NOT NULL CHECK (state IN ('authorising', 'authorise_unknown', 'declined',
                           'authorised', 'cancelling', 'cancelled', 'capturing', 'capture_unknown', 'captured',
                           'capture_declined', 'collected')),
    capture_amount     TEXT,
    transaction_ref    TEXT,
    attempts           INTEGER      NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER NOT NULL,
    last_error         TEXT,
    dunning            TEXT        CHECK (dunning IS NULL OR dunning IN ('open', 'reminded', 'final_notice', 'collections', 'settled')),
    dunning_step       INTEGER      NOT NULL DEFAULT 0,
    dunning_next_at    INTEGER,
    version            INTEGER      NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_due ON payments (state, next_attempt_at);

-- Refunds of captured credit payments; `out_refund_no` is derived from the order and the
-- caller's request id, so a retried refund is the same refund at the provider.
CREATE TABLE payment_refunds (
    out_refund_no  TEXT        NOT NULL PRIMARY KEY,
    order_id       TEXT        NOT NULL REFERENCES payments (order_id),
    request_id     TEXT        NOT NULL,
    amount         TEXT     NOT NULL,
    reason         TEXT        NOT NULL,
    state          TEXT        NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts       INTEGER      NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (order_id, request_id)
) STRICT;
CREATE INDEX payment_refunds_due ON payment_refunds (state, next_attempt_at);

-- Verified provider notifications seen, by the provider's own id: a duplicate is answered
-- without being applied again (applying it again would be harmless too).
CREATE TABLE payment_notifications (
    provider        TEXT        NOT NULL,
    notification_id TEXT        NOT NULL,
    out_trade_no    TEXT        NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (provider, notification_id)
) STRICT;
