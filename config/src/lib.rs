//! `voltline-config`: how Voltline's daemons read their configuration — embedded defaults
//! (the type's `Default`), then a TOML file, then environment variables `PREFIX__SECTION__KEY`
//! (double underscores separate levels: `VOLTLINE_EDGE__TCP__LISTEN=0.0.0.0:8768`). A value in
//! the environment is read as a TOML value when it parses as one (`5`, `true`, `"x"`,
//! `[1, 2]`) and as a plain string otherwise.
//!
//! It owns only the layering; each daemon owns its config type, its defaults and its checks.
//! It must never read a file or the environment by itself except in [`load`], so the
//! layering is tested with plain strings and pairs.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the path given with --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

/// Defaults, then `file` if given, then the variables of the process environment that start
/// with `prefix` (e.g. `VOLTLINE_EDGE__`).
pub fn load<T: DeserializeOwned>(file: Option<&Path>, prefix: &str) -> Result<T, ConfigError> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?,
        None => String::new(),
    };
    let origin = file.map_or_else(|| "defaults".to_owned(), |p| p.display().to_string());
    from_parts(&text, &origin, prefix, std::env::vars())
}

/// Defaults, then the TOML `text` (named `origin` in errors), then the `prefix` variables
/// among `env`. Fields the type marks `#[serde(default)]` fall back to its defaults.
pub fn from_parts<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    prefix: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let invalid = |origin: &str, message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| invalid(origin, e.to_string()))?;
    let mut applied = Vec::new();
    for (key, value) in env {
        let Some(path) = key.strip_prefix(prefix) else {
            continue;
        };
        applied.push(key.clone());
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            return Err(invalid(&key, "empty key level".into()));
        }
        set_path(&mut table, &parts, env_value(&value)).map_err(|m| invalid(&key, m))?;
    }
    // A value that does not fit may come from the file or from an override: name both.
    let origin = if applied.is_empty() {
        origin.to_owned()
    } else {
        applied.sort();
        format!("{origin} with {}", applied.join(", "))
    };
    table
        .try_into()
        .map_err(|e: toml::de::Error| invalid(&origin, e.to_string()))
}

/// An environment value as TOML when it parses as a TOML value, else as a string.
pub fn env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.to_owned())),
        Err(_) => toml::Value::String(value.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, parts: &[String], value: toml::Value) -> Result<(), String> {
    match parts {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("'{first}' is a value, not a section")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Conf {
        name: String,
        port: u16,
        inner: Inner,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        flag: bool,
        list: Vec<u8>,
    }

    impl Default for Conf {
        fn default() -> Self {
            Conf {
                name: "default".into(),
                port: 1,
                inner: Inner::default(),
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let c: Conf = from_parts("", "defaults", "APP__", env(&[])).unwrap();
        assert_eq!(c, Conf::default());
        let c: Conf = from_parts(
            "port = 8\n[inner]\nflag = true",
            "f.toml",
            "APP__",
            env(&[
                ("APP__PORT", "9"),
                ("APP__INNER__LIST", "[1, 2]"),
                ("APP__NAME", "plain text, not TOML"),
                ("OTHER__PORT", "7"),
            ]),
        )
        .unwrap();
        assert_eq!(c.port, 9);
        assert!(c.inner.flag);
        assert_eq!(c.inner.list, vec![1, 2]);
        assert_eq!(c.name, "plain text, not TOML");
    }

    #[test]
    fn errors_name_where_the_bad_value_came_from() {
        let e = from_parts::<Conf>("bogus = 1", "edge.toml", "APP__", env(&[])).unwrap_err();
        assert!(
            e.to_string().contains("edge.toml") && e.to_string().contains("bogus"),
            "{e}"
        );
        let e =
            from_parts::<Conf>("", "defaults", "APP__", env(&[("APP__PORT", "x")])).unwrap_err();
        assert!(e.to_string().contains("defaults"), "{e}");
        let e = from_parts::<Conf>("", "d", "APP__", env(&[("APP__PORT__X", "1")])).unwrap_err();
        assert!(e.to_string().contains("APP__PORT__X"), "{e}");
        let e = from_parts::<Conf>("", "d", "APP__", env(&[("APP____X", "1")])).unwrap_err();
        assert!(e.to_string().contains("empty key level"), "{e}");
    }
}
