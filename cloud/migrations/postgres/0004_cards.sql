-- Cards and the site power limit, PostgreSQL dialect. Mirrors sqlite/0004_cards.sql; money is
-- NUMERIC, instants TIMESTAMPTZ (UTC).

-- A YKC physical card number (16 upper-case hex digits) belongs to one driver account, with
-- the most one session it starts at a pile without the cloud (offline) may cost. A site's
-- edge is sent the cards of every account its operator scopes.
CREATE TABLE cards (
    card_no        TEXT    NOT NULL PRIMARY KEY CHECK (length(card_no) = 16),
    account_id     TEXT    NOT NULL REFERENCES accounts (id),
    offline_limit  NUMERIC NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX cards_by_account ON cards (account_id);

-- The site's grid connection limit in watts (NULL: none configured).
ALTER TABLE sites ADD COLUMN max_power_w BIGINT CHECK (max_power_w > 0);
