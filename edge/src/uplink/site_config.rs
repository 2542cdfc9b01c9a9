//! The site config from the cloud: fetched at start, on a config notice naming a newer
//! version, and periodically (jittered, so a fleet does not fetch in step); parsed as
//! [`SiteConfigDoc`], checked (`validate`, [`SiteConfig::from_doc`]), cached with
//! `Store::put_site_config` (the version only moves forward: an older document is ignored)
//! and its chargers merged into the [`ChargerDirectory`] (chargers configured locally are
//! kept). At start the cached config's chargers are merged first, so a site that restarts
//! offline still admits the cloud's chargers.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voltline_protocol::sync::SiteConfigDoc;

use super::backoff::Backoff;
use super::replay::read_bounded;
use super::Ctx;
use crate::ports::ChargerDirectory;
use crate::store::SiteConfig;

/// What a fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetched {
    /// Cached and applied.
    Applied(u64),
    /// Not newer than the cached version.
    Ignored(u64),
}

/// The config task.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    directory: ChargerDirectory,
    mut notices: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    if let Some(cached) = ctx.store.site_config() {
        directory.merge(cached.charger_entries());
    }
    let cfg = &ctx.cfg;
    let mut backoff = Backoff::new(cfg.backoff_base_ms, cfg.backoff_cap_ms);
    let mut next_fetch = Instant::now();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            r = notices.changed() => {
                if r.is_err() {
                    return;
                }
                let announced = *notices.borrow_and_update();
                if announced <= cached_version(&ctx) {
                    continue;
                }
                tracing::info!(version = announced, "uplink: the cloud announced a new site config");
            }
            () = tokio::time::sleep_until(next_fetch) => {}
        }
        let fetched = tokio::select! {
            () = shutdown.cancelled() => return,
            f = fetch(&ctx, &directory) => f,
        };
        match fetched {
            Ok(f) => {
                backoff.reset();
                ctx.contact();
                tracing::debug!(?f, "uplink: site config fetched");
                next_fetch = Instant::now() + jittered(Duration::from_secs(cfg.config_refresh_s));
            }
            Err(reason) => {
                ctx.metrics.configs_rejected.inc();
                let delay = backoff.next_delay(&mut rand::rng());
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "uplink: site config not taken");
                next_fetch = Instant::now() + delay;
            }
        }
    }
}

fn cached_version(ctx: &Ctx) -> u64 {
    ctx.store.site_config().map_or(0, |c| c.version)
}

/// `period` ± 20 %.
fn jittered(period: Duration) -> Duration {
    let ms = period.as_millis().min(u64::MAX as u128) as u64;
    let spread = ms / 5;
    Duration::from_millis(rand::rng().random_range(ms - spread..=ms + spread).max(1))
}

async fn fetch(ctx: &Arc<Ctx>, directory: &ChargerDirectory) -> Result<Fetched, String> {
    let resp = ctx
        .http
        .get(ctx.cfg.config_url())
        .bearer_auth(&ctx.cfg.credential)
        .send()
        .await
        .map_err(|e| format!("GET config: {}", e.without_url()))?;
    let status = resp.status();
    let body = read_bounded(resp, ctx.cfg.config_max_bytes).await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("GET config answered {status}: {text}"));
    }
    let site = ctx.cfg.site.clone();
    // A large authorisation list is megabytes of JSON: parse it off the async threads.
    let config = tokio::task::spawn_blocking(move || {
        let doc: SiteConfigDoc =
            serde_json::from_slice(&body).map_err(|e| format!("malformed site config: {e}"))?;
        doc.validate(&site)?;
        SiteConfig::from_doc(doc).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the config parser failed: {e}"))??;
    let version = config.version;
    let chargers = config.charger_entries();
    let taken = ctx
        .store
        .put_site_config(config)
        .await
        .map_err(|e| format!("caching the site config: {e}"))?;
    if !taken {
        tracing::debug!(
            version,
            cached = cached_version(ctx),
            "uplink: site config not newer; ignored"
        );
        return Ok(Fetched::Ignored(version));
    }
    directory.merge(chargers);
    ctx.metrics.configs_applied.inc();
    tracing::info!(version, "uplink: site config applied");
    Ok(Fetched::Applied(version))
}
