//! PostgreSQL reads and writes a batch in **one statement each way**: every statement is a
//! network round trip and a wake-up of the writer, and a session start's batch holds one or
//! two jobs at 1,000 starts/s, so its cost was its count of statements (eleven).
//!
//! - [`load_batch`]: one `UNION ALL` over the sets, accounts, holds, chargers and orders the
//!   batch names, each branch a key lookup (`= ANY`), its rows tagged by branch in one wide
//!   row shape (typed columns, NULL where a branch has nothing).
//! - [`write_batch`]: one statement of data-modifying CTEs (accounts over their versions, new
//!   and closed holds, sets, journal lines, orders and start commands), each an `UNNEST` of
//!   arrays, prepared once whatever the batch's size. The sub-statements run on one snapshot
//!   and never touch one row twice; foreign keys (a command's order) are checked at the
//!   statement's end, when every row is in. The counts it returns say whether each version
//!   and hold condition held; if not, the caller rolls the transaction back and replays.
//!
//! Settlement rows, rare in a start's batch, follow in their own statements.

use std::collections::BTreeMap;

use sqlx::types::Json;

use super::batch::{BatchReads, BatchWrites, Loaded, Written};
use super::rows::{account_from_row, pending_from_row, pending_state};
use super::starts::{StartFacts, StartKeys};
use crate::ledger::{PendingTransfer, TransferSet};
use crate::money::writer::StartRows;
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// One row of [`load_batch`]: tag, then the branch's columns (see the statement).
type BatchRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DbMoney>,
    Option<DbMoney>,
    Option<DbMoney>,
    Option<DbMoney>,
    Option<DbMoney>,
    Option<i64>,
    Option<DbTime>,
    Option<Json<TransferSet>>,
);

const LOAD_BATCH: &str = "\
SELECT 's'::text, idem_key, NULL::text, NULL::text, NULL::text, NULL::numeric, NULL::numeric, \
NULL::numeric, NULL::numeric, NULL::numeric, sequence, NULL::timestamptz, content \
FROM ledger_sets WHERE idem_key = ANY($1::text[]) \
UNION ALL SELECT 'a', id, normal_side, NULL, NULL, lower_limit, debits_pending, debits_posted, \
credits_pending, credits_posted, version, NULL, NULL \
FROM ledger_accounts WHERE id = ANY($2::text[]) \
UNION ALL SELECT 'p', id, debit, credit, state, amount, posted_amount, NULL, NULL, NULL, NULL, \
expires_at, NULL FROM ledger_pendings WHERE id = ANY($3::text[]) \
UNION ALL SELECT 'charger', pile_code, site_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
connector_count, NULL, NULL FROM chargers WHERE pile_code = ANY($4::text[]) \
UNION ALL SELECT 'id', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
FROM orders WHERE id = ANY($5::text[]) \
UNION ALL SELECT 'key', idempotency_key, account_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
NULL, NULL, NULL FROM orders \
WHERE (account_id, idempotency_key) IN (SELECT * FROM UNNEST($6::text[], $7::text[])) \
UNION ALL SELECT 'serial', transaction_serial, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
NULL, NULL, NULL FROM orders WHERE transaction_serial = ANY($8::text[])";

fn missing(tag: &str, column: &str) -> MoneyError {
    MoneyError::Corrupt(format!("batch read: a '{tag}' row without {column}"))
}

