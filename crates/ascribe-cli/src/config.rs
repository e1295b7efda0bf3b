//! `ascribe.toml`: where every command finds its ledger, and how `ascribe serve` runs.
//!
//! A value comes from, in increasing precedence: its default, the configuration file
//! (`--config FILE`, `ASCRIBE_CONFIG`, else `<home>/ascribe.toml` when it exists), its
//! `ASCRIBE_*` environment variable (the field's path in capitals, dots as underscores:
//! `upstream.timeout` is `ASCRIBE_UPSTREAM_TIMEOUT`), and a command-line flag where one
//! exists. Unknown keys in the file are refused with their line; a bad value in a variable is
//! refused with the variable's name. [`FIELDS`] is the one list of fields: the example file
//! `ascribe init` writes, `ascribe serve --check-config` and `docs/configuration.md` all
//! follow it, and a test keeps it equal to [`Config`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The file looked for in the home directory when no `--config` is given.
pub const FILE_NAME: &str = "ascribe.toml";

/// One configuration field: its dotted path, its default as TOML text (`None`: unset, the
/// documented behaviour applies) and one sentence for people.
pub struct Field {
    /// `section.key`, or `key` at the top level.
    pub path: &'static str,
    /// The default, as it would be written in the file.
    pub default: Option<&'static str>,
    /// What it does.
    pub doc: &'static str,
}

impl Field {
    /// The environment variable that overrides the field.
    pub fn env(&self) -> String {
        format!(
            "ASCRIBE_{}",
            self.path.replace('.', "_").to_ascii_uppercase()
        )
    }
}

/// Every field, in the order the example file lists them.
pub const FIELDS: &[Field] = &[
    Field {
        path: "home",
        default: None,
        doc: "Directory of ledger.key, ledger.pub and the default SQLite database. \
              Unset: ./ascribe-data (flag --home).",
    },
    Field {
        path: "db",
        default: None,
        doc: "The ledger database, sqlite://PATH or postgres://USER@HOST:PORT/DB. \
              Unset: sqlite://<home>/ledger.db (flag --db).",
    },
    Field {
        path: "listen",
        default: Some("\"127.0.0.1:8080\""),
        doc: "Address `ascribe serve` listens on, HOST:PORT; port 0 picks a free one \
              (flag --listen).",
    },
    Field {
        path: "log.level",
        default: None,
        doc: "Which log lines to write: a level (error, warn, info, debug, trace) or a \
              tracing filter such as \"ascribe_gateway=debug,warn\". Unset: info for \
              `ascribe serve`, warn for other commands.",
    },
    Field {
        path: "log.format",
        default: Some("\"text\""),
        doc: "\"text\" (for people) or \"json\" (one JSON object per line); logs go to \
              stderr (flag --log-format).",
    },
    Field {
        path: "upstream.connect_timeout",
        default: Some("\"10s\""),
        doc: "How long to wait for a TCP connection to an upstream.",
    },
    Field {
        path: "upstream.timeout",
        default: Some("\"300s\""),
        doc: "How long to wait for an upstream's response headers, and between two chunks \
              of a stream, before the call is recorded as upstream_timeout \
              (flag --upstream-timeout).",
    },
    Field {
        path: "upstream.deadline",
        default: Some("\"600s\""),
        doc: "Longest a call may wait on its upstream in all: from sending it to the last \
              byte of a whole answer, or to the first event of a stream that names the \
              served model; past it the call is recorded as upstream_timeout (a 504).",
    },
    Field {
        path: "upstream.max_response_bytes",
        default: Some("67108864"),
        doc: "Largest non-streamed upstream answer read, in bytes; a larger one is \
              recorded as upstream_error and the caller gets a 502.",
    },
    Field {
        path: "limits.max_request_bytes",
        default: Some("16777216"),
        doc: "Largest request body accepted from a caller, in bytes; a larger one is a 413.",
    },
    Field {
        path: "limits.max_concurrent_reads",
        default: Some("8"),
        doc: "Ledger reads (keys, registry, audit answers) run at once; each has a pooled \
              database connection.",
    },
    Field {
        path: "probe.interval",
        default: Some("\"0s\""),
        doc: "How often to probe the identity of self-hosted deployments; \"0s\" never \
              does (flag --probe-interval).",
    },
    Field {
        path: "ledger.tree_head_interval",
        default: Some("\"1s\""),
        doc: "How often the gateway signs a tree head while entries arrive, and how long \
              it waits idle before signing one over the last entries.",
    },
    Field {
        path: "ledger.max_batch",
        default: Some("1024"),
        doc: "Most entries committed in one ledger transaction (group commit).",
    },
    Field {
        path: "ledger.lock_timeout",
        default: Some("\"5s\""),
        doc: "How long the gateway's ledger writer waits for a lock another connection \
              holds (SQLite's busy timeout, PostgreSQL's lock_timeout) before the write \
              fails and its callers get a 503; from 1ms to 1h.",
    },
    Field {
        path: "metrics.enabled",
        default: Some("true"),
        doc: "Whether GET /metrics answers (Prometheus text format, no key needed).",
    },
    Field {
        path: "telemetry.otlp_traces",
        default: Some("false"),
        doc: "Export one OpenTelemetry span per inference over OTLP/HTTP, to the endpoint \
              the standard OTEL_EXPORTER_OTLP_* variables name.",
    },
    Field {
        path: "shutdown.grace_period",
        default: Some("\"30s\""),
        doc: "After SIGTERM or Ctrl-C, how long answers in flight (streams included) may \
              take to finish and be recorded before their connections are closed.",
    },
];

