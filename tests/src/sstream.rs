//! python-simplestreams (`sstream-query`, `sstream-mirror`) from the venv
//! that `scripts/setup.sh` makes at `.work/venv`. It knows nothing of LXD's
//! combined hashes; it checks the generic format, and every item's sha256
//! and size when mirroring.

use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::client::ClientEnv;

/// Path of a venv tool, or an error saying how to install it.
pub fn tool(name: &str) -> Result<PathBuf> {
    let path = crate::workspace_root().join(".work/venv/bin").join(name);
    if !path.is_file() {
        bail!("{} is missing: run scripts/setup.sh", path.display());
    }
    Ok(path)
}

/// `sstream-query --no-verify --json <base>/streams/v1/index.json`: every
/// item, flattened with its product and version fields.
pub fn query(env: &ClientEnv, base_url: &str) -> Result<Vec<Value>> {
    let out = env
        .command(tool("sstream-query")?)
        .args(["--no-verify", "--json"])
        .arg(format!("{base_url}/streams/v1/index.json"))
        .output()
        .context("cannot run sstream-query")?;
    if !out.status.success() {
        bail!(
            "sstream-query failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("sstream-query printed no JSON")?;
    match v {
        Value::Array(items) => Ok(items),
        other => bail!("sstream-query printed {other} instead of a list"),
    }
}

/// `sstream-mirror --no-verify <index url> <out>`: downloads every item and
/// checks its sha256 and size. Returns the output whatever the status.
pub fn mirror(env: &ClientEnv, base_url: &str, out_dir: &Path) -> Result<Output> {
    env.command(tool("sstream-mirror")?)
        .arg("--no-verify")
        .arg(format!("{base_url}/streams/v1/index.json"))
        .arg(out_dir)
        .output()
        .context("cannot run sstream-mirror")
}
