//! TLS for the workloads: a certificate authority per drill, certificates for its
//! hosts, and rustls configs for the servers and clients.
//!
//! When a scenario uses TLS, every host gets, in its own /etc (the overlay's upper
//! layer; the machine's /etc is untouched):
//! - `/etc/ssl/internal/ca.pem`: the drill's CA, also appended to the host's
//!   `/etc/ssl/certs/ca-certificates.crt` so curl and openssl trust it;
//! - `/etc/ssl/internal/HOST.pem` + `HOST.key`: valid for a year, for the host's name and
//!   addresses;
//! - `/etc/ssl/internal/HOST.prev.pem` + `HOST.prev.key`: last year's certificate, expired
//!   a month ago (what an `expired certificate` fault points a server at).
//!
//! - for every name an nginx TLS server of the host answers for (`server_name`, in its
//!   healthy or faulty config), `/etc/ssl/internal/NAME/` in the layout ACME clients
//!   leave: `cert.pem` (the leaf alone), `chain.pem` (the intermediate CA that signed
//!   it), `fullchain.pem` (leaf then intermediate: what a server must send) and
//!   `privkey.pem`. These leaves are issued by an intermediate CA ("Internal Issuing
//!   CA R1") that the root signed; clients trust only the root, so a server that sends
//!   `cert.pem` alone fails their verification ("unable to get local issuer certificate").
//!
//! The CA keys never leave the daemon's memory.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

/// Directory of the drill's certificates inside every host.
pub const DIR: &str = "/etc/ssl/internal";
/// The CA certificate inside every host.
pub const CA_PATH: &str = "/etc/ssl/internal/ca.pem";

pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The intermediate CA the per-name leaves are issued by.
    inter: rcgen::Certificate,
    inter_key: KeyPair,
}

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    /// A fresh CA; its name, as `openssl x509 -issuer` shows it, names neither the engine nor the drill.
    pub fn new() -> Result<Ca> {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "Internal Root CA");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(400);
        p.not_after = now + Duration::days(3650);
        let key = KeyPair::generate().context("generating the drill CA key")?;
        let cert = p.self_signed(&key).context("signing the drill CA")?;
        let mut ip = CertificateParams::default();
        ip.distinguished_name.push(DnType::CommonName, "Internal Issuing CA R1");
        ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ip.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ip.not_before = now - Duration::days(200);
        ip.not_after = now + Duration::days(1825);
        let inter_key = KeyPair::generate().context("generating the intermediate CA key")?;
        let inter = ip.signed_by(&inter_key, &cert, &key).context("signing the intermediate CA")?;
        Ok(Ca { cert, key, inter, inter_key })
    }

    /// Writes `/etc/ssl/internal/NAME/{cert,chain,fullchain,privkey}.pem` under `etc` (see
    /// the module's docs): a leaf for `name`, valid for 90 days from yesterday, issued
    /// by the intermediate.
    pub fn provision_name(&self, etc: &Path, name: &str) -> Result<()> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(anyhow!("`{name}` is not a name to issue a certificate for"));
        }
        let dir = etc.join(DIR.trim_start_matches("/etc/")).join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut p = CertificateParams::new(vec![name.to_string()]).with_context(|| format!("certificate for {name}"))?;
        p.distinguished_name.push(DnType::CommonName, name);
        let now = OffsetDateTime::now_utc();
        (p.not_before, p.not_after) = (now - Duration::days(1), now + Duration::days(89));
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.inter, &self.inter_key).with_context(|| format!("signing the certificate for {name}"))?;
        let write = |file: &str, text: &str| std::fs::write(dir.join(file), text).with_context(|| format!("writing {}/{file}", dir.display()));
        write("cert.pem", &cert.pem())?;
        write("chain.pem", &self.inter.pem())?;
        write("fullchain.pem", &format!("{}{}", cert.pem(), self.inter.pem()))?;
        write("privkey.pem", &key.serialize_pem())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("privkey.pem"), std::fs::Permissions::from_mode(0o600)).context("chmod privkey.pem")
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `name` and `ips`: valid for a year from yesterday, or
    /// (`expired`) valid for the year that ended 30 days ago.
    pub fn issue(&self, name: &str, ips: &[IpAddr], expired: bool) -> Result<Issued> {
        let mut p = CertificateParams::new(vec![name.to_string()]).with_context(|| format!("certificate for {name}"))?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let now = OffsetDateTime::now_utc();
        (p.not_before, p.not_after) = if expired { (now - Duration::days(395), now - Duration::days(30)) } else { (now - Duration::days(1), now + Duration::days(365)) };
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.cert, &self.key).with_context(|| format!("signing the certificate for {name}"))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// Writes the CA and the host's certificates under `etc` (the host's /etc as seen
    /// from the machine: the overlay's upper directory).
    pub fn provision(&self, etc: &Path, host: &str, ips: &[IpAddr]) -> Result<()> {
        let dir = etc.join(DIR.trim_start_matches("/etc/"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).with_context(|| format!("writing {}/{name}", dir.display()));
        write("ca.pem", &self.pem())?;
        for (suffix, expired) in [("", false), (".prev", true)] {
            let c = self.issue(host, ips, expired)?;
            write(&format!("{host}{suffix}.pem"), &c.cert_pem)?;
            write(&format!("{host}{suffix}.key"), &c.key_pem)?;
        }
        // The system bundle curl and openssl read, with the drill CA appended.
        let bundle = etc.join("ssl/certs/ca-certificates.crt");
        let mut text = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        text.push_str(&self.pem());
        std::fs::create_dir_all(bundle.parent().expect("has a parent"))?;
        std::fs::write(&bundle, text).with_context(|| format!("writing {}", bundle.display()))
    }
}

/// A server config from PEM files (the first certificate is the leaf).
pub fn server_config(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).with_context(|| format!("reading {cert}"))?.collect::<Result<_, _>>().with_context(|| format!("parsing {cert}"))?;
    if chain.is_empty() {
        return Err(anyhow!("{cert} holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the key {key}"))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate does not match its key")?;
    Ok(Arc::new(cfg))
}

/// A client config trusting the CA certificates in `ca_pem` (PEM text).
pub fn client_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.context("parsing a CA certificate")?).context("adding a CA certificate")?;
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider())).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// A TLS error as a client reports it ("certificate has expired", as curl says).
pub fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    // The exact figures (seconds since expiry) would split identical failures apart.
    if text.to_ascii_lowercase().contains("expired") { "TLS: certificate has expired".to_string() } else { format!("TLS: {text}") }
}