/// The whole configuration, every field with its default.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The home directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<PathBuf>,
    /// The ledger database URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db: Option<String>,
    /// Where `ascribe serve` listens.
    pub listen: String,
    /// Logging.
    pub log: LogSection,
    /// Calls to upstreams.
    pub upstream: UpstreamSection,
    /// What callers may send.
    pub limits: LimitsSection,
    /// Identity probes.
    pub probe: ProbeSection,
    /// The ledger writer.
    pub ledger: LedgerSection,
    /// `/metrics`.
    pub metrics: MetricsSection,
    /// OpenTelemetry.
    pub telemetry: TelemetrySection,
    /// Stopping.
    pub shutdown: ShutdownSection,
}

/// `[log]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter; `None` is the command's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Text or JSON lines.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: aligned, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[upstream]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSection {
    /// TCP connection timeout.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Response headers and inter-chunk timeout.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Whole-answer deadline.
    #[serde(with = "duration")]
    pub deadline: Duration,
    /// Largest whole answer read.
    pub max_response_bytes: usize,
}

/// `[limits]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest caller request body.
    pub max_request_bytes: usize,
    /// Reads at once.
    pub max_concurrent_reads: usize,
}

/// `[probe]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSection {
    /// Interval between identity probes; zero never probes.
    #[serde(with = "duration")]
    pub interval: Duration,
}

/// `[ledger]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerSection {
    /// How often tree heads are signed.
    #[serde(with = "duration")]
    pub tree_head_interval: Duration,
    /// Entries per transaction at most.
    pub max_batch: usize,
    /// How long the writer waits for a lock held elsewhere.
    #[serde(with = "duration")]
    pub lock_timeout: Duration,
}

/// `[metrics]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Whether `/metrics` answers.
    pub enabled: bool,
}

/// `[telemetry]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// Whether spans are exported over OTLP.
    pub otlp_traces: bool,
}

/// `[shutdown]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSection {
    /// How long answers in flight may take after a shutdown signal.
    #[serde(with = "duration")]
    pub grace_period: Duration,
}

impl Default for Config {
    fn default() -> Config {
        let gateway = ascribe_gateway::GatewayConfig::default();
        Config {
            home: None,
            db: None,
            listen: "127.0.0.1:8080".to_owned(),
            log: LogSection::default(),
            upstream: UpstreamSection {
                connect_timeout: gateway.connect_timeout,
                timeout: gateway.upstream_timeout,
                deadline: gateway.upstream_deadline,
                max_response_bytes: gateway.max_upstream_body,
            },
            limits: LimitsSection {
                max_request_bytes: gateway.max_request_body,
                max_concurrent_reads: gateway.max_readers,
            },
            probe: ProbeSection::default(),
            ledger: LedgerSection {
                tree_head_interval: gateway.tree_head_interval,
                max_batch: gateway.max_batch,
                lock_timeout: gateway.ledger_lock_timeout,
            },
            metrics: MetricsSection {
                enabled: gateway.metrics,
            },
            telemetry: TelemetrySection::default(),
            shutdown: ShutdownSection {
                grace_period: gateway.shutdown_grace,
            },
        }
    }
}

