//! A TCP proxy between the edge and the broker: `cut` drops every connection and refuses new
//! ones (the link to the cloud is down), `restore` lets them through again. It also reads the
//! MQTT packets going by, to see when the edge acknowledges a delivery: `on_edge_puback`
//! gets the payload of the PUBLISH that the edge's PUBACK acknowledges, and `delivered` lists
//! the QoS 1+ deliveries to the edge in the order they went by.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

type Hook = Arc<dyn Fn(&str, &[u8]) + Send + Sync>;

/// Deliveries to the edge by packet id: (topic, payload).
type Deliveries = Arc<Mutex<HashMap<u16, (String, Vec<u8>)>>>;

/// Every QoS 1+ delivery to the edge in order: (topic, payload).
type Delivered = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<u64>,
    hook: Arc<Mutex<Option<Hook>>>,
    delivered: Delivered,
}

impl Proxy {
    /// A proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Odd = cut, even = open; every change ends the connections of the previous state.
        let (up, rx) = watch::channel(0u64);
        let hook: Arc<Mutex<Option<Hook>>> = Arc::default();
        let h = hook.clone();
        let delivered: Delivered = Arc::default();
        let log = delivered.clone();
        tokio::spawn(async move {
            loop {
                let Ok((edge, _)) = listener.accept().await else {
                    return;
                };
                let state = *rx.borrow();
                if state % 2 == 1 {
                    drop(edge);
                    continue;
                }
                tokio::spawn(pipe(
                    edge,
                    upstream,
                    rx.clone(),
                    state,
                    h.clone(),
                    log.clone(),
                ));
            }
        });
        Proxy {
            addr,
            up,
            hook,
            delivered,
        }
    }

    /// The QoS 1+ deliveries to the edge so far, in order: (topic, payload).
    pub fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        self.delivered.lock().unwrap().clone()
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.up.send_modify(|s| {
            if *s % 2 == 0 {
                *s += 1;
            }
        });
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.send_modify(|s| {
            if *s % 2 == 1 {
                *s += 1;
            }
        });
    }

    /// Calls `f(topic, payload)` whenever the edge acknowledges a delivery.
    pub fn on_edge_puback(&self, f: impl Fn(&str, &[u8]) + Send + Sync + 'static) {
        *self.hook.lock().unwrap() = Some(Arc::new(f));
    }
}

async fn pipe(
    edge: TcpStream,
    upstream: SocketAddr,
    mut state: watch::Receiver<u64>,
    at: u64,
    hook: Arc<Mutex<Option<Hook>>>,
    log: Delivered,
) {
    let Ok(broker) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = edge.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (mut er, mut ew) = edge.into_split();
    let (mut br, mut bw) = broker.into_split();
    // pkid -> (topic, payload) of deliveries to the edge.
    let deliveries: Deliveries = Arc::default();
    let d = deliveries.clone();
    let down = async move {
        let mut parser = Parser::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match br.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            for (kind, flags, body) in parser.feed(&buf[..n]) {
                if kind == 3 && (flags >> 1) & 3 > 0 && body.len() >= 2 {
                    let tl = u16::from_be_bytes([body[0], body[1]]) as usize;
                    if body.len() >= 4 + tl {
                        let topic = String::from_utf8_lossy(&body[2..2 + tl]).into_owned();
                        let pkid = u16::from_be_bytes([body[2 + tl], body[3 + tl]]);
                        let payload = body[4 + tl..].to_vec();
                        log.lock().unwrap().push((topic.clone(), payload.clone()));
                        d.lock().unwrap().insert(pkid, (topic, payload));
                    }
                }
            }
            if ew.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let upward = async move {
        let mut parser = Parser::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match er.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            for (kind, _, body) in parser.feed(&buf[..n]) {
                if kind == 4 && body.len() >= 2 {
                    let pkid = u16::from_be_bytes([body[0], body[1]]);
                    let delivery = deliveries.lock().unwrap().remove(&pkid);
                    let f = hook.lock().unwrap().clone();
                    if let (Some((topic, payload)), Some(f)) = (delivery, f) {
                        f(&topic, &payload);
                    }
                }
            }
            if bw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let changed = async move {
        while *state.borrow_and_update() == at {
            if state.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = down => {}
        () = upward => {}
        () = changed => {}
    }
}

/// Splits an MQTT byte stream into (packet type, flags, body).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(&first) = self.buf.first() {
            let (mut len, mut mult, mut i) = (0usize, 1usize, 1usize);
            let complete_header = loop {
                let Some(&b) = self.buf.get(i) else {
                    break false;
                };
                len += (b & 0x7f) as usize * mult;
                mult *= 128;
                i += 1;
                if b & 0x80 == 0 {
                    break true;
                }
            };
            if !complete_header || self.buf.len() < i + len {
                break;
            }
            out.push((first >> 4, first & 0x0f, self.buf[i..i + len].to_vec()));
            self.buf.drain(..i + len);
        }
        out
    }
}
