//! CI check of `deploy/`: the compose file, the configs it and the units use, the systemd
//! units and the Dockerfiles are valid and agree with each other and with the code.
//!
//! No Docker engine is needed (nor started): `deploy/compose.yaml` is parsed (`yaml-rust2`,
//! with anchors, merge keys and `${VAR:-default}` interpolation resolved as Compose does with
//! an empty environment) and checked for its services, images or builds, ports, healthchecks,
//! volumes, networks and dependencies, and every file it mounts must exist. Every TOML config
//! in `deploy/` goes through the real loaders, and so does each cloud and edge service's
//! configuration as the container would see it (the image's `ENV`, the mounted file, the
//! service's environment). When the tools exist, `docker compose config -q` and
//! `systemd-analyze verify` run too; otherwise the test prints `skipped: ... because ...`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_edge::ops::config::EdgeConfig;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- compose model

/// Compose's interpolation with an empty environment: `${VAR:-default}` and `${VAR-default}`
/// give the default, `${VAR}` the empty string, `${VAR:?message}` is an error, `$$` a `$`.
fn interpolate(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix("${") {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in '{text}'"))?;
            let expr = &r[..end];
            if let Some((_, default)) = expr.split_once(":-") {
                out.push_str(default);
            } else if let Some((var, msg)) = expr.split_once(":?").or_else(|| expr.split_once('?'))
            {
                return Err(format!("'{var}' is required ({msg}) in '{text}'"));
            } else if let Some((_, default)) = expr.split_once('-') {
                out.push_str(default);
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves YAML merge keys (`<<: *anchor`, `<<: [*a, *b]`) and interpolates strings.
fn normalise(y: &Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut merged = yaml_rust2::yaml::Hash::new();
            for (k, v) in h {
                if k.as_str() != Some("<<") {
                    merged.insert(normalise(k), normalise(v));
                }
            }
            if let Some(base) = h.get(&Yaml::String("<<".into())) {
                let bases = match base {
                    Yaml::Array(a) => a.clone(),
                    other => vec![other.clone()],
                };
                for b in bases {
                    if let Yaml::Hash(bh) = normalise(&b) {
                        for (k, v) in bh {
                            merged.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Yaml::Hash(merged)
        }
        Yaml::Array(a) => Yaml::Array(a.iter().map(normalise).collect()),
        Yaml::String(s) => {
            Yaml::String(interpolate(s).unwrap_or_else(|e| panic!("compose.yaml: {e}")))
        }
        other => other.clone(),
    }
}

fn compose() -> Yaml {
    let text = read("compose.yaml");
    let docs = YamlLoader::load_from_str(&text).expect("deploy/compose.yaml is valid YAML");
    assert_eq!(docs.len(), 1, "compose.yaml holds one document");
    normalise(&docs[0])
}

fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

/// A service's environment, from the map or the `KEY=VALUE` list form.
fn environment(service: &Yaml) -> BTreeMap<String, String> {
    match &service["environment"] {
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v).unwrap_or_default())))
            .collect(),
        Yaml::Array(a) => a
            .iter()
            .filter_map(|e| {
                let (k, v) = e.as_str()?.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `(source, target)` of each volume entry in short form.
fn volumes(service: &Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|e| {
                    let mut parts = e.as_str()?.split(':');
                    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `(host address, host port, container port)` of each published port.
fn ports(service: &Yaml) -> Vec<(String, u16, u16)> {
    service["ports"]
        .as_vec()
        .map(|v| {
            v.iter()
                .map(|e| {
                    let s = scalar(e).expect("a port is a string");
                    let parts: Vec<&str> = s.split(':').collect();
                    let port = |p: &str| {
                        p.parse::<u16>()
                            .unwrap_or_else(|_| panic!("'{p}' is not a port in '{s}'"))
                    };
                    match parts.as_slice() {
                        [addr, host, container] => ((*addr).to_owned(), port(host), port(container)),
                        other => panic!("publish ports as ADDRESS:HOST:CONTAINER (got {other:?}): an unbound port listens on every interface"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The names a service answers to on its networks: its name, hostname and aliases.
fn names_of(name: &str, service: &Yaml) -> BTreeSet<String> {
    let mut names = BTreeSet::from([name.to_owned()]);
    if let Some(h) = service["hostname"].as_str() {
        names.insert(h.to_owned());
    }
    if let Some(nets) = service["networks"].as_hash() {
        for net in nets.values() {
            for a in net["aliases"].as_vec().into_iter().flatten() {
                names.extend(a.as_str().map(str::to_owned));
            }
        }
    }
    names
}

/// The `ENV` of a Dockerfile's last stage.
fn dockerfile_env(name: &str) -> BTreeMap<String, String> {
    let text = read(name).replace("\\\n", " ");
    let last_stage = text.rsplit("\nFROM ").next().unwrap_or(&text);
    let mut env = BTreeMap::new();
    for line in last_stage.lines() {
        if let Some(rest) = line.trim().strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    env.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }
    env
}

/// The config file a container reads: the compose mount of the image's config path, else the
/// file the Dockerfile copies there.
fn mounted_config(service: &Yaml, image_env: &BTreeMap<String, String>, var: &str) -> String {
    let target = image_env
        .get(var)
        .unwrap_or_else(|| panic!("the image sets no {var}"));
    match volumes(service).into_iter().find(|(_, t)| t == target) {
        Some((source, _)) => read(source.trim_start_matches("./")),
        None => String::new(),
    }
}

fn host_port(url_or_addr: &str) -> (String, u16) {
    let s = url_or_addr
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let (h, p) = s.rsplit_once(':').expect("host:port");
    (h.to_owned(), p.parse().expect("a port"))
}

// ---------------------------------------------------------------- tests

#[test]
fn compose_file_has_the_scaled_out_services_with_builds_images_and_healthchecks() {
    let c = compose();
    let services = &c["services"];
    let names = keys(services);
    let want = [
        "postgres",
        "emqx1",
        "emqx2",
        "cloud-migrate",
        "cloud1",
        "cloud2",
        "lb",
        "edge",
    ];
    for w in want {
        assert!(names.contains(w), "compose.yaml has no service '{w}'");
    }
    for name in &names {
        let s = &services[name.as_str()];
        let image = s["image"].as_str();
        let build = &s["build"];
        assert!(
            image.is_some() || !build.is_badvalue(),
            "service {name} has neither image nor build"
        );
        if let Some(image) = image {
            let tag = image.rsplit_once(':').map(|(_, t)| t);
            assert!(
                tag.is_some_and(|t| t != "latest"),
                "service {name}: pin the image's tag ({image})"
            );
        }
        if !build.is_badvalue() {
            let context = deploy_dir().join(build["context"].as_str().unwrap_or("."));
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(
                dockerfile.is_file(),
                "service {name} builds from {}, which does not exist",
                dockerfile.display()
            );
        }
        let hc = &s["healthcheck"];
        if name == "cloud-migrate" {
            assert_eq!(
                hc["disable"].as_bool(),
                Some(true),
                "the one-shot migration has no healthcheck"
            );
            assert_eq!(
                s["command"][0].as_str(),
                Some("migrate"),
                "cloud-migrate runs `migrate`"
            );
        } else {
            let test = hc["test"]
                .as_vec()
                .unwrap_or_else(|| panic!("service {name} has no healthcheck test"));
            assert!(
                matches!(
                    test.first().and_then(Yaml::as_str),
                    Some("CMD" | "CMD-SHELL")
                ),
                "service {name}: healthcheck test starts with CMD or CMD-SHELL"
            );
        }
        for dep in keys(&s["depends_on"]) {
            assert!(
                names.contains(&dep),
                "service {name} depends on unknown {dep}"
            );
            let cond = s["depends_on"][dep.as_str()]["condition"].as_str();
            assert!(
                matches!(
                    cond,
                    Some("service_healthy" | "service_completed_successfully")
                ),
                "service {name} waits for {dep} to be healthy (or, for a one-shot, done): {cond:?}"
            );
        }
        let nets = keys(&s["networks"]);
        let nets = if nets.is_empty() {
            s["networks"]
                .as_vec()
                .map(|v| {
                    v.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            nets
        };
        for net in nets {
            assert!(
                keys(&c["networks"]).contains(&net),
                "service {name} uses undeclared network {net}"
            );
        }
    }
    for cloud in ["cloud1", "cloud2"] {
        let test = format!("{:?}", services[cloud]["healthcheck"]["test"]);
        assert!(
            test.contains("/readyz"),
            "{cloud}'s healthcheck asks /readyz"
        );
        assert!(
            services[cloud]["command"].is_badvalue(),
            "{cloud} runs the image's default `serve`"
        );
    }
    assert!(format!("{:?}", services["lb"]["healthcheck"]["test"]).contains("/readyz"));
    assert_eq!(
        services["edge"]["profiles"][0].as_str(),
        Some("edge"),
        "the example edge needs a token first, so it is behind a profile"
    );
}

#[test]
fn compose_mounts_existing_files_and_declares_its_volumes() {
    let c = compose();
    let declared = keys(&c["volumes"]);
    let mut used = BTreeSet::new();
    for name in keys(&c["services"]) {
        for (source, target) in volumes(&c["services"][name.as_str()]) {
            assert!(
                target.starts_with('/'),
                "{name}: mount target {target} is absolute"
            );
            if source.starts_with("./") || source.starts_with("../") || source.starts_with('/') {
                let path = deploy_dir().join(&source);
                assert!(
                    path.exists(),
                    "{name} mounts {source}, which does not exist ({})",
                    path.display()
                );
            } else {
                assert!(
                    declared.contains(&source),
                    "{name} uses volume {source}, which the top-level volumes do not declare"
                );
                used.insert(source);
            }
        }
    }
    assert_eq!(used, declared, "every declared volume is used");
    let s = &c["services"];
    let has = |svc: &str, target: &str| volumes(&s[svc]).iter().any(|(_, t)| t == target);
    assert!(has("postgres", "/var/lib/postgresql/data"));
    assert!(has("emqx1", "/opt/emqx/data") && has("emqx2", "/opt/emqx/data"));
    assert!(has("edge", "/data"), "the edge's store is on a volume");
    assert!(has("emqx1", "/opt/emqx/etc/acl.conf") && has("emqx2", "/opt/emqx/etc/acl.conf"));
}

#[test]
fn compose_publishes_distinct_ports_on_loopback_by_default() {
    let c = compose();
    let mut seen = HashMap::new();
    for name in keys(&c["services"]) {
        for (addr, host, container) in ports(&c["services"][name.as_str()]) {
            assert_eq!(
                addr, "127.0.0.1",
                "{name}: by default a port binds loopback (VOLTLINE_BIND opens it)"
            );
            if let Some(other) = seen.insert(host, name.clone()) {
                panic!("host port {host} is published by both {other} and {name}");
            }
            let _ = container;
        }
    }
    let s = &c["services"];
    let container_ports = |svc: &str| -> Vec<u16> { ports(&s[svc]).iter().map(|p| p.2).collect() };
    assert_eq!(
        container_ports("lb"),
        vec![8080],
        "the API is published through the balancer"
    );
    assert_eq!(container_ports("emqx1"), vec![1883]);
    assert_eq!(
        container_ports("emqx2"),
        vec![1883],
        "edges may join either broker node"
    );
    for internal in ["postgres", "cloud1", "cloud2", "cloud-migrate"] {
        assert!(
            ports(&s[internal]).is_empty(),
            "{internal} is reached only inside the compose network"
        );
    }
}

#[test]
fn the_broker_is_one_emqx_cluster_of_two_nodes() {
    let c = compose();
    let s = &c["services"];
    let nodes: Vec<BTreeMap<String, String>> = ["emqx1", "emqx2"]
        .iter()
        .map(|n| environment(&s[*n]))
        .collect();
    let names: Vec<&String> = nodes.iter().map(|e| &e["EMQX_NODE_NAME"]).collect();
    assert_ne!(names[0], names[1], "each node has its own name");
    for (svc, env) in ["emqx1", "emqx2"].iter().zip(&nodes) {
        assert!(
            s[*svc]["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("emqx/emqx:5.")),
            "{svc} runs EMQX 5 (open source, clusters, MQTT 5 shared subscriptions)"
        );
        assert_eq!(env["EMQX_CLUSTER__DISCOVERY_STRATEGY"], "static");
        let seeds = &env["EMQX_CLUSTER__STATIC__SEEDS"];
        for n in &names {
            assert!(seeds.contains(n.as_str()), "{svc}'s seeds list {n}");
        }
        assert_eq!(env["EMQX_NODE__COOKIE"], nodes[0]["EMQX_NODE__COOKIE"]);
        assert_eq!(env["EMQX_AUTHORIZATION__NO_MATCH"], "deny");
        let host = env["EMQX_NODE_NAME"]
            .split_once('@')
            .map(|(_, h)| h)
            .unwrap();
        assert!(
            host.contains('.') && names_of(svc, &s[*svc]).contains(host),
            "{svc}'s node name host {host} is a dotted name the container answers to"
        );
    }
    let acl = read("emqx/acl.conf");
    let root = voltline_protocol::topics::ROOT;
    let share = format!("$share/{}/", voltline_protocol::topics::CLOUD_SHARE_GROUP);
    assert!(
        acl.contains(&format!("{share}{root}/sites/#")),
        "the cloud may use the shared group"
    );
    for channel in voltline_protocol::topics::SiteChannel::ALL {
        assert!(
            acl.contains(&format!(
                "\"{root}/sites/${{username}}/{}\"",
                channel.as_str()
            )),
            "acl.conf gives an edge its own {} topic",
            channel.as_str()
        );
    }
    assert!(
        acl.trim_end().ends_with("{deny, all}."),
        "acl.conf ends denying the rest"
    );
}

/// The cloud's configuration as a compose service's container sees it.
fn cloud_service_config(c: &Yaml, svc: &str) -> CloudConfig {
    let service = &c["services"][svc];
    let image_env = dockerfile_env("Dockerfile.cloud");
    let text = mounted_config(service, &image_env, "VOLTLINE_CLOUD_CONFIG");
    let env = image_env.into_iter().chain(environment(service));
    CloudConfig::from_parts(&text, &format!("compose service {svc}"), env)
        .unwrap_or_else(|e| panic!("{svc}: {e}"))
}

#[test]
fn two_cloud_instances_share_postgres_and_the_broker_cluster_behind_the_balancer() {
    let c = compose();
    let s = &c["services"];
    let brokers: BTreeSet<String> = ["emqx1", "emqx2"]
        .iter()
        .flat_map(|n| names_of(n, &s[*n]))
        .collect();
    let mut client_ids = BTreeSet::new();
    let mut databases = BTreeSet::new();
    for svc in ["cloud1", "cloud2"] {
        let cfg = cloud_service_config(&c, svc);
        assert_eq!(cfg.mqtt.mode, MqttMode::External, "{svc} joins the broker");
        assert!(
            brokers.contains(&cfg.mqtt.broker_host),
            "{svc}'s broker {} is an EMQX node",
            cfg.mqtt.broker_host
        );
        assert_eq!(cfg.mqtt.broker_port, 1883);
        assert!(!cfg.mqtt.username.is_empty() && !cfg.mqtt.password.is_empty());
        assert!(
            client_ids.insert(cfg.mqtt.client_id.clone()),
            "{svc}'s client id is its own"
        );
        let url = cfg.database_url().expect("a database URL").to_owned();
        assert!(
            url.starts_with("postgres://") && url.contains("@postgres:5432/"),
            "{svc}: {url}"
        );
        databases.insert(url);
        assert_eq!(cfg.http.listen.to_string(), "0.0.0.0:8080");
        assert!(
            cfg.bills.enabled,
            "{svc} runs the bill job (the lease keeps it once)"
        );
    }
    assert_eq!(databases.len(), 1, "both instances use the same database");
    let migrate = cloud_service_config(&c, "cloud-migrate");
    assert_eq!(
        migrate.database_url(),
        databases.iter().next().map(String::as_str)
    );
    let hosts: BTreeSet<String> = ["cloud1", "cloud2"]
        .iter()
        .map(|svc| cloud_service_config(&c, svc).mqtt.broker_host)
        .collect();
    assert_eq!(
        hosts.len(),
        2,
        "the instances join different nodes of the cluster"
    );

    let haproxy = read("haproxy.cfg");
    let servers: BTreeSet<(String, u16)> = haproxy
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "server").then_some(())?;
            let _name = w.next()?;
            Some(host_port(w.next()?))
        })
        .collect();
    assert_eq!(
        servers,
        BTreeSet::from([("cloud1".to_owned(), 8080), ("cloud2".to_owned(), 8080)]),
        "haproxy balances the two instances' HTTP ports"
    );
    assert!(haproxy.contains("uri /readyz") && haproxy.contains("expect status 200"));
    assert!(haproxy.contains("bind :8080"));
    assert!(
        haproxy.contains("timeout tunnel"),
        "the /v1/events WebSocket stays open"
    );
}

#[test]
fn the_example_edge_reaches_a_broker_node_and_the_balancer() {
    let c = compose();
    let s = &c["services"];
    let service = &s["edge"];
    let image_env = dockerfile_env("Dockerfile.edge");
    let text = match volumes(service)
        .into_iter()
        .find(|(_, t)| Some(t) == image_env.get("VOLTLINE_EDGE_CONFIG"))
    {
        Some((source, _)) => read(source.trim_start_matches("./")),
        // The image bakes deploy/edge.example.toml in as its config.
        None => read("edge.example.toml"),
    };
    let env = image_env.into_iter().chain(environment(service));
    let cfg = EdgeConfig::from_parts(&text, env).unwrap_or_else(|e| panic!("edge: {e}"));
    let (mqtt_host, mqtt_port) = cfg.cloud_mqtt().expect("cloud.mqtt");
    let brokers: BTreeSet<String> = ["emqx1", "emqx2"]
        .iter()
        .flat_map(|n| names_of(n, &s[*n]))
        .collect();
    assert!(
        brokers.contains(&mqtt_host),
        "the edge's broker {mqtt_host} is an EMQX node"
    );
    assert_eq!(mqtt_port, 1883);
    assert_eq!(
        host_port(&cfg.cloud.http),
        ("lb".to_owned(), 8080),
        "the edge's HTTP goes through the balancer"
    );
    assert_eq!(
        cfg.site.data_dir,
        PathBuf::from("/data"),
        "the store is on the /data volume"
    );
    assert_eq!(
        cfg.tcp.listen.ip().to_string(),
        "0.0.0.0",
        "chargers reach the container"
    );
}

#[test]
fn every_toml_config_in_deploy_loads_with_the_real_loader() {
    let mut seen = 0;
    for entry in std::fs::read_dir(deploy_dir()).expect("deploy/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("readable");
        let no_env = std::iter::empty::<(String, String)>();
        if name.starts_with("cloud") {
            CloudConfig::from_parts(&text, &name, no_env).unwrap_or_else(|e| panic!("{e}"));
        } else if name.starts_with("edge") {
            EdgeConfig::from_parts(&text, no_env).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            panic!("{name}: name a config cloud*.toml or edge*.toml so this test knows its loader");
        }
        seen += 1;
    }
    assert!(
        seen >= 3,
        "cloud.example.toml, cloud.compose.toml and edge.example.toml at least"
    );
    let compose_cfg = CloudConfig::from_parts(
        &read("cloud.compose.toml"),
        "cloud.compose.toml",
        std::iter::empty(),
    )
    .expect("cloud.compose.toml");
    assert_eq!(compose_cfg.mqtt.mode, MqttMode::External);
}

// ---------------------------------------------------------------- systemd units

/// `section → key → values` (a key may repeat, e.g. `SystemCallFilter`).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(name: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = None;
    for (n, line) in read(name).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(s.to_owned());
            unit.entry(s.to_owned()).or_default();
            continue;
        }
        let s = section
            .clone()
            .unwrap_or_else(|| panic!("{name}:{}: a key before any [section]", n + 1));
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not KEY=VALUE: {line}", n + 1));
        unit.entry(s)
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    unit
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    unit.get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.last())
        .map(String::as_str)
        .unwrap_or_else(|| panic!("[{section}] has no {key}"))
}

#[test]
fn systemd_units_are_hardened_and_stop_gracefully() {
    for (file, binary, config) in [
        ("voltline-edge.service", "voltline-edge", "edge"),
        ("voltline-cloud.service", "voltline-cloud", "cloud"),
    ] {
        let u = parse_unit(file);
        for section in ["Unit", "Service", "Install"] {
            assert!(u.contains_key(section), "{file} has no [{section}]");
        }
        assert!(!one(&u, "Unit", "Description").is_empty());
        assert!(one(&u, "Unit", "After").contains("network-online.target"));
        let exec = one(&u, "Service", "ExecStart");
        assert!(
            exec.starts_with(&format!("/usr/local/bin/{binary} ")),
            "{file}: ExecStart runs {binary} by absolute path: {exec}"
        );
        assert!(exec.contains(&format!("--config /etc/voltline/{config}.toml")));
        assert!(
            exec.ends_with(" run") || exec.ends_with(" serve"),
            "{file}: {exec}"
        );
        let required = [
            ("Type", "simple"),
            ("User", "voltline"),
            ("KillSignal", "SIGTERM"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("CapabilityBoundingSet", ""),
            ("UMask", "0077"),
            ("Restart", "always"),
        ];
        for (k, v) in required {
            assert_eq!(one(&u, "Service", k), v, "{file}: {k}");
        }
        let state = one(&u, "Service", "StateDirectory");
        assert_eq!(state, binary, "{file}: StateDirectory");
        assert_eq!(
            one(&u, "Service", "ReadWritePaths"),
            format!("/var/lib/{state}")
        );
        let envs = u["Service"].get("Environment").cloned().unwrap_or_default();
        let prefix = if binary == "voltline-edge" {
            "VOLTLINE_EDGE__SITE__DATA_DIR"
        } else {
            "VOLTLINE_CLOUD__DATA_DIR"
        };
        assert!(
            envs.iter()
                .any(|e| e == &format!("{prefix}=/var/lib/{state}")),
            "{file}: the data lives in the state directory"
        );
        let credentials_from_file = u["Service"].contains_key("EnvironmentFile")
            || envs.iter().any(|e| e.contains("CREDENTIAL_FILE="));
        assert!(credentials_from_file, "{file}: secrets come from a file");
        let stop: u64 = one(&u, "Service", "TimeoutStopSec")
            .parse()
            .expect("seconds");
        assert!(
            stop >= 20,
            "{file}: TimeoutStopSec leaves the graceful stop room"
        );
        assert!(u["Service"]["SystemCallFilter"]
            .iter()
            .any(|f| f == "@system-service"));
        assert_eq!(one(&u, "Install", "WantedBy"), "multi-user.target");
    }
}

#[test]
fn dockerfiles_are_multi_stage_and_run_as_a_user() {
    for (file, binary) in [
        ("Dockerfile.cloud", "voltline-cloud"),
        ("Dockerfile.edge", "voltline-edge"),
    ] {
        let text = read(file);
        let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
        assert!(froms >= 2, "{file} is multi-stage");
        assert!(text.contains(&format!("cargo build --release -p {binary} --bin {binary}")));
        assert!(text.contains(&format!("COPY --from=build /src/target/release/{binary} ")));
        let user = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{file} sets no USER"));
        assert!(
            user.trim() != "root" && user.trim() != "0",
            "{file} runs as {user}"
        );
        assert!(text.contains("STOPSIGNAL SIGTERM"));
        assert!(text.contains(&format!("ENTRYPOINT [\"{binary}\"]")));
        for line in text.lines().filter(|l| l.starts_with("COPY deploy/")) {
            let src = line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches("deploy/");
            assert!(
                deploy_dir().join(src).is_file(),
                "{file} copies {src}, which does not exist"
            );
        }
    }
    assert!(
        read("Dockerfile.edge").contains("VOLUME [\"/data\"]"),
        "the edge's store is a volume"
    );
}

// ---------------------------------------------------------------- external validators

fn tool_answers(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program} is not installed ({e})")),
    }
}

#[test]
fn docker_compose_config_accepts_the_compose_file() {
    if let Err(why) = tool_answers("docker", &["compose", "version"]) {
        println!("skipped: docker compose config -q because {why}");
        return;
    }
    let file = deploy_dir().join("compose.yaml");
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(&file)
        .args(["config", "-q"])
        .output()
        .expect("running docker compose");
    assert!(
        out.status.success(),
        "docker compose config -q refused deploy/compose.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if let Err(why) = tool_answers("systemd-analyze", &["--version"]) {
        println!("skipped: systemd-analyze verify because {why}");
        return;
    }
    // The binaries are not installed here: verify copies whose ExecStart runs /bin/true
    // with the same arguments, so every other key is still checked.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut paths = Vec::new();
    for (file, binary) in [
        ("voltline-edge.service", "voltline-edge"),
        ("voltline-cloud.service", "voltline-cloud"),
    ] {
        let text = read(file).replace(
            &format!("ExecStart=/usr/local/bin/{binary} "),
            "ExecStart=/bin/true ",
        );
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("writing the copy");
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .current_dir(dir.path())
        .output()
        .expect("running systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = text.lines().filter(|l| l.contains(".service")).collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify found problems:\n{text}"
    );
}

#[test]
fn interpolation_follows_compose() {
    assert_eq!(interpolate("${A:-x}:1883").unwrap(), "x:1883");
    assert_eq!(interpolate("${A-y}").unwrap(), "y");
    assert_eq!(interpolate("a${B}b").unwrap(), "ab");
    assert_eq!(interpolate("$$HOME").unwrap(), "$HOME");
    assert!(interpolate("${C:?set C}").is_err());
}
