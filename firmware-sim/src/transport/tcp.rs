//! TCP: the pile connects to the edge's charger port; frames go through `FrameCodec`.
//!
//! Buffers are small on purpose (10,000 links must fit in a couple of hundred MiB): the read
//! buffer starts at [`READ_CAPACITY`] bytes (a frame is at most 204), and writes go straight
//! to the socket without a write buffer.

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use voltline_protocol::FrameCodec;

use super::Incoming;

/// Initial read buffer size.
pub const READ_CAPACITY: usize = 256;

pub struct TcpLink {
    read: FramedRead<OwnedReadHalf, FrameCodec>,
    write: OwnedWriteHalf,
}

impl TcpLink {
    pub async fn connect(addr: &str) -> Result<TcpLink, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (r, w) = stream.into_split();
        Ok(TcpLink {
            read: FramedRead::with_capacity(r, FrameCodec::new(), READ_CAPACITY),
            write: w,
        })
    }

    pub async fn recv(&mut self) -> Incoming {
        match self.read.next().await {
            Some(Ok(Ok(frame))) => Incoming::Frame(frame),
            Some(Ok(Err(e))) => Incoming::Bad(e),
            Some(Err(e)) => Incoming::Closed(e.to_string()),
            None => Incoming::Closed("closed by the platform".into()),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.write.write_all(bytes).await.map_err(|e| e.to_string())
    }

    pub async fn close(mut self) {
        let _ = self.write.shutdown().await;
    }
}
