//! The configuration file of `dialer run`: the spool, the campaigns (every campaign setting,
//! defaults for what is left out, unknown keys refused), and the telephone system (one or more
//! `[[asterisk]]` servers, or the simulated one).
//!
//! Errors name the file, the line and the setting at fault, as sentences.
//!
//! ```
//! let text = r#"
//! spool = "spool.db"
//!
//! [[campaign]]
//! id = "spring"
//! time_zone = "America/New_York"
//! max_lines = 20
//!
//! [sim]
//! scenario = "small-team"
//! speed = 60.0
//! "#;
//! let config = dialer_runtime::config::FileConfig::parse(text, "dialer.toml").unwrap();
//! assert_eq!(config.campaigns[0].max_lines, 20);
//! assert_eq!(config.campaigns[0].ring_timeout_s, 25); // the default
//!
//! let bad = text.replace("max_lines", "max_lnes");
//! let e = dialer_runtime::config::FileConfig::parse(&bad, "dialer.toml").unwrap_err();
//! assert_eq!(e.to_string(), "dialer.toml line 7: campaign `spring`: unknown setting `max_lnes`");
//! ```

use dialer_core::{Campaign, CampaignId, DialFormat};
use serde::Deserialize;
use serde_json::Value;
use spool_store::{BreakType, ResultCode};
use std::path::PathBuf;

/// A configuration problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {problem}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ConfigFileError {
    pub source_name: String,
    pub line: Option<usize>,
    pub problem: String,
}

/// A secret (an AMI password, an API token): never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// One Asterisk server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsteriskConfig {
    /// A name for logs and status.
    #[serde(default = "default_pbx_name")]
    pub name: String,
    pub host: String,
    #[serde(default = "default_ami_port")]
    pub port: u16,
    pub user: String,
    /// The manager secret, or...
    #[serde(default)]
    pub secret: Option<Secret>,
    /// ...the environment variable that holds it (preferred: keeps it out of the file).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Channel template of the callee leg; `{number}` is replaced by the dial string
    /// (`PJSIP/{number}@trunk`, `Local/{number}@callees`).
    pub channel: String,
    /// Dialplan context and extension the answered leg is sent to.
    pub context: String,
    #[serde(default = "default_exten")]
    pub exten: String,
    /// Asterisk queue of each campaign (its members are the campaign's agents).
    #[serde(default)]
    pub queues: std::collections::BTreeMap<String, String>,
    /// Whether the dialplan runs AMD and reports `AMDSTATUS`.
    #[serde(default)]
    pub amd: bool,
    /// How dial strings are written for this trunk (`national`, `e164`, `e164_no_plus`).
    #[serde(default)]
    pub dial_format: Option<DialFormat>,
    /// Digits in front of every dial string (a trunk access code).
    #[serde(default)]
    pub dial_prefix: Option<String>,
    /// How agents are named: `member_name` (default) or `interface`.
    #[serde(default)]
    pub agent_naming: AgentNamingConfig,
    /// What the channels the dialer originates are named by (`ChannelId` `<prefix><call>`):
    /// by default `dlr-<spool id>-`, which tells apart the calls of two dialers on one PBX
    /// and of two spools. Letters, digits, `-` and `_`, at most 32.
    #[serde(default)]
    pub channel_id_prefix: Option<String>,
}

/// Longest [`AsteriskConfig::channel_id_prefix`] (Asterisk keeps 149 characters of a
/// channel's unique id; the call number and the leg suffix follow the prefix).
pub const MAX_CHANNEL_ID_PREFIX: usize = 32;

/// Whether `prefix` can start the `ChannelId` of an Originate: it reaches the manager
/// interface as it is, so only letters, digits, `-` and `_`.
pub fn check_channel_id_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_CHANNEL_ID_PREFIX {
        return Err(format!(
            "`channel_id_prefix` must be 1 to {MAX_CHANNEL_ID_PREFIX} characters long"
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "`channel_id_prefix` may hold only letters, digits, `-` and `_`, not {c:?}"
        ));
    }
    Ok(())
}