impl Default for UpstreamSection {
    fn default() -> UpstreamSection {
        Config::default().upstream
    }
}

impl Default for LimitsSection {
    fn default() -> LimitsSection {
        Config::default().limits
    }
}

impl Default for LedgerSection {
    fn default() -> LedgerSection {
        Config::default().ledger
    }
}

impl Default for MetricsSection {
    fn default() -> MetricsSection {
        Config::default().metrics
    }
}

impl Default for ShutdownSection {
    fn default() -> ShutdownSection {
        Config::default().shutdown
    }
}

/// The shortest `ledger.lock_timeout`: SQLite and PostgreSQL take it in whole milliseconds,
/// and PostgreSQL reads 0 as "wait for ever".
const MIN_LOCK_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest `ledger.lock_timeout`; callers wait on the writer that long.
const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(3600);

impl Config {
    /// Refuses values that parse but cannot work: zero timeouts and limits, a log level that
    /// would silently filter everything out.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive_durations = [
            ("upstream.connect_timeout", self.upstream.connect_timeout),
            ("upstream.timeout", self.upstream.timeout),
            ("upstream.deadline", self.upstream.deadline),
            ("ledger.tree_head_interval", self.ledger.tree_head_interval),
            ("ledger.lock_timeout", self.ledger.lock_timeout),
        ];
        for (path, value) in positive_durations {
            if value.is_zero() {
                anyhow::bail!("{path} is 0: it must be longer than zero (there is no \"never\")");
            }
        }
        let lock_timeout = self.ledger.lock_timeout;
        if !(MIN_LOCK_TIMEOUT..=MAX_LOCK_TIMEOUT).contains(&lock_timeout) {
            anyhow::bail!(
                "ledger.lock_timeout is {}: it must be from 1ms to 1h (the databases count it \
                 in whole milliseconds, and every caller waits on the writer that long)",
                humantime::format_duration(lock_timeout)
            );
        }
        let positive_counts = [
            (
                "upstream.max_response_bytes",
                self.upstream.max_response_bytes,
            ),
            ("limits.max_request_bytes", self.limits.max_request_bytes),
            (
                "limits.max_concurrent_reads",
                self.limits.max_concurrent_reads,
            ),
            ("ledger.max_batch", self.ledger.max_batch),
        ];
        for (path, value) in positive_counts {
            if value == 0 {
                anyhow::bail!("{path} is 0: it must be at least 1");
            }
        }
        if let Some(level) = &self.log.level {
            check_log_level(level)?;
        }
        Ok(())
    }

    /// The gateway's settings, from a configuration [`Config::validate`] accepted.
    pub fn gateway(&self) -> ascribe_gateway::GatewayConfig {
        let probe = self.probe.interval;
        ascribe_gateway::GatewayConfig {
            connect_timeout: self.upstream.connect_timeout,
            upstream_timeout: self.upstream.timeout,
            upstream_deadline: self.upstream.deadline,
            max_upstream_body: self.upstream.max_response_bytes,
            max_request_body: self.limits.max_request_bytes,
            probe_interval: (!probe.is_zero()).then_some(probe),
            tree_head_interval: self.ledger.tree_head_interval,
            max_batch: self.ledger.max_batch,
            ledger_lock_timeout: self.ledger.lock_timeout,
            max_readers: self.limits.max_concurrent_reads,
            metrics: self.metrics.enabled,
            shutdown_grace: self.shutdown.grace_period,
        }
    }
}

/// Levels a bare log directive may name.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A `tracing` filter reads a bare word as a target (`verbose` would mean "everything from a
/// module called verbose", which hides every line); a bare word must be a level.
fn check_log_level(filter: &str) -> anyhow::Result<()> {
    for directive in filter.split(',').map(str::trim) {
        let bare = !directive.contains('=') && !directive.contains("::");
        if bare && !LOG_LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            anyhow::bail!(
                "log.level `{filter}`: `{directive}` is not a level; use one of {} or \
                 TARGET=LEVEL (such as ascribe_gateway=debug)",
                LOG_LEVELS.join(", ")
            );
        }
    }
    Ok(())
}

