//! Credentials, region and endpoint from the places every S3 tool reads:
//! the `AWS_*` environment variables, then the shared files
//! `~/.aws/credentials` and `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE`
//! and `AWS_CONFIG_FILE`) with the profile named by `AWS_PROFILE`. Never a
//! command-line flag: it would end up in the shell history and in `ps`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::sigv4::Credentials;
use crate::exit::Invalid;

/// What the environment and the shared files say.
#[derive(Debug, Default)]
pub struct Settings {
    pub credentials: Option<Credentials>,
    /// `region` of the profile.
    pub region: Option<String>,
    /// `endpoint_url` of the profile.
    pub endpoint: Option<String>,
    /// Where the credentials came from, for messages.
    pub source: String,
}

/// A way to read variables and files, so that tests need no real home.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> Option<String>;
}

/// The process environment and filesystem.
pub struct Real;

impl Env for Real {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Profile keys ssgen cannot act on: they need another program or a login.
const UNSUPPORTED: &[&str] = &[
    "credential_process",
    "sso_session",
    "sso_start_url",
    "role_arn",
    "web_identity_token_file",
];

pub fn load(env: &dyn Env) -> Result<Settings> {
    let profile = env
        .var("AWS_PROFILE")
        .unwrap_or_else(|| "default".to_owned());
    let home = env.var("HOME").map(PathBuf::from);
    let file = |var: &str, name: &str| {
        env.var(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    let cred_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = file("AWS_CONFIG_FILE", "config");
    let read = |p: &Option<PathBuf>| -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        match p {
            Some(p) => match env.read(p) {
                Some(text) => parse_ini(&text)
                    .with_context(|| format!("{}: not an AWS shared config file", p.display())),
                None => Ok(BTreeMap::new()),
            },
            None => Ok(BTreeMap::new()),
        }
    };
    let creds_ini = read(&cred_file)?;
    let config_ini = read(&config_file)?;
    // In the config file, profiles other than default are `[profile NAME]`.
    let config_section = if profile == "default" {
        config_ini.get("default")
    } else {
        config_ini
            .get(&format!("profile {profile}"))
            .or_else(|| config_ini.get(&profile))
    };
    let creds_section = creds_ini.get(&profile);

    let mut settings = Settings {
        region: config_section.and_then(|s| s.get("region").cloned()),
        endpoint: config_section.and_then(|s| s.get("endpoint_url").cloned()),
        ..Settings::default()
    };

    match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access_key), Some(secret_key)) => {
            settings.credentials = Some(Credentials {
                access_key,
                secret_key,
                session_token: env.var("AWS_SESSION_TOKEN"),
            });
            settings.source = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into();
            return Ok(settings);
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Invalid(
                "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both, or unset both to use ~/.aws/credentials".into(),
            )
            .into());
        }
        (None, None) => {}
    }

    for (section, path) in [
        (creds_section, cred_file.as_ref()),
        (config_section, config_file.as_ref()),
    ] {
        let (Some(section), Some(path)) = (section, path) else {
            continue;
        };
        match (
            section.get("aws_access_key_id"),
            section.get("aws_secret_access_key"),
        ) {
            (Some(a), Some(s)) => {
                settings.credentials = Some(Credentials {
                    access_key: a.clone(),
                    secret_key: s.clone(),
                    session_token: section.get("aws_session_token").cloned(),
                });
                settings.source = format!("profile {profile} of {}", path.display());
                return Ok(settings);
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(Invalid(format!(
                    "{}: profile {profile} has only one of aws_access_key_id and aws_secret_access_key; give both",
                    path.display()
                ))
                .into());
            }
            (None, None) => {}
        }
        if let Some(key) = UNSUPPORTED.iter().find(|k| section.contains_key(**k)) {
            return Err(Invalid(format!(
                "{}: profile {profile} gets its credentials through {key}, which ssgen does not run; \
                 export them first: eval \"$(aws configure export-credentials --profile {profile} --format env)\"",
                path.display()
            ))
            .into());
        }
    }
    Ok(settings)
}

/// The sections of an INI file (`[name]`, `key = value`, `#`/`;`
/// comments), keys lower-cased.
fn parse_ini(text: &str) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            // Nested settings (`s3 =` followed by indented lines) are kept
            // as their own keys; ssgen reads none of them.
            if let Some(section) = &current {
                out.entry(section.clone())
                    .or_default()
                    .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
            continue;
        }
        anyhow::bail!("line {}: expected [section] or key = value", n + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        vars: BTreeMap<String, String>,
        files: BTreeMap<PathBuf, String>,
    }

    impl Env for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn read(&self, path: &Path) -> Option<String> {
            self.files.get(path).cloned()
        }
    }

    fn fake(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Fake {
        Fake {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            files: files
                .iter()
                .map(|(k, v)| (PathBuf::from(k), (*v).into()))
                .collect(),
        }
    }

    const CREDS: &str = "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = sdefault\n\n\
                         [r2]\naws_access_key_id=AKR2\naws_secret_access_key=sr2\naws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-1\n# a comment\n[profile r2]\nregion = auto\n\
                          endpoint_url = https://acct.r2.cloudflarestorage.com\n\
                          [profile sso]\nsso_session = corp\n";

    #[test]
    fn environment_wins_over_the_files() {
        let env = fake(
            &[
                ("HOME", "/h"),
                ("AWS_ACCESS_KEY_ID", "AKENV"),
                ("AWS_SECRET_ACCESS_KEY", "senv"),
                ("AWS_SESSION_TOKEN", "t"),
            ],
            &[("/h/.aws/credentials", CREDS), ("/h/.aws/config", CONFIG)],
        );
        let s = load(&env).expect("loads");
        let c = s.credentials.expect("credentials");
        assert_eq!(
            (c.access_key.as_str(), c.session_token.as_deref()),
            ("AKENV", Some("t"))
        );
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn profiles_from_aws_profile() {
        let env = fake(
            &[("HOME", "/h"), ("AWS_PROFILE", "r2")],
            &[("/h/.aws/credentials", CREDS), ("/h/.aws/config", CONFIG)],
        );
        let s = load(&env).expect("loads");
        let c = s.credentials.expect("credentials");
        assert_eq!(
            (
                c.access_key.as_str(),
                c.secret_key.as_str(),
                c.session_token.as_deref()
            ),
            ("AKR2", "sr2", Some("tok"))
        );
        assert_eq!(s.region.as_deref(), Some("auto"));
        assert_eq!(
            s.endpoint.as_deref(),
            Some("https://acct.r2.cloudflarestorage.com")
        );
        let d = load(&fake(&[("HOME", "/h")], &[("/h/.aws/credentials", CREDS)])).expect("loads");
        assert_eq!(
            d.credentials.map(|c| c.access_key).as_deref(),
            Some("AKDEFAULT")
        );
    }

    #[test]
    fn half_given_or_unsupported_credentials_are_refused_by_name() {
        let e = load(&fake(&[("AWS_ACCESS_KEY_ID", "x")], &[])).expect_err("refused");
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let e = load(&fake(
            &[("HOME", "/h"), ("AWS_PROFILE", "sso")],
            &[("/h/.aws/config", CONFIG)],
        ))
        .expect_err("refused");
        assert!(e.to_string().contains("sso_session"), "{e}");
        assert!(e.to_string().contains("export-credentials"), "{e}");
        let none = load(&fake(&[("HOME", "/h")], &[])).expect("loads");
        assert!(none.credentials.is_none());
    }
}