/// Reads what the batch names, in one statement (see the module doc).
pub async fn load_batch(
    conn: &mut sqlx::PgConnection,
    reads: &BatchReads<'_>,
) -> Result<Loaded, MoneyError> {
    let keys = StartKeys::of(reads.starts);
    let (key_accounts, key_keys): (Vec<String>, Vec<String>) = keys.keys.iter().cloned().unzip();
    let rows: Vec<BatchRow> = sqlx::query_as(LOAD_BATCH)
        .bind(reads.keys)
        .bind(reads.accounts)
        .bind(reads.pendings)
        .bind(&keys.piles)
        .bind(&keys.ids)
        .bind(key_accounts)
        .bind(key_keys)
        .bind(&keys.serials)
        .fetch_all(&mut *conn)
        .await?;
    let mut loaded = Loaded {
        sets: Vec::new(),
        accounts: Vec::new(),
        pendings: Vec::new(),
        refused: Vec::new(),
    };
    let mut facts = StartFacts::default();
    for (tag, id, t2, t3, t4, m1, m2, m3, m4, m5, int, at, set) in rows {
        match tag.as_str() {
            "s" => loaded.sets.push((
                id,
                int.ok_or_else(|| missing("s", "a sequence"))?,
                set.ok_or_else(|| missing("s", "content"))?.0,
            )),
            "a" => {
                let sum = |m: Option<DbMoney>| m.ok_or_else(|| missing("a", "a sum"));
                loaded.accounts.push(account_from_row((
                    id,
                    t2.ok_or_else(|| missing("a", "a side"))?,
                    m1,
                    sum(m2)?,
                    sum(m3)?,
                    sum(m4)?,
                    sum(m5)?,
                    int.ok_or_else(|| missing("a", "a version"))?,
                ))?)
            }
            "p" => loaded.pendings.push(pending_from_row((
                id,
                t2.ok_or_else(|| missing("p", "a debit"))?,
                t3.ok_or_else(|| missing("p", "a credit"))?,
                m1.ok_or_else(|| missing("p", "an amount"))?,
                at,
                t4.ok_or_else(|| missing("p", "a state"))?,
                m2,
            ))?),
            other => facts.record(other, id, t2, int)?,
        }
    }
    loaded.refused = facts.refusals(reads.starts);
    Ok(loaded)
}

const WRITE_BATCH: &str = "\
WITH a AS (\
 UPDATE ledger_accounts SET debits_pending = v.dp, debits_posted = v.dq, credits_pending = v.cp, \
 credits_posted = v.cq, version = ledger_accounts.version + 1, lease_token = $7, updated_at = $8 \
 FROM UNNEST($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], $6::int8[]) \
 AS v (id, dp, dq, cp, cq, ver) \
 WHERE ledger_accounts.id = v.id AND ledger_accounts.version = v.ver RETURNING 1), \
hn AS (\
 INSERT INTO ledger_pendings (id, set_key, debit, credit, amount, expires_at, state, posted_amount, updated_at) \
 SELECT i, k, d, c, m, e, s, p, $8 FROM UNNEST($9::text[], $10::text[], $11::text[], $12::text[], \
 $13::numeric[], $14::timestamptz[], $15::text[], $16::numeric[]) \
 WITH ORDINALITY AS u (i, k, d, c, m, e, s, p, n) ORDER BY n), \
hc AS (\
 UPDATE ledger_pendings SET state = v.st, posted_amount = v.amt, updated_at = $8 \
 FROM UNNEST($17::text[], $18::text[], $19::numeric[]) AS v (id, st, amt) \
 WHERE ledger_pendings.id = v.id AND (ledger_pendings.state = 'open') IS TRUE RETURNING 1), \
s AS (\
 INSERT INTO ledger_sets (idem_key, reason, order_id, content, created_at) \
 SELECT k, r, o, c::jsonb, $8 FROM UNNEST($20::text[], $21::text[], $22::text[], $23::text[]) \
 WITH ORDINALITY AS u (k, r, o, c, n) ORDER BY n RETURNING idem_key, sequence), \
j AS (\
 INSERT INTO ledger_journal (set_key, account, debits_pending, debits_posted, credits_pending, \
 credits_posted, created_at) \
 SELECT k, a, dp, dq, cp, cq, $8 FROM UNNEST($24::text[], $25::text[], $26::numeric[], \
 $27::numeric[], $28::numeric[], $29::numeric[]) WITH ORDINALITY AS u (k, a, dp, dq, cp, cq, n) \
 ORDER BY n), \
o AS (\
 INSERT INTO orders (id, account_id, site_id, pile_code, connector, kind, payment_method, \
 limit_amount, limit_energy_mwh, state, hold_id, transaction_serial, idempotency_key, created_at, \
 updated_at, version) \
 SELECT i, a, s, p, c, k, m, la, le, 'pending', h, t, ik, $8, $8, 1 FROM UNNEST($30::text[], \
 $31::text[], $32::text[], $33::text[], $34::int8[], $35::text[], $36::text[], $37::numeric[], \
 $38::int8[], $39::text[], $40::text[], $41::text[]) \
 WITH ORDINALITY AS u (i, a, s, p, c, k, m, la, le, h, t, ik, n) ORDER BY n), \
c AS (\
 INSERT INTO commands (id, site_id, order_id, kind, payload, state, expires_at, created_at, \
 updated_at, attempts) \
 SELECT i, s, o, k, p::jsonb, 'queued', e, $8, $8, 0 FROM UNNEST($42::text[], $43::text[], \
 $44::text[], $45::text[], $46::text[], $47::timestamptz[]) \
 WITH ORDINALITY AS u (i, s, o, k, p, e, n) ORDER BY n) \
SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM hc), \
COALESCE((SELECT array_agg(idem_key) FROM s), '{}'), \
COALESCE((SELECT array_agg(sequence) FROM s), '{}')";