/// Where a field's value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum Source {
    /// Its default.
    Default,
    /// The configuration file.
    File,
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

/// A configuration as loaded, with where each value came from.
pub struct Loaded {
    /// The values.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The source of every field that did not keep its default.
    pub sources: BTreeMap<&'static str, Source>,
}

impl Loaded {
    /// Where `path`'s value came from.
    pub fn source(&self, path: &str) -> Source {
        self.sources.get(path).cloned().unwrap_or(Source::Default)
    }

    /// Records that a flag set `path`.
    pub fn set_by_flag(&mut self, path: &'static str, flag: &str) {
        self.sources.insert(path, Source::Flag(flag.to_owned()));
    }

    /// `ASCRIBE_*` variables that name no field and are none of `also_used` (provider key
    /// variables the registry names): probably misspelt.
    pub fn unknown_variables(also_used: &[String]) -> Vec<String> {
        let known: Vec<String> = FIELDS.iter().map(Field::env).collect();
        let mut unknown: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with("ASCRIBE_") && name != "ASCRIBE_CONFIG")
            .filter(|name| !known.contains(name) && !also_used.contains(name))
            .collect();
        unknown.sort();
        unknown
    }
}

/// Loads the configuration of one command line: `--config` (or `ASCRIBE_CONFIG`), else
/// `<home>/ascribe.toml` when it exists, then the `ASCRIBE_*` variables, then the global
/// flags (`--home`, `--db`, `--log-format`). Command flags are applied by their command.
pub fn load_for(cli: &crate::cli::Cli) -> anyhow::Result<Loaded> {
    let home = crate::context::home_directory(&cli.location, &Config::default());
    let mut loaded = load(cli.config.as_deref(), &home)?;
    loaded.config.home.get_or_insert(home);
    if let Some(home) = &cli.location.home {
        loaded.config.home = Some(home.clone());
        if !matches!(loaded.source("home"), Source::Env(_)) {
            loaded.set_by_flag("home", "--home");
        }
    }
    if let Some(db) = &cli.location.db {
        loaded.config.db = Some(db.clone());
        if !matches!(loaded.source("db"), Source::Env(_)) {
            loaded.set_by_flag("db", "--db");
        }
    }
    if let Some(format) = cli.log_format {
        loaded.config.log.format = format;
        loaded.set_by_flag("log.format", "--log-format");
    }
    Ok(loaded)
}

/// Parses a duration written on the command line: a number of seconds (`30`) or a
/// humantime duration (`30s`, `1500ms`, `5m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text.trim()).map_err(|error| {
        format!("`{text}` is not a duration ({error}); write it as 30, 30s, 1500ms or 5m")
    })
}

/// Reads the configuration: `explicit` (which must exist) or `<home>/ascribe.toml` (when it
/// exists), then the `ASCRIBE_*` variables. Flags are applied by the caller.
pub fn load(explicit: Option<&Path>, home: &Path) -> anyhow::Result<Loaded> {
    let candidate = home.join(FILE_NAME);
    let file = match explicit {
        Some(path) => Some(path.to_owned()),
        None => candidate.is_file().then_some(candidate),
    };
    let mut table = match &file {
        Some(path) => read_file(path)?,
        None => toml::Table::new(),
    };
    let mut sources = BTreeMap::new();
    for field in FIELDS {
        if lookup(&table, field.path).is_some() {
            sources.insert(field.path, Source::File);
        }
    }
    for field in FIELDS {
        let name = field.env();
        let Ok(text) = std::env::var(&name) else {
            continue;
        };
        let value = env_value(field, &name, &text)?;
        insert(&mut table, field.path, value);
        sources.insert(field.path, Source::Env(name));
    }
    let config = Config::deserialize(toml::Value::Table(table))
        .context("the configuration does not hold together")?;
    config.validate()?;
    Ok(Loaded {
        config,
        file,
        sources,
    })
}

