-- Cards and the site power limit, SQLite dialect. Mirrors postgres/0004_cards.sql; money is
-- the exact decimal string of yuan (TEXT), instants are INTEGER microseconds since 1970 (UTC).

-- A YKC physical card number (16 upper-case hex digits) belongs to one driver account, with
-- the most one session it starts at a pile without the cloud (offline) may cost. A site's
-- edge is sent the cards of every account its operator scopes.
CREATE TABLE cards (
    card_no        TEXT    NOT NULL PRIMARY KEY CHECK (length(card_no) = 16),
    account_id     TEXT    NOT NULL REFERENCES accounts (id),
    offline_limit  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX cards_by_account ON cards (account_id);

-- The site's grid connection limit in watts (NULL: none configured).
ALTER TABLE sites ADD COLUMN max_power_w INTEGER CHECK (max_power_w > 0);
