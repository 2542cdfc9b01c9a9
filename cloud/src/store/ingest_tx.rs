//! The in-transaction body of ingest, written once and expanded per backend next to the
//! steps of `tx.rs` (it calls them: `fetch_command`, `change_command_state`, ...). `$bulk`
//! is the backend's bulk-insert module (`ingest_sqlite` or `ingest_postgres`). The contract
//! it implements is documented in `ingest.rs`.

macro_rules! ingest_fns {
    ($conn:ty, $bulk:path) => {
        use voltline_protocol::sync::{Ack, CommandOutcome, ConnectorState, RecordBatch, RecordBody};
        use $bulk as bulk;

        use crate::domain::{ingest, OrderKind};
        use crate::store::{to_i64, to_u64, IngestOutcome};

        /// The stored text of a connector state.
        fn connector_state_text(state: ConnectorState) -> &'static str {
            match state {
                ConnectorState::Available => "available",
                ConnectorState::Plugged => "plugged",
                ConnectorState::Charging => "charging",
                ConnectorState::Discharging => "discharging",
                ConnectorState::Faulted => "faulted",
                ConnectorState::Offline => "offline",
            }
        }

        /// Ingests one validated batch: see `store/ingest.rs` for the contract.
        pub(crate) async fn ingest_batch(
            conn: &mut $conn,
            batch: &RecordBatch,
            now: DbTime,
        ) -> StoreResult<IngestOutcome> {
            let site = batch.site.as_str();
            let acked: i64 = sqlx::query_scalar(
                "INSERT INTO edge_ingest (site_id, acked_seq, updated_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (site_id) DO UPDATE SET updated_at = excluded.updated_at RETURNING acked_seq",
            )
            .bind(site)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| match StoreError::on_insert(e, "site", site) {
                StoreError::Invalid { .. } => StoreError::not_found("site", site),
                other => other,
            })?;
            let acked = to_u64(acked, "acked sequence")?;
            let seqs: Vec<u64> = batch.records.iter().map(|r| r.seq).collect();
            let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
                return Err(StoreError::invalid("record batch", "it holds no records"));
            };
            let (first_i, last_i) = (to_i64(first, "sequence")?, to_i64(last, "sequence")?);
            let pending_in_range: Vec<u64> = if last > acked {
                let rows: Vec<i64> = sqlx::query_scalar(
                    "SELECT seq FROM edge_pending_seqs WHERE site_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
                )
                .bind(site)
                .bind(first_i)
                .bind(last_i)
                .fetch_all(&mut *conn)
                .await?;
                rows.into_iter()
                    .map(|s| to_u64(s, "pending sequence"))
                    .collect::<StoreResult<_>>()?
            } else {
                Vec::new()
            };
            let plan = ingest::plan(acked, &seqs, &pending_in_range);

            let mut readings = Vec::new();
            let mut duplicate_transactions = 0usize;
            let mut command_results_applied = 0usize;
            for &i in &plan.fresh {
                let record = &batch.records[i];
                let seq = to_i64(record.seq, "sequence")?;
                let at = DbTime::from(record.at);
                match &record.body {
                    RecordBody::MeterReading(m) => readings.push(bulk::ReadingRow::new(seq, at, m)),
                    RecordBody::Transaction(t) => {
                        let order = match &t.authorisation {
                            voltline_protocol::sync::Authorisation::Order { order } => Some(order.as_str()),
                            _ => None,
                        };
                        let fresh = insert_transaction(
                            conn,
                            batch,
                            seq,
                            TxFields {
                                pile: t.record.pile_code.to_string(),
                                serial: t.record.serial.to_string(),
                                kind: OrderKind::Charge,
                                order,
                                energy_mwh: t.record.total_energy.mwh(),
                                total_amount: Some(DbMoney(t.record.total_amount)),
                                edge_cost: t.edge_cost.map(DbMoney),
                                record: serde_json::to_value(t).map_err(|e| StoreError::invalid("transaction record", e.to_string()))?,
                            },
                            now,
                        )
                        .await?;
                        duplicate_transactions += usize::from(!fresh);
                    }
                    RecordBody::Discharge(d) => {
                        let fresh = insert_transaction(
                            conn,
                            batch,
                            seq,
                            TxFields {
                                pile: d.record.pile_code.to_string(),
                                serial: d.record.serial.to_string(),
                                kind: OrderKind::Discharge,
                                order: d.order.as_ref().map(|o| o.as_str()),
                                energy_mwh: d.record.exported_energy.mwh(),
                                total_amount: None,
                                edge_cost: None,
                                record: serde_json::to_value(d).map_err(|e| StoreError::invalid("discharge record", e.to_string()))?,
                            },
                            now,
                        )
                        .await?;
                        duplicate_transactions += usize::from(!fresh);
                    }
                    RecordBody::CommandResult(c) => {
                        let to = CommandState::from_outcome(&c.outcome);
                        let reason = match &c.outcome {
                            CommandOutcome::Rejected { reason } | CommandOutcome::Failed { reason } => Some(reason.as_str()),
                            _ => None,
                        };
                        let mut applied = false;
                        if let Some(cmd) = fetch_command(conn, c.command_id.as_str()).await? {
                            if cmd.site == batch.site && cmd.state.transition(to).is_ok() {
                                applied = change_command_state(conn, cmd, to, reason, now)
                                    .await?
                                    .is_some();
                            }
                        }
                        command_results_applied += usize::from(applied);
                        sqlx::query(
                            "INSERT INTO command_results (site_id, seq, command_id, outcome, reason, applied, recorded_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (site_id, seq) DO NOTHING",
                        )
                        .bind(site)
                        .bind(seq)
                        .bind(c.command_id.as_str())
                        .bind(to.as_str())
                        .bind(reason)
                        .bind(applied)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    RecordBody::ConnectorStatus(s) => {
                        insert_event(conn, site, seq, "connector_status", &record.body, at).await?;
                        let state = connector_state_text(s.state);
                        sqlx::query(
                            "INSERT INTO connector_states (pile_code, connector, site_id, state, seq, changed_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (pile_code, connector) DO UPDATE SET site_id = excluded.site_id, \
                             state = excluded.state, seq = excluded.seq, changed_at = excluded.changed_at \
                             WHERE connector_states.seq < excluded.seq OR connector_states.site_id <> excluded.site_id",
                        )
                        .bind(s.pile.to_string())
                        .bind(i64::from(s.connector.get()))
                        .bind(site)
                        .bind(state)
                        .bind(seq)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    RecordBody::Alarm(_) => {
                        insert_event(conn, site, seq, "alarm", &record.body, at).await?;
                    }
                    // Telemetry the edge dropped at its disk bound: nothing to store, but the
                    // sequence counts toward the contiguous acknowledgement.
                    RecordBody::Thinned => {}
                }
            }
            bulk::insert_readings(conn, site, &readings).await?;

            let mut ack = plan.ack;
            let mut pending_consumed = pending_in_range.first().is_some_and(|&p| p <= ack);
            if plan.continues_past_batch {
                let next = to_i64(ack + 1, "sequence")?;
                let end: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(p.seq) FROM edge_pending_seqs p WHERE p.site_id = $1 AND p.seq >= $2 \
                     AND NOT EXISTS (SELECT 1 FROM edge_pending_seqs q WHERE q.site_id = $1 AND q.seq = p.seq + 1) \
                     AND EXISTS (SELECT 1 FROM edge_pending_seqs r WHERE r.site_id = $1 AND r.seq = $2)",
                )
                .bind(site)
                .bind(next)
                .fetch_one(&mut *conn)
                .await?;
                if let Some(end) = end {
                    ack = to_u64(end, "pending sequence")?;
                    pending_consumed = true;
                }
            }
            let above: Vec<i64> = plan
                .fresh
                .iter()
                .map(|&i| batch.records[i].seq)
                .filter(|&s| s > ack)
                .map(|s| to_i64(s, "sequence"))
                .collect::<StoreResult<_>>()?;
            bulk::insert_pending(conn, site, &above).await?;
            if pending_consumed {
                sqlx::query("DELETE FROM edge_pending_seqs WHERE site_id = $1 AND seq <= $2")
                    .bind(site)
                    .bind(to_i64(ack, "sequence")?)
                    .execute(&mut *conn)
                    .await?;
            }
            if ack > acked {
                sqlx::query("UPDATE edge_ingest SET acked_seq = $2 WHERE site_id = $1")
                    .bind(site)
                    .bind(to_i64(ack, "sequence")?)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(IngestOutcome {
                ack: Ack::new(batch.site.clone(), ack),
                fresh: plan.fresh.len(),
                duplicates: batch.records.len() - plan.fresh.len(),
                duplicate_transactions,
                command_results_applied,
            })
        }

        struct TxFields<'a> {
            pile: String,
            serial: String,
            kind: OrderKind,
            order: Option<&'a str>,
            energy_mwh: i64,
            total_amount: Option<DbMoney>,
            edge_cost: Option<DbMoney>,
            record: serde_json::Value,
        }

        /// Stores a transaction or discharge record once per (pile, serial); `false` when it
        /// was stored before. The pile must be registered at the batch's site.
        async fn insert_transaction(
            conn: &mut $conn,
            batch: &RecordBatch,
            seq: i64,
            f: TxFields<'_>,
            now: DbTime,
        ) -> StoreResult<bool> {
            let site_of_pile: Option<String> =
                sqlx::query_scalar("SELECT site_id FROM chargers WHERE pile_code = $1")
                    .bind(&f.pile)
                    .fetch_optional(&mut *conn)
                    .await?;
            if site_of_pile.as_deref() != Some(batch.site.as_str()) {
                return Err(StoreError::invalid(
                    "record batch",
                    format!(
                        "record {seq} is a {} record of pile {} which is not registered at site {}: register the pile at this site, then the edge's retry succeeds",
                        f.kind, f.pile, batch.site
                    ),
                ));
            }
            let inserted = sqlx::query(
                "INSERT INTO transactions (pile_code, serial, kind, site_id, seq, order_id, energy_mwh, total_amount, edge_cost, record, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (pile_code, serial) DO NOTHING",
            )
            .bind(&f.pile)
            .bind(&f.serial)
            .bind(f.kind.as_str())
            .bind(batch.site.as_str())
            .bind(seq)
            .bind(f.order)
            .bind(f.energy_mwh)
            .bind(f.total_amount)
            .bind(f.edge_cost)
            .bind(Json(&f.record))
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                if let Some(order) = f.order {
                    if let Some(o) = fetch_order(conn, order).await? {
                        if o.site == batch.site && o.pile.to_string() == f.pile {
                            if let Ok(next) = o.state.apply(o.kind, OrderEvent::RecordReceived) {
                                write_order_state(conn, o, next, now).await?;
                            }
                        }
                    }
                }
            }
            Ok(inserted)
        }

        async fn insert_event(
            conn: &mut $conn,
            site: &str,
            seq: i64,
            kind: &str,
            body: &RecordBody,
            at: DbTime,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO edge_events (site_id, seq, kind, body, recorded_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (site_id, seq) DO NOTHING",
            )
            .bind(site)
            .bind(seq)
            .bind(kind)
            .bind(Json(body))
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
    };
}
pub(crate) use ingest_fns;
