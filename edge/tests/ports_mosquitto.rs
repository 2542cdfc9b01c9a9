//! Interop with the real Mosquitto command-line clients against the EMBEDDED broker (through
//! the front end): with one charger's credentials, `mosquitto_sub` sees only that charger's
//! down topic, and `mosquitto_pub` reaches the site only on the charger's own up topic.
//!
//! Needs `mosquitto_sub` and `mosquitto_pub` on PATH. Without them the test prints why it is
//! skipped and passes, unless `VOLTLINE_CI` or `VOLTLINE_TEST_MQTT` is set (then it fails).

mod ports_support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ports_support::*;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{EdgeMetrics, Port, ReasonLabels};
use voltline_edge::ports::mqtt::{MqttPort, MqttPortConfig};
use voltline_protocol::domain::PileCode;
use voltline_protocol::topics;

fn have(binary: &str) -> bool {
    std::process::Command::new(binary)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// True when the test should run; panics when the binaries are required but missing.
fn mosquitto_available() -> bool {
    let missing: Vec<_> = ["mosquitto_sub", "mosquitto_pub"]
        .into_iter()
        .filter(|b| !have(b))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var_os("VOLTLINE_CI").is_some()
        || std::env::var_os("VOLTLINE_TEST_MQTT").is_some();
    assert!(
        !required,
        "{missing:?} not found on PATH but VOLTLINE_CI/VOLTLINE_TEST_MQTT is set: install the \
         mosquitto-clients package"
    );
    println!(
        "skipped: mosquitto interop test because {missing:?} is not on PATH (install \
         mosquitto-clients, or set VOLTLINE_CI=1 to make this a failure)"
    );
    false
}

fn base_args(port: u16, p: &PileCode, pass: &str) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-i".into(),
        p.to_string(),
        "-u".into(),
        p.to_string(),
        "-P".into(),
        pass.into(),
        "-V".into(),
        "mqttv311".into(),
    ]
}

async fn run(binary: &str, args: Vec<String>, stdin: Option<Vec<u8>>) -> (String, String) {
    let mut cmd = Command::new(binary);
    cmd.args(&args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut s = child.stdin.take().unwrap();
        s.write_all(&data).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("mosquitto client did not finish")
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn acl(metrics: &EdgeMetrics, reason: &'static str) -> u64 {
    metrics
        .acl_denied
        .get_or_create(&ReasonLabels {
            port: Port::Mqtt,
            reason,
        })
        .get()
}

#[tokio::test]
async fn mosquitto_clients_with_a_chargers_credentials_see_only_that_chargers_topics() {
    if !mosquitto_available() {
        return;
    }
    let (tx, rx) = mpsc::channel(1_024);
    let metrics: Arc<EdgeMetrics> = ports_support::metrics();
    let shutdown = CancellationToken::new();
    let cfg = MqttPortConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..MqttPortConfig::default()
    };
    let port = MqttPort::start(cfg, directory(2), tx, metrics.clone(), shutdown.clone())
        .await
        .unwrap();
    let mut site = Site::spawn(rx);
    let tcp_port = port.local_addr().port();
    let (me, other) = (pile(1), pile(2));

    // 1. Everything ("#") and the other pile's topics are refused.
    for filter in [
        "#".to_string(),
        topics::pile_down(&other),
        topics::all_piles_up(),
    ] {
        let mut args = base_args(tcp_port, &me, &password(&me));
        args.extend([
            "-t".into(),
            filter.clone(),
            "-v".into(),
            "-W".into(),
            "2".into(),
        ]);
        let (out, err) = run("mosquitto_sub", args, None).await;
        assert!(out.is_empty(), "mosquitto_sub on {filter} received: {out}");
        assert!(!err.is_empty() || out.is_empty(), "{err}");
    }
    assert!(acl(&metrics, "subscribe") >= 3);

    // 2. Its own down topic works, and only its own frames arrive there.
    let mut args = base_args(tcp_port, &me, &password(&me));
    args.extend([
        "-t".into(),
        topics::pile_down(&me),
        "-v".into(),
        "-C".into(),
        "1".into(),
        "-W".into(),
        "10".into(),
    ]);
    let sub = tokio::spawn(run("mosquitto_sub", args, None));
    site.expect("mosquitto_sub connected as the charger", |s| {
        matches!(s, Seen::Connected(p, _) if *p == me).then_some(())
    })
    .await;
    let senders = site.senders.clone();
    let feeder = tokio::spawn(async move {
        for i in 0..40u16 {
            let me_sender = senders.lock().unwrap().get(&me).cloned();
            if let Some(s) = me_sender {
                let _ = s.send(heartbeat(me, 500 + i));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let (out, err) = sub.await.unwrap();
    feeder.abort();
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("nothing received: {err}"));
    assert!(
        line.starts_with(&format!("{} ", topics::pile_down(&me))),
        "unexpected: {line}"
    );

    // 3. mosquitto_pub reaches the site on its own up topic only.
    let frame = bytes(&heartbeat(me, 42));
    for (topic, allowed) in [
        (topics::pile_up(&other), false),
        (topics::pile_up(&me), true),
    ] {
        let mut args = base_args(tcp_port, &me, &password(&me));
        args.extend(["-t".into(), topic, "-q".into(), "1".into(), "-s".into()]);
        let (_, err) = run("mosquitto_pub", args, Some(frame.clone())).await;
        if allowed {
            assert!(err.is_empty(), "{err}");
        }
    }
    site.expect(
        "the frame mosquitto_pub sent on its own topic",
        |s| match s {
            Seen::Frame(p, _, f) if f.sequence == 42 => {
                assert_eq!(
                    *p, me,
                    "a frame published on another pile's topic reached the site"
                );
                Some(())
            }
            _ => None,
        },
    )
    .await;
    assert_eq!(acl(&metrics, "publish"), 1);
    // A wrong password is refused.
    let mut args = base_args(tcp_port, &me, "wrong");
    args.extend(["-t".into(), topics::pile_up(&me), "-m".into(), "x".into()]);
    let (_, err) = run("mosquitto_pub", args, None).await;
    assert!(
        !err.is_empty(),
        "mosquitto_pub with a wrong password should report a refusal"
    );
    assert_eq!(metrics.auth_refused_count(Port::Mqtt, "bad_credential"), 1);
    shutdown.cancel();
    tokio::time::timeout(WAIT, port.stopped()).await.unwrap();
}
