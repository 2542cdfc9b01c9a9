//! The scaled-out shape: services, mounts, ports, the broker cluster, the two cloud
//! instances and the example edge; every TOML config in `deploy/` through the real loaders.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_edge::ops::config::EdgeConfig;
use yaml_rust2::Yaml;

use crate::compose_model::*;
use crate::{deploy_dir, read};

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
