//! The load benchmark's platform: serves every pile with the automatic answers, counting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;
use voltline_protocol::FrameCodec;

use super::{HarnessConfig, Responder};

/// What the sink counted.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub connections: AtomicU64,
    pub frames: AtomicU64,
    pub errors: AtomicU64,
    pub records: AtomicU64,
}

/// Serves every pile that connects to `listener` with the automatic answers of `config`
/// (records acknowledged, starts authorised), counting frames, until the task is dropped.
/// Minimal work per frame: this is the load benchmark's counterpart.
pub async fn serve_sink(listener: TcpListener, mut config: HarnessConfig, stats: Arc<SinkStats>) {
    config.ack_records = true;
    config.authorise_starts = true;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let stats = stats.clone();
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let mut responder = Responder {
            read: FramedRead::with_capacity(r, FrameCodec::new(), 256),
            writer: Arc::new(tokio::sync::Mutex::new(w)),
            pile: Arc::new(std::sync::Mutex::new(None)),
            config: config.clone(),
            serials: 0,
        };
        tokio::spawn(async move {
            while let Some(item) = responder.read.next().await {
                match item {
                    Ok(Ok(frame)) => {
                        stats.frames.fetch_add(1, Ordering::Relaxed);
                        if frame.frame_type() == 0x3B {
                            stats.records.fetch_add(1, Ordering::Relaxed);
                        }
                        if responder.answer(&frame).await.is_err() {
                            return;
                        }
                    }
                    Ok(Err(_)) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => return,
                }
            }
        });
    }
}