/// The columns of new holds, as arrays.
#[derive(Default)]
struct NewHolds {
    id: Vec<String>,
    key: Vec<String>,
    debit: Vec<String>,
    credit: Vec<String>,
    amount: Vec<DbMoney>,
    expires: Vec<Option<DbTime>>,
    state: Vec<&'static str>,
    posted: Vec<Option<DbMoney>>,
}

/// The columns of closed holds, as arrays.
#[derive(Default)]
struct ClosedHolds {
    id: Vec<String>,
    state: Vec<&'static str>,
    posted: Vec<Option<DbMoney>>,
}

/// The columns of session starts' orders and start commands, as arrays.
#[derive(Default)]
struct StartColumns {
    order_id: Vec<String>,
    account: Vec<String>,
    site: Vec<String>,
    pile: Vec<String>,
    connector: Vec<i64>,
    kind: Vec<&'static str>,
    payment_method: Vec<String>,
    limit_amount: Vec<Option<DbMoney>>,
    limit_energy: Vec<Option<i64>>,
    hold_id: Vec<Option<String>>,
    serial: Vec<Option<String>>,
    idempotency_key: Vec<Option<String>>,
    command_id: Vec<String>,
    command_site: Vec<String>,
    command_order: Vec<Option<String>>,
    command_kind: Vec<&'static str>,
    payload: Vec<String>,
    expires_at: Vec<DbTime>,
}

fn start_columns(starts: &[(usize, StartRows)]) -> Result<StartColumns, MoneyError> {
    let mut c = StartColumns::default();
    for (_, StartRows { order: o, start }) in starts {
        c.order_id.push(o.id.to_string());
        c.account.push(o.account.to_string());
        c.site.push(o.site.to_string());
        c.pile.push(o.pile.to_string());
        c.connector.push(i64::from(o.connector.get()));
        c.kind.push(o.kind.as_str());
        c.payment_method.push(o.payment_method.to_text());
        c.limit_amount.push(o.limit.amount.map(DbMoney));
        c.limit_energy.push(o.limit.energy.map(|e| e.mwh()));
        c.hold_id.push(o.hold_id.clone());
        c.serial.push(o.transaction_serial.map(|s| s.to_string()));
        c.idempotency_key.push(o.idempotency_key.clone());
        c.command_id.push(start.id.to_string());
        c.command_site.push(start.site.to_string());
        c.command_order
            .push(start.order.as_ref().map(|o| o.to_string()));
        c.command_kind
            .push(crate::domain::CommandKind::of(&start.command).as_str());
        c.payload.push(
            serde_json::to_string(&start.command)
                .map_err(|e| MoneyError::Corrupt(format!("start command {}: {e}", start.id)))?,
        );
        c.expires_at.push(DbTime::from(start.expires_at));
    }
    Ok(c)
}

fn holds(rows: &[(&PendingTransfer, bool)]) -> (NewHolds, ClosedHolds) {
    let (mut new, mut closed) = (NewHolds::default(), ClosedHolds::default());
    for (p, stored) in rows {
        let (state, posted) = pending_state(p);
        if *stored {
            closed.id.push(p.id.to_string());
            closed.state.push(state);
            closed.posted.push(posted);
        } else {
            new.id.push(p.id.to_string());
            new.key.push(p.id.key.to_string());
            new.debit.push(p.debit.to_string());
            new.credit.push(p.credit.to_string());
            new.amount.push(DbMoney(p.amount));
            new.expires.push(p.expires_at.map(DbTime::from));
            new.state.push(state);
            new.posted.push(posted);
        }
    }
    (new, closed)
}

