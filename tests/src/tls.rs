//! A throwaway certificate authority and a server certificate for
//! `127.0.0.1`, made with the `openssl` CLI.
//!
//! Clients are pointed at the CA with `SSL_CERT_FILE` (Go's TLS in `lxc` and
//! `lxd`, and Python's `ssl`, both honour it), so the system trust store is
//! never modified. EC P-256 keys keep generation in the tens of milliseconds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run;

/// Files of a throwaway CA and a server certificate signed by it.
#[derive(Clone, Debug)]
pub struct TestTls {
    /// The CA certificate (PEM): give it to clients as `SSL_CERT_FILE`.
    pub ca_cert: PathBuf,
    /// The server certificate (PEM), valid for IP `127.0.0.1` and `localhost`.
    pub server_cert: PathBuf,
    /// The server's private key (PEM).
    pub server_key: PathBuf,
}

impl TestTls {
    /// Creates the CA and server files in `dir` (which must exist).
    pub fn create(dir: &Path) -> Result<Self> {
        let ca_key = dir.join("ca.key");
        let ca_cert = dir.join("ca.crt");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.crt");
        let ext = dir.join("server.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];

        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert)
            .args(["-days", "2", "-subj", "/CN=ssgen throwaway test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]))
        .context("openssl: create the test CA")?;

        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", "/CN=127.0.0.1"]))
        .context("openssl: create the server key and CSR")?;

        // Go ignores the CN: the IP must be in subjectAltName.
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )
        .context("write server.ext")?;
        run(Command::new("openssl")
            .args(["x509", "-req", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .args(["-set_serial", "2", "-days", "2", "-out"])
            .arg(&cert)
            .arg("-extfile")
            .arg(&ext))
        .context("openssl: sign the server certificate")?;

        Ok(Self {
            ca_cert,
            server_cert: cert,
            server_key: key,
        })
    }
}
