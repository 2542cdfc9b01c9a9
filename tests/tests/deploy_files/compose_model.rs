//! The compose file as Compose reads it: interpolation, merge keys, and accessors for
//! services, their environment, volumes and ports.

use std::collections::{BTreeMap, BTreeSet};

use yaml_rust2::{Yaml, YamlLoader};

use crate::read;

/// Compose's interpolation with an empty environment: `${VAR:-default}` and `${VAR-default}`
/// give the default, `${VAR}` the empty string, `${VAR:?message}` is an error, `$$` a `$`.
pub(crate) fn interpolate(text: &str) -> Result<String, String> {
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
pub(crate) fn normalise(y: &Yaml) -> Yaml {
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

pub(crate) fn compose() -> Yaml {
    let text = read("compose.yaml");
    let docs = YamlLoader::load_from_str(&text).expect("deploy/compose.yaml is valid YAML");
    assert_eq!(docs.len(), 1, "compose.yaml holds one document");
    normalise(&docs[0])
}

pub(crate) fn keys(y: &Yaml) -> BTreeSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

/// A service's environment, from the map or the `KEY=VALUE` list form.
pub(crate) fn environment(service: &Yaml) -> BTreeMap<String, String> {
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
pub(crate) fn volumes(service: &Yaml) -> Vec<(String, String)> {
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
pub(crate) fn ports(service: &Yaml) -> Vec<(String, u16, u16)> {
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
pub(crate) fn names_of(name: &str, service: &Yaml) -> BTreeSet<String> {
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
pub(crate) fn dockerfile_env(name: &str) -> BTreeMap<String, String> {
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
pub(crate) fn mounted_config(
    service: &Yaml,
    image_env: &BTreeMap<String, String>,
    var: &str,
) -> String {
    let target = image_env
        .get(var)
        .unwrap_or_else(|| panic!("the image sets no {var}"));
    match volumes(service).into_iter().find(|(_, t)| t == target) {
        Some((source, _)) => read(source.trim_start_matches("./")),
        None => String::new(),
    }
}

pub(crate) fn host_port(url_or_addr: &str) -> (String, u16) {
    let s = url_or_addr
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let (h, p) = s.rsplit_once(':').expect("host:port");
    (h.to_owned(), p.parse().expect("a port"))
}

#[test]
fn interpolation_follows_compose() {
    assert_eq!(interpolate("${A:-x}:1883").unwrap(), "x:1883");
    assert_eq!(interpolate("${A-y}").unwrap(), "y");
    assert_eq!(interpolate("a${B}b").unwrap(), "ab");
    assert_eq!(interpolate("$$HOME").unwrap(), "$HOME");
    assert!(interpolate("${C:?set C}").is_err());
}
