//! The `LATCHKEY_*` environment overlay: which variables are configuration, how one is
//! written into the file's table, and errors that name the variable and the nearest known key.

use super::{ConfigError, TEST_PREFIX};

/// What an environment variable is to the config.
pub(super) enum EnvKey {
    /// Not a `LATCHKEY_` variable, or one that is not configuration (`LATCHKEY_CONFIG`,
    /// the test suite's).
    NotOurs,
    /// A variable of that form that is not ours either (Kubernetes service links), noted.
    Ignored(&'static str),
    /// A config key, by its path of lower-case names.
    Key(Vec<String>),
}

/// The top-level keys that may be set from the environment (`LATCHKEY_ISSUER`, …); every
/// other key lives in a section, `LATCHKEY_<SECTION>__<KEY>`.
const TOP_LEVEL_KEYS: [&str; 4] = ["issuer", "listen", "master_key", "master_key_file"];

/// Reads a variable's name: `LATCHKEY_<SECTION>__<KEY>` or a top-level key are config; a
/// Kubernetes Service named `latchkey` sets `LATCHKEY_SERVICE_HOST`, `LATCHKEY_SERVICE_PORT`,
/// `LATCHKEY_SERVICE_PORT_<NAME>`, `LATCHKEY_PORT` and `LATCHKEY_PORT_<N>_<PROTO>[_…]` in
/// every pod, which are ignored.
pub(super) fn environment_key(name: &str) -> EnvKey {
    let Some(rest) = name.strip_prefix("LATCHKEY_") else { return EnvKey::NotOurs };
    if name.starts_with(TEST_PREFIX) || rest == "CONFIG" || rest.is_empty() {
        return EnvKey::NotOurs;
    }
    let service_link = ["SERVICE_HOST", "SERVICE_PORT", "PORT"].contains(&rest)
        || rest.starts_with("SERVICE_PORT_")
        || rest.starts_with("PORT_");
    if service_link && !rest.contains("__") {
        return EnvKey::Ignored("a Kubernetes service link, not configuration");
    }
    EnvKey::Key(rest.split("__").map(str::to_ascii_lowercase).collect())
}

/// Applies `LATCHKEY_SECTION__KEY=value` (as `path`) to the table. `true`, `false` and `[...]`
/// values are read as TOML; everything else is a string. A top-level name must be one of
/// [`TOP_LEVEL_KEYS`].
pub(super) fn overlay(
    table: &mut toml::Table,
    name: &str,
    path: &[String],
    value: &str,
) -> Result<(), ConfigError> {
    let in_variable =
        |problem: String| ConfigError(format!("environment variable {name}: {problem}"));
    if let [key] = path
        && !TOP_LEVEL_KEYS.contains(&key.as_str())
    {
        let hint = did_you_mean(key, TOP_LEVEL_KEYS.iter().copied())
            .map(|near| format!("did you mean LATCHKEY_{}? ", near.to_ascii_uppercase()))
            .unwrap_or_default();
        return Err(in_variable(format!(
            "unknown key \"{key}\": {hint}the top-level keys are {}; a section's key is LATCHKEY_<SECTION>__<KEY>, e.g. LATCHKEY_TOKENS__ACCESS_TOKEN_TTL",
            TOP_LEVEL_KEYS.join(", ")
        )));
    }
    let parsed = if value == "true" || value == "false" || value.starts_with('[') {
        let doc: toml::Table = format!("v = {value}")
            .parse()
            .map_err(|_| in_variable("is not a valid TOML value".into()))?;
        doc.get("v").cloned().unwrap_or_else(|| toml::Value::String(value.to_owned()))
    } else {
        toml::Value::String(value.to_owned())
    };
    let (last, sections) = path.split_last().ok_or_else(|| in_variable("empty key".into()))?;
    let mut target = table;
    for section in sections {
        let entry =
            target.entry(section.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
        target = entry.as_table_mut().ok_or_else(|| {
            in_variable(format!("`{section}` is not a section and cannot be overridden"))
        })?;
    }
    target.insert(last.clone(), parsed);
    Ok(())
}

/// A deserialization error as one line naming the key (and the environment variable that set
/// it), with the nearest known name when a name is unknown.
pub(super) fn explain(path: &str, problem: &str, variable: Option<&str>) -> ConfigError {
    // serde: "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
    let unknown = problem.strip_prefix("unknown field `").and_then(|rest| {
        let (field, rest) = rest.split_once('`')?;
        let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        Some((field, known))
    });
    let Some(variable) = variable else {
        return match unknown.and_then(|(field, known)| did_you_mean(field, known.into_iter())) {
            Some(near) => ConfigError::at(path, format!("{problem}; did you mean `{near}`?")),
            None => ConfigError::at(path, problem),
        };
    };
    let message = match unknown {
        Some((field, known)) => {
            let what = if path.contains('.') { "key" } else { "section" };
            let near = did_you_mean(field, known.iter().copied())
                .map(|near| format!(", did you mean \"{near}\"?"))
                .unwrap_or_else(|| format!(" (known: {})", known.join(", ")));
            format!("unknown {what} \"{field}\"{near}")
        }
        None => format!("{path}: {problem}"),
    };
    ConfigError(format!("environment variable {variable}: {message}"))
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
fn did_you_mean<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, for the suggestion above.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}