/// Writes the batch in one statement, then its settlement rows (see the module doc).
/// `Ok(None)`: an account had moved on since it was read (the caller rolls back and
/// replays); a hold closed meanwhile is [`MoneyError::Contended`], as is a unique key
/// another instance inserted first.
pub async fn write_batch(
    conn: &mut sqlx::PgConnection,
    w: &BatchWrites<'_>,
) -> Result<Option<Written>, MoneyError> {
    let n = w.accounts.len();
    let mut acc_id = Vec::with_capacity(n);
    let mut sums: [Vec<DbMoney>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut acc_version = Vec::with_capacity(n);
    for (a, ver) in w.accounts {
        let b = &a.balance;
        acc_id.push(a.id.to_string());
        for (column, value) in sums.iter_mut().zip([
            b.debits_pending,
            b.debits_posted,
            b.credits_pending,
            b.credits_posted,
        ]) {
            column.push(DbMoney(value));
        }
        acc_version.push(*ver);
    }
    let [dp, dq, cp, cq] = sums;
    let (new, closed) = holds(w.holds);

    let n = w.sets.len();
    let (mut set_key, mut reason, mut set_order, mut content) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in w.sets {
        set_key.push(s.key.to_string());
        reason.push(format!("{:?}", s.memo.reason).to_lowercase());
        set_order.push(s.memo.order.as_ref().map(|o| o.to_string()));
        content.push(
            serde_json::to_string(*s)
                .map_err(|e| MoneyError::Corrupt(format!("transfer set {}: {e}", s.key)))?,
        );
    }

    let n = w.journal.len();
    let (mut line_key, mut line_account) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut deltas: [Vec<Option<DbMoney>>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    for line in w.journal {
        line_key.push(line.key.to_string());
        line_account.push(line.account.to_string());
        for (column, delta) in deltas.iter_mut().zip(line.deltas) {
            column.push(delta.map(DbMoney));
        }
    }
    let [ldp, ldq, lcp, lcq] = deltas;

    let starts = start_columns(w.starts)?;

    let (accounts_written, holds_closed, keys, sequences): (i64, i64, Vec<String>, Vec<i64>) =
        sqlx::query_as(WRITE_BATCH)
            .bind(acc_id)
            .bind(dp)
            .bind(dq)
            .bind(cp)
            .bind(cq)
            .bind(acc_version)
            .bind(w.lease_token)
            .bind(w.now)
            .bind(new.id)
            .bind(new.key)
            .bind(new.debit)
            .bind(new.credit)
            .bind(new.amount)
            .bind(new.expires)
            .bind(new.state)
            .bind(new.posted)
            .bind(&closed.id)
            .bind(closed.state)
            .bind(closed.posted)
            .bind(set_key)
            .bind(reason)
            .bind(set_order)
            .bind(content)
            .bind(line_key)
            .bind(line_account)
            .bind(ldp)
            .bind(ldq)
            .bind(lcp)
            .bind(lcq)
            .bind(starts.order_id)
            .bind(starts.account)
            .bind(starts.site)
            .bind(starts.pile)
            .bind(starts.connector)
            .bind(starts.kind)
            .bind(starts.payment_method)
            .bind(starts.limit_amount)
            .bind(starts.limit_energy)
            .bind(starts.hold_id)
            .bind(starts.serial)
            .bind(starts.idempotency_key)
            .bind(starts.command_id)
            .bind(starts.command_site)
            .bind(starts.command_order)
            .bind(starts.command_kind)
            .bind(starts.payload)
            .bind(starts.expires_at)
            .fetch_one(&mut *conn)
            .await?;
    if accounts_written != w.accounts.len() as i64 {
        return Ok(None);
    }
    if holds_closed != closed.id.len() as i64 {
        // Closed by another instance since it was read (its account versions catch that
        // too): replay the batch on fresh rows.
        return Err(MoneyError::Contended { attempts: 0 });
    }
    super::postgres::insert_settlements(conn, w.settlements, w.now).await?;
    let stored: BTreeMap<usize, _> = w
        .starts
        .iter()
        .map(|(i, r)| {
            (
                *i,
                crate::store::tx::stored_start(&r.order, &r.start, w.now),
            )
        })
        .collect();
    Ok(Some(Written {
        sequences: keys.into_iter().zip(sequences).collect(),
        starts: stored,
    }))
}
