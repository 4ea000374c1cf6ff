//! The node's settings and where each came from. Precedence, lowest first:
//! built-in defaults < the TOML file < `PEERGROUP_*` environment variables
//! < command-line flags (`docs/configuration.md` lists every setting).

use std::{
    fmt,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use libp2p::Multiaddr;
use peergroup_node::{DEFAULT_PORT, control::DEFAULT_API_PORT};
use serde::{Deserialize, Serialize};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Default,
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value with its source.
#[derive(Debug, Clone)]
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Setting {
            value,
            source: Source::Default,
        }
    }

    /// Replaces the value when `value` is set.
    fn layer(&mut self, value: Option<T>, source: Source) {
        if let Some(value) = value {
            *self = Setting { value, source };
        }
    }
}

/// The configuration file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    listen: Option<Vec<Multiaddr>>,
    bootstrap: Option<Vec<Multiaddr>>,
    mdns: Option<bool>,
    kademlia: Option<bool>,
    api_listen: Option<SocketAddr>,
}

/// What the command line set (the flags of `run`, and `--data-dir`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags {
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) listen: Vec<Multiaddr>,
    pub(crate) bootstrap: Vec<Multiaddr>,
    pub(crate) no_mdns: bool,
    pub(crate) no_kademlia: bool,
    pub(crate) api_listen: Option<SocketAddr>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The configuration file read, if any.
    pub(crate) file: Option<PathBuf>,
    pub(crate) data_dir: Setting<Option<PathBuf>>,
    pub(crate) listen: Setting<Vec<Multiaddr>>,
    pub(crate) bootstrap: Setting<Vec<Multiaddr>>,
    pub(crate) mdns: Setting<bool>,
    pub(crate) kademlia: Setting<bool>,
    pub(crate) api_listen: Setting<SocketAddr>,
}

/// The default data directory: `$XDG_DATA_HOME/peergroup`, else
/// `$HOME/.local/share/peergroup`.
fn default_data_dir() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("peergroup"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/peergroup"))
}

/// The default configuration file: `$XDG_CONFIG_HOME/peergroup/config.toml`,
/// else `$HOME/.config/peergroup/config.toml` (read only if it exists).
fn default_config_file() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("peergroup/config.toml"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/peergroup/config.toml"))
}

/// Reads an environment variable; `Ok(None)` when unset or empty.
fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not valid UTF-8"),
    }
}

fn env_addrs(name: &'static str) -> Result<Option<Vec<Multiaddr>>> {
    env_var(name)?
        .map(|v| {
            v.split(',')
                .map(|a| {
                    a.trim()
                        .parse::<Multiaddr>()
                        .with_context(|| format!("{name}: {a:?} is not a multiaddr"))
                })
                .collect()
        })
        .transpose()
}

fn env_bool(name: &'static str) -> Result<Option<bool>> {
    env_var(name)?
        .map(|v| match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => bail!("{name}: {other:?} is not a boolean (true or false)"),
        })
        .transpose()
}

/// The configuration file to read: `config` (`--config`), else
/// `PEERGROUP_CONFIG`, else the default file when it exists.
fn config_file(config: Option<&Path>) -> Option<PathBuf> {
    config
        .map(Path::to_path_buf)
        .or_else(|| {
            env_var("PEERGROUP_CONFIG")
                .ok()
                .flatten()
                .map(PathBuf::from)
        })
        .or_else(|| default_config_file().filter(|p| p.exists()))
}

fn read_config_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))
}