/// How queue members map to agent ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentNamingConfig {
    #[default]
    MemberName,
    Interface,
}

fn default_pbx_name() -> String {
    "asterisk".into()
}

fn default_ami_port() -> u16 {
    5038
}

fn default_exten() -> String {
    "s".into()
}

/// The simulated telephone system.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// A built-in scenario name or a scenario file, for the callees, agents and carrier.
    #[serde(default = "default_scenario")]
    pub scenario: String,
    /// How many times faster than real time the simulated clock runs.
    #[serde(default = "default_speed")]
    pub speed: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Agents (overrides the scenario's count).
    #[serde(default)]
    pub agents: Option<u32>,
    /// Simulated start time (RFC 3339); default: now.
    #[serde(default)]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Records to generate into the spool at start when a campaign's spool is empty.
    #[serde(default = "default_records")]
    pub records: u64,
    /// Stop (draining) after this many simulated hours; default: run until stopped.
    #[serde(default)]
    pub hours: Option<f64>,
}

fn default_scenario() -> String {
    "small-team".into()
}

fn default_speed() -> f64 {
    1.0
}

fn default_seed() -> u64 {
    1
}

fn default_records() -> u64 {
    2000
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            scenario: default_scenario(),
            speed: default_speed(),
            seed: default_seed(),
            agents: None,
            start: None,
            records: default_records(),
            hours: None,
        }
    }
}

/// A base file imported at start (resumed if an earlier import was interrupted).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    pub campaign: String,
    pub file: PathBuf,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// The HTTP API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (default loopback).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Read-write tokens, or the environment variable holding one.
    #[serde(default)]
    pub tokens: Vec<Secret>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// Read-only (supervisor) tokens.
    #[serde(default)]
    pub read_tokens: Vec<Secret>,
    #[serde(default)]
    pub read_token_env: Option<String>,
    /// Allow a non-loopback address without TLS in front (a reverse proxy that terminates
    /// TLS). Off by default.
    #[serde(default)]
    pub allow_plain_remote: bool,
    /// Largest JSON request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest base-file upload, in bytes.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Events kept for clients that reconnect with `Last-Event-ID`.
    #[serde(default = "default_event_buffer")]
    pub event_buffer: usize,
}

impl ApiConfig {
    /// The configuration with defaults listening on `listen`.
    pub fn new(listen: impl Into<String>) -> ApiConfig {
        ApiConfig {
            listen: listen.into(),
            tokens: Vec::new(),
            token_env: None,
            read_tokens: Vec::new(),
            read_token_env: None,
            allow_plain_remote: false,
            max_body_bytes: default_max_body(),
            max_upload_bytes: default_max_upload(),
            event_buffer: default_event_buffer(),
        }
    }

    /// Read-write and read-only tokens: those in the file plus those the named environment
    /// variables hold. A named variable that is unset or empty is an error (a sentence).
    pub fn resolve_tokens(&self) -> Result<(Vec<Secret>, Vec<Secret>), String> {
        let from_env = |name: &Option<String>| -> Result<Option<Secret>, String> {
            match name {
                None => Ok(None),
                Some(var) => match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => Ok(Some(Secret(v.trim().to_owned()))),
                    _ => Err(format!(
                        "[api]: the environment variable `{var}` holds no token"
                    )),
                },
            }
        };
        let mut rw = self.tokens.clone();
        rw.extend(from_env(&self.token_env)?);
        let mut ro = self.read_tokens.clone();
        ro.extend(from_env(&self.read_token_env)?);
        Ok((rw, ro))
    }
}

fn default_listen() -> String {
    "127.0.0.1:8640".into()
}

fn default_max_body() -> usize {
    1 << 20
}

fn default_max_upload() -> u64 {
    512 << 20
}

fn default_event_buffer() -> usize {
    10_000
}

