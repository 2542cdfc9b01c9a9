-- The settlement loop walks unsettled records of a kind in (received_at, pile_code, serial)
-- order from a cursor. With the whole key in the index the walk is a range scan that stops
-- after one pass's rows, where the index on (kind, settled, received_at) left every
-- unsettled row to be read and sorted on every pass.
CREATE INDEX transactions_settlement_walk ON transactions (kind, settled, received_at, pile_code, serial);
DROP INDEX transactions_unsettled_by_kind;
