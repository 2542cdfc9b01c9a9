//! What end-to-end tests ask a [`TestCloud`]: the site configuration an edge would fetch,
//! record batches posted as an edge would (gzip over HTTP), the site's transactions and
//! their settlement, what ingest committed, an account's balance and the ledger audit — all
//! through the cloud's public API (HTTP or its library), never through SQL.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use voltline_cloud::money::{audit, Audit};
use voltline_cloud::store::reports::{IngestSummary, TransactionSummary};
use voltline_protocol::domain::{AccountId, SiteId};
use voltline_protocol::sync::{Ack, RecordBatch, SiteConfigDoc};
use voltline_protocol::Money;

use crate::cloud::TestCloud;
use crate::HarnessError;

impl TestCloud {
    /// `GET /v1/edges/{site}/config` with `token`, parsed and validated as the edge would.
    pub async fn site_config(
        &self,
        site: &SiteId,
        token: &str,
    ) -> Result<SiteConfigDoc, HarnessError> {
        let path = format!("/v1/edges/{site}/config");
        let body = self
            .expect(reqwest::Method::GET, &path, token, None, 200)
            .await?;
        let doc: SiteConfigDoc = serde_json::from_value(body.clone())
            .map_err(|e| HarnessError::Contract(format!("not a SiteConfigDoc ({e}): {body}")))?;
        doc.validate(site).map_err(HarnessError::Contract)?;
        Ok(doc)
    }

    /// Posts `batch` gzip-compressed to `POST {base}/v1/edges/{site}/records` (pass
    /// [`TestCloud::edge_http_base`] to go through the edge's link) and returns the ack.
    pub async fn post_records_gzip(
        &self,
        base: &str,
        token: &str,
        batch: &RecordBatch,
    ) -> Result<Ack, HarnessError> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&serde_json::to_vec(batch)?)?;
        let body = enc.finish()?;
        let url = format!("{base}/v1/edges/{}/records", batch.site);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        if status != 200 {
            return Err(HarnessError::Api {
                call: format!("POST {url}"),
                status,
                body: text,
            });
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Every transaction and discharge record stored for the site, in sequence order, with
    /// its settlement once settled.
    pub async fn transactions(
        &self,
        site: &SiteId,
    ) -> Result<Vec<TransactionSummary>, HarnessError> {
        Ok(self.store().site_transactions(site).await?)
    }

    /// The settled ones among [`TestCloud::transactions`].
    pub async fn settled_transactions(
        &self,
        site: &SiteId,
    ) -> Result<Vec<TransactionSummary>, HarnessError> {
        let mut all = self.transactions(site).await?;
        all.retain(|t| t.settled);
        Ok(all)
    }

    /// Waits (at most `within`) until at least `count` of the site's records are settled.
    pub async fn wait_settled(
        &self,
        site: &SiteId,
        count: usize,
        within: Duration,
    ) -> Result<Vec<TransactionSummary>, HarnessError> {
        eventually(
            within,
            &format!("{count} settled transactions at {site}"),
            || async {
                let settled = self.settled_transactions(site).await.ok()?;
                (settled.len() >= count).then_some(settled)
            },
        )
        .await
    }

    /// What ingest committed for the site.
    pub async fn ingest_summary(&self, site: &SiteId) -> Result<IngestSummary, HarnessError> {
        Ok(self.store().ingest_summary(site).await?)
    }

    /// How many of the site's records are committed (thinned sequences included).
    pub async fn records_ingested(&self, site: &SiteId) -> Result<u64, HarnessError> {
        Ok(self.ingest_summary(site).await?.records())
    }

    /// The account's available balance (posted balance less holds).
    pub async fn balance(&self, account: &AccountId) -> Result<Money, HarnessError> {
        self.state()
            .funds
            .available(account)
            .await
            .map_err(|e| HarnessError::Funds(e.to_string()))
    }

    /// The whole ledger read back.
    pub async fn ledger_audit(&self) -> Result<Audit, HarnessError> {
        audit(self.store())
            .await
            .map_err(|e| HarnessError::Funds(e.to_string()))
    }

    /// Checks every ledger invariant (balanced, sums equal postings, limits, replay).
    pub async fn assert_ledger_balanced(&self) -> Result<Audit, HarnessError> {
        let a = self.ledger_audit().await?;
        a.check().map_err(HarnessError::Ledger)?;
        Ok(a)
    }
}

/// Polls `probe` every 50 ms until it answers `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(
    within: Duration,
    what: &str,
    mut probe: F,
) -> Result<T, HarnessError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout(format!(
                "waited {within:?} for {what}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