/// Which telephone system the dialer drives.
#[derive(Debug, Clone, PartialEq)]
pub enum TelephonyConfig {
    Sim(SimConfig),
    Asterisk(Vec<AsteriskConfig>),
}

/// A campaign's catalogues, from the `result_codes` and `breaks` arrays of its
/// `[[campaign]]` section (`None`: the section does not set it, the spool's stays).
///
/// ```toml
/// [[campaign]]
/// id = "spring"
/// time_zone = "America/New_York"
/// result_codes = [
///   { code = "SALE", label = "Sale", l1 = "positive" },
///   { code = "NI", label = "Not interested", l1 = "negative", l2 = "price" },
/// ]
/// breaks = [{ id = "lunch", name = "Lunch" }, { id = "training", name = "Training", active = false }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignCatalogue {
    pub campaign: CampaignId,
    pub result_codes: Option<Vec<ResultCode>>,
    pub breaks: Option<Vec<BreakType>>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    pub spool: PathBuf,
    pub campaigns: Vec<Campaign>,
    /// The campaigns' result-code and break catalogues, in campaign order.
    pub catalogues: Vec<CampaignCatalogue>,
    pub telephony: TelephonyConfig,
    pub bases: Vec<BaseConfig>,
    pub api: Option<ApiConfig>,
}

const TOP_KEYS: [&str; 6] = ["spool", "campaign", "asterisk", "sim", "base", "api"];