/// Reads and checks a configuration file: TOML, known keys, values of the right type.
fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    // Deserialising the text itself (not a table made from it) keeps the line numbers.
    toml::from_str::<Config>(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    toml::from_str::<toml::Table>(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}

/// An environment variable's text as a TOML value: `true`, `30`, `"30s"` and `30s` all work
/// (text that is not a TOML value is taken as a string). Checked alone, so a bad value names
/// its variable.
fn env_value(field: &Field, name: &str, text: &str) -> anyhow::Result<toml::Value> {
    let value = toml::from_str::<toml::Table>(&format!("value = {text}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()));
    let mut alone = toml::Table::new();
    insert(&mut alone, field.path, value.clone());
    Config::deserialize(toml::Value::Table(alone))
        .map_err(|error| anyhow::anyhow!("{name}={text:?}: {error}"))?;
    Ok(value)
}

fn lookup<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut keys = path.split('.');
    let first = table.get(keys.next()?)?;
    keys.try_fold(first, |value, key| value.as_table()?.get(key))
}

fn insert(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        None => {
            table.insert(path.to_owned(), value);
        }
        Some((section, key)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(section) = entry {
                section.insert(key.to_owned(), value);
            }
        }
    }
}

/// The example file `ascribe init` writes: every field commented out at its default, with
/// its documentation; `db` set when init was given one, so later commands find it.
pub fn example(db: Option<&str>) -> String {
    let mut text = String::from(
        "# Ascribe's configuration. Every field is shown at its default, commented out.\n\
         # Each can also be set by an ASCRIBE_* variable (shown) or a flag; see\n\
         # docs/configuration.md. `ascribe serve --check-config` checks this file.\n",
    );
    let mut section = "";
    for field in FIELDS {
        let (this_section, key) = field.path.split_once('.').unwrap_or(("", field.path));
        if this_section != section {
            text.push_str(&format!("\n[{this_section}]\n"));
            section = this_section;
        } else {
            text.push('\n');
        }
        for line in wrap(field.doc, 88) {
            text.push_str(&format!("# {line}\n"));
        }
        text.push_str(&format!("# ({})\n", field.env()));
        match (field.path, db, field.default) {
            ("db", Some(db), _) => text.push_str(&format!("db = {}\n", toml::Value::from(db))),
            (_, _, Some(default)) => text.push_str(&format!("# {key} = {default}\n")),
            (_, _, None) => text.push_str(&format!("# {key} =\n")),
        }
    }
    text
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The value of `path` in `config`, as TOML text; `None` when unset.
pub fn value_text(config: &Config, path: &str) -> Option<String> {
    let table = toml::Table::try_from(config).ok()?;
    lookup(&table, path).map(ToString::to_string)
}

/// Durations as `"30s"`, `"1500ms"`, `"5m"` (humantime) or a whole number of seconds.
mod duration {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    const EXPECTED: &str = "a duration such as \"30s\", \"1500ms\" or \"5m\", or a whole \
                            number of seconds";

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str(EXPECTED)
        }

        fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(seconds))
        }

        fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<Duration, E> {
            u64::try_from(seconds)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("`{seconds}` is negative; write {EXPECTED}")))
        }

        fn visit_f64<E: de::Error>(self, seconds: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "`{seconds}` is not a whole number of seconds; write fractions with a unit, \
                 such as \"1500ms\""
            )))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text.trim()).map_err(|error| {
                E::custom(format!(
                    "`{text}` is not a duration ({error}); write {EXPECTED}"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of [`FIELDS`] written at its default.
    fn defaults_file() -> String {
        let mut text = String::new();
        let mut section = "";
        for field in FIELDS {
            let Some(default) = field.default else {
                continue;
            };
            let (this_section, key) = field.path.split_once('.').unwrap_or(("", field.path));
            if this_section != section {
                text.push_str(&format!("[{this_section}]\n"));
                section = this_section;
            }
            text.push_str(&format!("{key} = {default}\n"));
        }
        text
    }

    #[test]
    fn docs_describe_every_field_with_its_variable_and_default() {
        let docs = include_str!("../../../docs/configuration.md");
        for field in FIELDS {
            let default = field
                .default
                .map_or("unset".to_owned(), |text| format!("`{text}`"));
            let row = format!("| `{}` | `{}` | {default} |", field.path, field.env());
            assert!(
                docs.contains(&row),
                "docs/configuration.md lacks the row {row}"
            );
        }
    }

    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let parsed: Config = toml::from_str(&defaults_file()).expect("defaults parse");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn every_field_of_config_is_listed_once() {
        let full = Config {
            home: Some("h".into()),
            db: Some("sqlite://x".into()),
            log: LogSection {
                level: Some("info".into()),
                ..LogSection::default()
            },
            ..Config::default()
        };
        let table = toml::Table::try_from(&full).expect("serialises");
        let mut leaves = Vec::new();
        for (key, value) in &table {
            match value.as_table() {
                Some(section) => {
                    leaves.extend(section.keys().map(|inner| format!("{key}.{inner}")));
                }
                None => leaves.push(key.clone()),
            }
        }
        leaves.sort();
        let mut listed: Vec<String> = FIELDS.iter().map(|field| field.path.to_owned()).collect();
        listed.sort();
        assert_eq!(leaves, listed);
    }

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        let parsed: Config = toml::from_str(&example(None)).expect("example parses");
        assert_eq!(parsed, Config::default());
        let with_db: Config =
            toml::from_str(&example(Some("postgres://u@h:5432/d"))).expect("parses");
        assert_eq!(with_db.db.as_deref(), Some("postgres://u@h:5432/d"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let text = "listen = \"127.0.0.1:9000\"\n\n[upstream]\ntimout = \"5s\"\n";
        let error = toml::from_str::<Config>(text)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("line 4"), "{error}");
        assert!(error.contains("unknown field `timout`"), "{error}");
    }

    #[test]
    fn durations_take_seconds_or_words() {
        let config: Config =
            toml::from_str("[upstream]\ntimeout = 45\nconnect_timeout = \"1500ms\"\n")
                .expect("parses");
        assert_eq!(config.upstream.timeout, Duration::from_secs(45));
        assert_eq!(config.upstream.connect_timeout, Duration::from_millis(1500));
        let error = toml::from_str::<Config>("[upstream]\ntimeout = \"soon\"\n")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("not a duration"), "{error}");
    }

    #[test]
    fn wrong_types_and_zero_timeouts_are_refused_with_the_way_to_write_them() {
        for written in ["true", "-5", "1.5"] {
            let text = format!("[upstream]\ntimeout = {written}\n");
            let error = toml::from_str::<Config>(&text)
                .expect_err("refused")
                .to_string();
            assert!(error.contains("1500ms"), "{written}: {error}");
        }
        let zero: Config = toml::from_str("[upstream]\ntimeout = \"0s\"\n").expect("parses");
        let error = zero.validate().expect_err("refused").to_string();
        assert!(error.starts_with("upstream.timeout is 0"), "{error}");
        for (written, refused) in [("\"500us\"", true), ("\"1ms\"", false), ("\"1h\"", false)]
            .into_iter()
            .chain([("\"61m\"", true), ("\"25days\"", true)])
        {
            let text = format!("[ledger]\nlock_timeout = {written}\n");
            let config: Config = toml::from_str(&text).expect("parses");
            match config.validate() {
                Ok(()) => assert!(!refused, "{written} was accepted"),
                Err(error) => {
                    assert!(refused, "{written}: {error}");
                    assert!(error.to_string().contains("from 1ms to 1h"), "{error}");
                }
            }
        }
        let mut quiet = Config::default();
        quiet.log.level = Some("verbose".into());
        assert!(quiet.validate().is_err());
        quiet.log.level = Some("warn,ascribe_gateway=debug".into());
        assert!(quiet.validate().is_ok());
    }

    #[test]
    fn environment_values_are_typed_and_named_in_errors() {
        let field = FIELDS
            .iter()
            .find(|field| field.path == "metrics.enabled")
            .expect("field");
        assert_eq!(field.env(), "ASCRIBE_METRICS_ENABLED");
        let value = env_value(field, "ASCRIBE_METRICS_ENABLED", "false").expect("bool");
        assert_eq!(value, toml::Value::Boolean(false));
        let error = env_value(field, "ASCRIBE_METRICS_ENABLED", "maybe").expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("ASCRIBE_METRICS_ENABLED=\"maybe\""),
            "{error}"
        );
        let timeout = FIELDS
            .iter()
            .find(|field| field.path == "upstream.timeout")
            .expect("field");
        let value = env_value(timeout, "ASCRIBE_UPSTREAM_TIMEOUT", "30s").expect("text");
        assert_eq!(value, toml::Value::String("30s".into()));
    }
}
