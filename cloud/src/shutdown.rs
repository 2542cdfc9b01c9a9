//! Graceful shutdown as a small type: one trigger, any number of waiters (the HTTP server,
//! WebSocket streams, the dispatcher, the MQTT tasks), each of which finishes its current
//! step and returns.

use std::sync::Arc;

use tokio::sync::watch;

/// Cloneable; [`Shutdown::trigger`] once, every [`Shutdown::wait`] returns.
#[derive(Clone, Debug)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(Arc::new(watch::channel(false).0))
    }
}

impl Shutdown {
    /// Asks every waiter to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once triggered (at once if already).
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}