impl FileConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &std::path::Path) -> Result<FileConfig, ConfigFileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
            source_name: name.clone(),
            line: None,
            problem: format!("cannot read it: {e}"),
        })?;
        FileConfig::parse(&text, &name)
    }

    /// Parses and checks a configuration text; `source_name` goes into errors.
    pub fn parse(text: &str, source_name: &str) -> Result<FileConfig, ConfigFileError> {
        let err = |line: Option<usize>, problem: String| ConfigFileError {
            source_name: source_name.to_owned(),
            line,
            problem,
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| line_of_offset(text, s.start));
            err(line, e.message().trim_end().to_owned())
        })?;
        for key in table.keys() {
            if !TOP_KEYS.contains(&key.as_str()) {
                return Err(err(
                    find_key_line(text, key, 0),
                    format!(
                        "unknown section or setting `{key}` (expected one of {})",
                        TOP_KEYS.join(", ")
                    ),
                ));
            }
        }
        let spool = match table.get("spool") {
            None => PathBuf::from("dialer.db"),
            Some(toml::Value::String(s)) => PathBuf::from(s),
            Some(_) => {
                return Err(err(
                    find_key_line(text, "spool", 0),
                    "`spool` must be a file path in quotes".into(),
                ))
            }
        };
        let mut campaigns = Vec::new();
        let mut catalogues = Vec::new();
        if let Some(list) = table.get("campaign") {
            let toml::Value::Array(items) = list else {
                return Err(err(
                    find_key_line(text, "campaign", 0),
                    "campaigns are written as [[campaign]] sections".into(),
                ));
            };
            for (n, item) in items.iter().enumerate() {
                let section = nth_section(text, "[[campaign]]", n);
                // The catalogues are the spool's, not settings of the core's campaign.
                let mut item = item.clone();
                let (codes, breaks) = match &mut item {
                    toml::Value::Table(t) => (t.remove("result_codes"), t.remove("breaks")),
                    _ => (None, None),
                };
                let c = campaign_from(&item, n)
                    .map_err(|(key, problem)| err(find_key_line(text, &key, section), problem))?;
                // An inline table's key is not at the start of a line: point at the array.
                let at_array = |key: &str| {
                    let line = find_key_line(text, key, section);
                    move |mut e: ConfigFileError| {
                        e.line = e.line.or(line);
                        e
                    }
                };
                let result_codes: Option<Vec<ResultCode>> = codes
                    .map(|v| typed(&v, "campaign.result_codes", text, source_name, section))
                    .transpose()
                    .map_err(at_array("result_codes"))?;
                let breaks: Option<Vec<BreakType>> = breaks
                    .map(|v| typed(&v, "campaign.breaks", text, source_name, section))
                    .transpose()
                    .map_err(at_array("breaks"))?;
                catalogues.push(CampaignCatalogue {
                    campaign: c.id.clone(),
                    result_codes,
                    breaks,
                });
                if campaigns.iter().any(|o: &Campaign| o.id == c.id) {
                    return Err(err(
                        find_key_line(text, "id", section),
                        format!("campaign `{}` is defined twice", c.id),
                    ));
                }
                campaigns.push(c);
            }
        }
        let asterisk: Vec<AsteriskConfig> = section_list(&table, "asterisk", text, source_name)?;
        let sim: Option<SimConfig> = match table.get("sim") {
            None => None,
            Some(v) => Some(typed(v, "sim", text, source_name, 0)?),
        };
        let bases: Vec<BaseConfig> = section_list(&table, "base", text, source_name)?;
        let api: Option<ApiConfig> = match table.get("api") {
            None => None,
            Some(v) => Some(typed(v, "api", text, source_name, 0)?),
        };
        let telephony = match (asterisk.is_empty(), sim) {
            (false, Some(_)) => {
                return Err(err(
                    find_key_line(text, "[sim]", 0),
                    "both [sim] and [[asterisk]] are given: choose one telephone system".into(),
                ))
            }
            (false, None) => TelephonyConfig::Asterisk(asterisk),
            (true, sim) => TelephonyConfig::Sim(sim.unwrap_or_default()),
        };
        let config = FileConfig {
            spool,
            campaigns,
            catalogues,
            telephony,
            bases,
            api,
        };
        config.check(text, source_name)?;
        Ok(config)
    }

    fn check(&self, text: &str, source_name: &str) -> Result<(), ConfigFileError> {
        let err = |line: Option<usize>, problem: String| ConfigFileError {
            source_name: source_name.to_owned(),
            line,
            problem,
        };
        for (n, c) in self.campaigns.iter().enumerate() {
            if let Err(e) = c.validate() {
                let section = nth_section(text, "[[campaign]]", n);
                return Err(err(
                    find_key_line(text, e.field, section),
                    format!("campaign `{}`: {e}", c.id),
                ));
            }
        }
        if let TelephonyConfig::Asterisk(list) = &self.telephony {
            for (n, a) in list.iter().enumerate() {
                let section = nth_section(text, "[[asterisk]]", n);
                if a.secret.is_none() && a.secret_env.is_none() {
                    return Err(err(
                        find_key_line(text, "user", section),
                        format!("asterisk `{}`: give `secret` or `secret_env`", a.name),
                    ));
                }
                if let Some(prefix) = &a.channel_id_prefix {
                    if let Err(problem) = check_channel_id_prefix(prefix) {
                        return Err(err(
                            find_key_line(text, "channel_id_prefix", section),
                            format!("asterisk `{}`: {problem}", a.name),
                        ));
                    }
                }
                if !a.channel.contains("{number}") {
                    return Err(err(
                        find_key_line(text, "channel", section),
                        format!(
                            "asterisk `{}`: `channel` must contain {{number}} where the dial string goes",
                            a.name
                        ),
                    ));
                }
                for campaign in a.queues.values() {
                    if !self.campaigns.iter().any(|c| c.id.as_str() == campaign) {
                        return Err(err(
                            find_key_line(text, "queues", section),
                            format!(
                                "asterisk `{}`: queue mapped to unknown campaign `{campaign}`",
                                a.name
                            ),
                        ));
                    }
                }
            }
        }
        if let TelephonyConfig::Sim(s) = &self.telephony {
            if s.hours.is_some_and(|h| !(h.is_finite() && h > 0.0)) {
                return Err(err(
                    find_key_line(text, "hours", 0),
                    "sim `hours` must be a positive number of simulated hours".into(),
                ));
            }
            if !(s.speed.is_finite() && (1.0..=10_000.0).contains(&s.speed)) {
                return Err(err(
                    find_key_line(text, "speed", 0),
                    "sim `speed` must be between 1 and 10000".into(),
                ));
            }
        }
        for b in &self.bases {
            if !self.campaigns.iter().any(|c| c.id.as_str() == b.campaign) {
                return Err(err(
                    find_key_line(text, "campaign", nth_section(text, "[[base]]", 0)),
                    format!(
                        "base `{}` is for unknown campaign `{}`",
                        b.file.display(),
                        b.campaign
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl AsteriskConfig {
    /// The manager secret, from the file or the environment.
    pub fn secret(&self) -> Result<Secret, String> {
        if let Some(s) = &self.secret {
            return Ok(s.clone());
        }
        let var = self.secret_env.as_deref().unwrap_or("DIALER_AMI_SECRET");
        std::env::var(var).map(Secret).map_err(|_| {
            format!(
                "asterisk `{}`: environment variable {var} is not set",
                self.name
            )
        })
    }
}

/// Parses a list of `[[name]]` sections.
fn section_list<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    name: &str,
    text: &str,
    source_name: &str,
) -> Result<Vec<T>, ConfigFileError> {
    let Some(v) = table.get(name) else {
        return Ok(Vec::new());
    };
    let toml::Value::Array(items) = v else {
        return Err(ConfigFileError {
            source_name: source_name.to_owned(),
            line: find_key_line(text, name, 0),
            problem: format!("write `{name}` as [[{name}]] sections"),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            typed(
                item,
                name,
                text,
                source_name,
                nth_section(text, &format!("[[{name}]]"), n),
            )
        })
        .collect()
}

/// Deserializes a section, naming the setting at fault.
fn typed<T: serde::de::DeserializeOwned>(
    v: &toml::Value,
    name: &str,
    text: &str,
    source_name: &str,
    section_offset: usize,
) -> Result<T, ConfigFileError> {
    let json = serde_json::to_value(v).map_err(|e| ConfigFileError {
        source_name: source_name.to_owned(),
        line: None,
        problem: format!("[{name}]: {e}"),
    })?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let key = unknown_field(&inner).unwrap_or_else(|| last_segment(&path));
        ConfigFileError {
            source_name: source_name.to_owned(),
            line: find_key_line(text, &key, section_offset),
            problem: if path == "." {
                format!("[{name}]: {inner}")
            } else {
                format!("[{name}] `{path}`: {inner}")
            },
        }
    })
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn last_segment(path: &str) -> String {
    path.rsplit('.')
        .next()
        .unwrap_or(path)
        .trim_end_matches(|c: char| c == ']' || c.is_ascii_digit())
        .trim_end_matches('[')
        .to_owned()
}

/// A campaign: the user's settings over [`Campaign::new`]'s defaults; a key the defaults do
/// not have is refused. On error: (the key to point at, the problem).
fn campaign_from(item: &toml::Value, n: usize) -> Result<Campaign, (String, String)> {
    let user = serde_json::to_value(item).map_err(|e| ("id".to_owned(), e.to_string()))?;
    campaign_from_value(&user, n)
}

/// A campaign from JSON settings, by the same rule as a `[[campaign]]` section (the HTTP API
/// creates and updates campaigns with it): the user's settings over [`Campaign::new`]'s
/// defaults, unknown keys refused. `n` is the campaign's position, for messages. On error:
/// (the key at fault, the problem as a sentence).
pub fn campaign_from_value(user: &Value, n: usize) -> Result<Campaign, (String, String)> {
    let Value::Object(map) = user else {
        return Err((
            "campaign".into(),
            "a campaign is a [[campaign]] section".into(),
        ));
    };
    let id = match map.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err((
                "[[campaign]]".into(),
                format!("campaign number {} has no `id`", n + 1),
            ))
        }
    };
    let zone = match map.get("time_zone") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err((
                "time_zone".into(),
                format!("campaign `{id}`: `time_zone` must be an IANA zone name in quotes"),
            ))
        }
        None => {
            return Err((
                "id".into(),
                format!(
                    "campaign `{id}` has no `time_zone` (an IANA zone such as America/New_York)"
                ),
            ))
        }
    };
    let mut merged = serde_json::to_value(Campaign::new(id.clone(), zone))
        .map_err(|e| ("id".to_owned(), e.to_string()))?;
    merge(&mut merged, user, "").map_err(|key| {
        (
            key.rsplit('.').next().unwrap_or(&key).to_owned(),
            format!("campaign `{id}`: unknown setting `{key}`"),
        )
    })?;
    serde_path_to_error::deserialize::<_, Campaign>(merged).map_err(|e| {
        let path = e.path().to_string();
        (
            last_segment(&path),
            format!("campaign `{id}`: setting `{path}`: {}", e.into_inner()),
        )
    })
}

/// Lays `user` over `base`. Objects merge key by key when both sides are the same variant of
/// a tagged enum (or untagged); otherwise the user's value replaces the default and serde
/// checks it. Returns the path of a key the default does not know.
fn merge(base: &mut Value, user: &Value, path: &str) -> Result<(), String> {
    match (base, user) {
        (Value::Object(b), Value::Object(u)) => {
            let tag_differs = ["mode", "kind"]
                .iter()
                .any(|t| match (b.get(*t), u.get(*t)) {
                    (Some(x), Some(y)) => x != y,
                    _ => false,
                });
            if tag_differs {
                *b = u.clone();
                return Ok(());
            }
            for (k, v) in u {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v, &p)?,
                    None => return Err(p),
                }
            }
            Ok(())
        }
        (slot, v) => {
            *slot = v.clone();
            Ok(())
        }
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The byte offset of the n-th occurrence of a section header (0 if absent).
fn nth_section(text: &str, header: &str, n: usize) -> usize {
    let mut offset = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        if line.trim() == header {
            if seen == n {
                return offset;
            }
            seen += 1;
        }
        offset += line.len();
    }
    0
}

