-- Credit payments through providers (issue #10), postgres dialect. Mirrors
-- sqlite/0007_payments.sql: instants TIMESTAMPTZ, money NUMERIC.
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
    authorised_amount  NUMERIC     NOT NULL,
    state              TEXT        NOT NULL CHECK (state IN ('authorising', 'authorise_unknown', 'declined',
                           'authorised', 'cancelling', 'cancelled', 'capturing', 'capture_unknown', 'captured',
                           'capture_declined', 'collected')),
    capture_amount     NUMERIC,
    transaction_ref    TEXT,
    attempts           BIGINT      NOT NULL DEFAULT 0,
    next_attempt_at    TIMESTAMPTZ NOT NULL,
    last_error         TEXT,
    dunning            TEXT        CHECK (dunning IS NULL OR dunning IN ('open', 'reminded', 'final_notice', 'collections', 'settled')),
    dunning_step       BIGINT      NOT NULL DEFAULT 0,
    dunning_next_at    TIMESTAMPTZ,
    version            BIGINT      NOT NULL DEFAULT 0,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_due ON payments (state, next_attempt_at);

-- Refunds of captured credit payments; `out_refund_no` is derived from the order and the
-- caller's request id, so a retried refund is the same refund at the provider.
CREATE TABLE payment_refunds (
    out_refund_no  TEXT        NOT NULL PRIMARY KEY,
    order_id       TEXT        NOT NULL REFERENCES payments (order_id),
    request_id     TEXT        NOT NULL,
    amount         NUMERIC     NOT NULL,
    reason         TEXT        NOT NULL,
    state          TEXT        NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts       BIGINT      NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error     TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (order_id, request_id)
);
CREATE INDEX payment_refunds_due ON payment_refunds (state, next_attempt_at);

-- Verified provider notifications seen, by the provider's own id: a duplicate is answered
-- without being applied again (applying it again would be harmless too).
CREATE TABLE payment_notifications (
    provider        TEXT        NOT NULL,
    notification_id TEXT        NOT NULL,
    out_trade_no    TEXT        NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, notification_id)
);