impl Settings {
    /// Resolves the settings: defaults, then `config` (or the default file
    /// when it exists), then the environment, then `flags`.
    pub(crate) fn resolve(config: Option<&Path>, flags: &Flags) -> Result<Settings> {
        let mut settings = Settings {
            file: None,
            data_dir: Setting::default(default_data_dir()),
            listen: Setting::default(vec![
                format!("/ip4/0.0.0.0/tcp/{DEFAULT_PORT}")
                    .parse()
                    .expect("a valid multiaddr"),
            ]),
            bootstrap: Setting::default(Vec::new()),
            mdns: Setting::default(true),
            kademlia: Setting::default(true),
            api_listen: Setting::default(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_API_PORT))),
        };

        // The file.
        if let Some(path) = config_file(config) {
            let text = read_config_file(&path)?;
            let file: File = toml::from_str(&text)
                .with_context(|| format!("configuration file {}", path.display()))?;
            let source = Source::File(path.clone());
            settings
                .data_dir
                .layer(file.data_dir.map(Some), source.clone());
            settings.listen.layer(file.listen, source.clone());
            settings.bootstrap.layer(file.bootstrap, source.clone());
            settings.mdns.layer(file.mdns, source.clone());
            settings.kademlia.layer(file.kademlia, source.clone());
            settings.api_listen.layer(file.api_listen, source);
            settings.file = Some(path);
        }

        // The environment.
        settings.data_dir.layer(
            env_var("PEERGROUP_DATA_DIR")?.map(|v| Some(PathBuf::from(v))),
            Source::Env("PEERGROUP_DATA_DIR"),
        );
        settings.listen.layer(
            env_addrs("PEERGROUP_LISTEN")?,
            Source::Env("PEERGROUP_LISTEN"),
        );
        settings.bootstrap.layer(
            env_addrs("PEERGROUP_BOOTSTRAP")?,
            Source::Env("PEERGROUP_BOOTSTRAP"),
        );
        settings
            .mdns
            .layer(env_bool("PEERGROUP_MDNS")?, Source::Env("PEERGROUP_MDNS"));
        settings.kademlia.layer(
            env_bool("PEERGROUP_KADEMLIA")?,
            Source::Env("PEERGROUP_KADEMLIA"),
        );
        settings.api_listen.layer(
            env_var("PEERGROUP_API_LISTEN")?
                .map(|v| {
                    v.trim().parse::<SocketAddr>().with_context(|| {
                        format!(
                            "PEERGROUP_API_LISTEN: {v:?} is not an address such as 127.0.0.1:3588"
                        )
                    })
                })
                .transpose()?,
            Source::Env("PEERGROUP_API_LISTEN"),
        );

        // The flags.
        settings
            .data_dir
            .layer(flags.data_dir.clone().map(Some), Source::Flag("--data-dir"));
        settings.listen.layer(
            Some(flags.listen.clone()).filter(|l| !l.is_empty()),
            Source::Flag("--listen"),
        );
        settings.bootstrap.layer(
            Some(flags.bootstrap.clone()).filter(|l| !l.is_empty()),
            Source::Flag("--bootstrap"),
        );
        settings
            .mdns
            .layer(flags.no_mdns.then_some(false), Source::Flag("--no-mdns"));
        settings.kademlia.layer(
            flags.no_kademlia.then_some(false),
            Source::Flag("--no-kademlia"),
        );
        settings
            .api_listen
            .layer(flags.api_listen, Source::Flag("--api-listen"));
        Ok(settings)
    }

    /// The data directory alone, for the commands that only talk to a
    /// running node: the flag, else `PEERGROUP_DATA_DIR`, else the file's
    /// `data_dir`, else the default. Nothing else is read, so a run-only
    /// setting that is wrong (`PEERGROUP_MDNS=perhaps`, a bad `listen` in
    /// the file) does not stop `status`; the file is read only when
    /// neither the flag nor the variable names the directory, and then only
    /// a file that is not TOML or whose `data_dir` is not a path is an error.
    pub(crate) fn resolve_data_dir(
        config: Option<&Path>,
        flag: Option<PathBuf>,
    ) -> Result<Option<PathBuf>> {
        if let Some(dir) = flag {
            return Ok(Some(dir));
        }
        if let Some(dir) = env_var("PEERGROUP_DATA_DIR")? {
            return Ok(Some(PathBuf::from(dir)));
        }
        if let Some(path) = config_file(config) {
            let text = read_config_file(&path)?;
            let table: toml::Table = toml::from_str(&text)
                .with_context(|| format!("configuration file {}", path.display()))?;
            match table.get("data_dir") {
                None => {}
                Some(toml::Value::String(dir)) => return Ok(Some(PathBuf::from(dir))),
                Some(other) => bail!(
                    "configuration file {}: data_dir is {}, not a path",
                    path.display(),
                    other.type_str()
                ),
            }
        }
        Ok(default_data_dir())
    }

    /// The data directory, or why there is none.
    pub(crate) fn data_dir(&self) -> Result<&Path> {
        self.data_dir
            .value
            .as_deref()
            .context("no data directory: pass --data-dir (neither HOME nor XDG_DATA_HOME is set)")
    }

    /// The rows of `config show`: (key, value as TOML, source).
    pub(crate) fn rows(&self) -> Vec<(&'static str, toml::Value, String)> {
        fn value<T: Serialize>(v: &T) -> toml::Value {
            toml::Value::try_from(v).unwrap_or_else(|e| toml::Value::String(format!("<{e}>")))
        }
        let strings = |addrs: &[Multiaddr]| addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        vec![
            (
                "data_dir",
                match &self.data_dir.value {
                    Some(dir) => value(&dir.display().to_string()),
                    None => toml::Value::String(String::new()),
                },
                self.data_dir.source.to_string(),
            ),
            (
                "listen",
                value(&strings(&self.listen.value)),
                self.listen.source.to_string(),
            ),
            (
                "bootstrap",
                value(&strings(&self.bootstrap.value)),
                self.bootstrap.source.to_string(),
            ),
            (
                "mdns",
                value(&self.mdns.value),
                self.mdns.source.to_string(),
            ),
            (
                "kademlia",
                value(&self.kademlia.value),
                self.kademlia.source.to_string(),
            ),
            (
                "api_listen",
                value(&self.api_listen.value.to_string()),
                self.api_listen.source.to_string(),
            ),
        ]
    }
}