/// The line where `key` is set, at or after `from` (a section's offset).
fn find_key_line(text: &str, key: &str, from: usize) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset >= from {
            let t = line.trim_start();
            let hit = t == key.trim()
                || t.strip_prefix(key).is_some_and(|rest| {
                    rest.trim_start().starts_with('=') || rest.starts_with('.')
                });
            if hit {
                return Some(line_of_offset(text, offset));
            }
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spool = "spool.db"

[[campaign]]
id = "spring"
time_zone = "America/New_York"
dial_mode = { mode = "predictive" }

[[asterisk]]
host = "127.0.0.1"
user = "dialer"
secret_env = "DIALER_AMI_SECRET"
channel = "PJSIP/{number}@trunk"
context = "dialer"
queues = { sales = "spring" }
"#;

    #[test]
    fn a_channel_id_prefix_that_could_break_a_manager_line_is_refused_with_its_line() {
        let text = GOOD.replace(
            "context = \"dialer\"",
            "context = \"dialer\"\nchannel_id_prefix = \"a b\"",
        );
        let e = FileConfig::parse(&text, "x.toml").unwrap_err();
        assert_eq!(e.line, Some(15), "{e}");
        assert!(e.to_string().contains("channel_id_prefix"), "{e}");
        let long = GOOD.replace(
            "context = \"dialer\"",
            &format!(
                "context = \"dialer\"\nchannel_id_prefix = \"{}\"",
                "x".repeat(33)
            ),
        );
        assert!(FileConfig::parse(&long, "x.toml").is_err());
        let good = GOOD.replace(
            "context = \"dialer\"",
            "context = \"dialer\"\nchannel_id_prefix = \"east_1-\"",
        );
        let c = FileConfig::parse(&good, "x.toml").expect("a good prefix");
        assert!(matches!(c.telephony,
            TelephonyConfig::Asterisk(ref a) if a[0].channel_id_prefix.as_deref() == Some("east_1-")));
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let c = FileConfig::parse(GOOD, "x.toml").expect("good config");
        assert_eq!(c.campaigns.len(), 1);
        assert!(matches!(c.telephony, TelephonyConfig::Asterisk(ref a) if a[0].port == 5038));
    }

    #[test]
    fn an_unknown_top_level_key_is_named_with_its_line() {
        let e = FileConfig::parse(&GOOD.replace("spool =", "spoool ="), "x.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("spoool"), "{e}");
    }

    #[test]
    fn an_unknown_asterisk_key_is_named_with_its_line() {
        let e = FileConfig::parse(&GOOD.replace("context =", "contxt ="), "x.toml").unwrap_err();
        assert_eq!(e.line, Some(14), "{e}");
        assert!(e.to_string().contains("contxt"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_setting() {
        let text = GOOD.replace("dial_mode", "max_lines = \"ten\"\ndial_mode");
        let e = FileConfig::parse(&text, "x.toml").unwrap_err();
        assert!(e.to_string().contains("max_lines"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
    }

    #[test]
    fn an_invalid_setting_names_the_field() {
        let text = GOOD.replace("dial_mode", "ring_timeout_s = 5\ndial_mode");
        let e = FileConfig::parse(&text, "x.toml").unwrap_err();
        assert!(e.to_string().contains("ring_timeout_s"), "{e}");
        assert_eq!(e.line, Some(7), "{e}");
    }

    #[test]
    fn a_caller_id_with_quotes_is_refused_at_load() {
        let text = GOOD.replace(
            "dial_mode",
            "caller_id = '\"Sales \"Team\" <5550100>'\ndial_mode",
        );
        let e = FileConfig::parse(&text, "x.toml").unwrap_err();
        assert!(e.to_string().contains("caller_id"), "{e}");
    }

    #[test]
    fn a_queue_for_an_unknown_campaign_is_refused() {
        let e = FileConfig::parse(
            &GOOD.replace("sales = \"spring\"", "sales = \"autumn\""),
            "x.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("autumn"), "{e}");
    }

    #[test]
    fn a_secret_never_prints() {
        let text = GOOD.replace("secret_env = \"DIALER_AMI_SECRET\"", "secret = \"hunter2\"");
        let c = FileConfig::parse(&text, "x.toml").expect("good config");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn no_telephone_system_means_the_simulated_one() {
        let text = "[[campaign]]\nid = \"a\"\ntime_zone = \"UTC\"\n";
        let c = FileConfig::parse(text, "x.toml").expect("good config");
        assert_eq!(c.telephony, TelephonyConfig::Sim(SimConfig::default()));
    }

    #[test]
    fn a_campaign_section_carries_its_result_codes_and_breaks() {
        let text = GOOD.replace(
            "dial_mode = { mode = \"predictive\" }",
            "dial_mode = { mode = \"predictive\" }\nresult_codes = [{ code = \"SALE\", label = \"Sale\", l1 = \"positive\" }]\nbreaks = [{ id = \"lunch\", name = \"Lunch\", active = false }]",
        );
        let c = FileConfig::parse(&text, "d.toml").expect("parses");
        let cat = &c.catalogues[0];
        assert_eq!(cat.campaign.as_str(), "spring");
        let codes = cat.result_codes.as_ref().expect("codes");
        assert_eq!(
            (
                codes[0].code.as_str(),
                codes[0].l1.as_deref(),
                codes[0].active
            ),
            ("SALE", Some("positive"), true)
        );
        let breaks = cat.breaks.as_ref().expect("breaks");
        assert_eq!((breaks[0].id.as_str(), breaks[0].active), ("lunch", false));
        let bad = text.replace("label = \"Sale\"", "lable = \"Sale\"");
        let e = FileConfig::parse(&bad, "d.toml").unwrap_err();
        assert!(e.to_string().contains("lable"), "{e}");
        assert_eq!(e.line, Some(8), "{e}");
    }

    #[test]
    fn a_syntax_error_has_its_line() {
        let e = FileConfig::parse("spool = \"a\"\n[[campaign]\n", "x.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }
}
