-- The journal stores one line per (transfer set, account): the set's net change to each of
-- the account's four sums (NULL: the set did not touch that sum). A settlement touches four
-- accounts but makes about twelve postings, so this is a third of the rows of
-- `ledger_postings`, which it replaces. Each sum is still the sum of its journal entries.
CREATE TABLE ledger_journal (
    id               INTEGER NOT NULL PRIMARY KEY,
    set_key          TEXT    NOT NULL,
    account          TEXT    NOT NULL,
    debits_pending   TEXT,
    debits_posted    TEXT,
    credits_pending  TEXT,
    credits_posted   TEXT,
    created_at       INTEGER NOT NULL,
    CHECK (COALESCE(debits_pending, debits_posted, credits_pending, credits_posted) IS NOT NULL)
) STRICT;
CREATE INDEX ledger_journal_by_account ON ledger_journal (account, id);

-- Earlier postings move over one line each, in their order (exact: no sum is recomputed).
INSERT INTO ledger_journal (id, set_key, account, debits_pending, debits_posted, credits_pending, credits_posted, created_at)
SELECT id, set_key, account,
       CASE field WHEN 'debits_pending' THEN delta END,
       CASE field WHEN 'debits_posted' THEN delta END,
       CASE field WHEN 'credits_pending' THEN delta END,
       CASE field WHEN 'credits_posted' THEN delta END,
       created_at
FROM ledger_postings ORDER BY id;

DROP TABLE ledger_postings;
