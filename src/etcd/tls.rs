//! TLS settings of one client (POD "TLS"): the PEM files named by the
//! constructor's `tls` option, read once when the client is created, and
//! the rules that decide which endpoints speak TLS. Pure Rust: the files
//! are read on the Perl thread inside `new` (so a bad path croaks at once);
//! the tonic configuration is built on whichever thread creates a channel.

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The contents of the files named by `tls => { ... }`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM CA bundle that verifies the server; `None`: the system's roots.
    pub ca: Option<Vec<u8>>,
    /// PEM client certificate chain and its private key (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name checked against the server certificate instead of the host.
    pub server_name: Option<String>,
}

// Key material stays out of debug output.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// File paths as given to the constructor.
#[derive(Debug, Clone, Default)]
pub struct TlsPaths {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
}

/// `std::io::Error`'s text without the "(os error N)" suffix.
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

fn read(option: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("tls {option} '{path}': {}", io_text(&e)))
}

impl Tls {
    /// Reads the files; errors name the option and the file. The result is
    /// then checked by building a tonic TLS configuration from it, so a file
    /// that holds no usable certificate or key fails here too.
    pub fn load(p: &TlsPaths) -> Result<Tls, String> {
        let ca = p
            .ca_file
            .as_deref()
            .map(|f| read("ca_file", f))
            .transpose()?;
        let identity = match (&p.cert_file, &p.key_file) {
            (Some(c), Some(k)) => Some((read("cert_file", c)?, read("key_file", k)?)),
            (Some(_), None) => return Err("tls cert_file given without key_file".into()),
            (None, Some(_)) => return Err("tls key_file given without cert_file".into()),
            (None, None) => None,
        };
        if let Some(ca) = &ca {
            if !contains_pem(ca, "CERTIFICATE") {
                return Err(format!(
                    "tls ca_file '{}': no PEM certificate found",
                    p.ca_file.as_deref().unwrap_or_default()
                ));
            }
        }
        if let Some((cert, key)) = &identity {
            if !contains_pem(cert, "CERTIFICATE") {
                return Err(format!(
                    "tls cert_file '{}': no PEM certificate found",
                    p.cert_file.as_deref().unwrap_or_default()
                ));
            }
            if !contains_pem(key, "PRIVATE KEY") {
                return Err(format!(
                    "tls key_file '{}': no PEM private key found",
                    p.key_file.as_deref().unwrap_or_default()
                ));
            }
        }
        let tls = Tls {
            ca,
            identity,
            server_name: p.server_name.clone().filter(|s| !s.is_empty()),
        };
        Endpoint::from_static("https://localhost")
            .tls_config(tls.client_config())
            .map_err(|e| {
                let why = chain_text(&e);
                let why = why.strip_prefix("transport error: ").unwrap_or(&why);
                if tls.ca.is_none() && why.contains("native certs") {
                    "tls: no ca_file given and no system CA certificates found".to_owned()
                } else if why.contains("KeyMismatch") {
                    format!(
                        "tls key_file '{}' does not belong to cert_file '{}'",
                        p.key_file.as_deref().unwrap_or_default(),
                        p.cert_file.as_deref().unwrap_or_default()
                    )
                } else {
                    format!("tls: {why}")
                }
            })?;
        Ok(tls)
    }

    /// The tonic client configuration for these settings.
    pub fn client_config(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new();
        c = match &self.ca {
            Some(ca) => c.ca_certificate(Certificate::from_pem(ca)),
            None => c.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            c = c.domain_name(name.clone());
        }
        c
    }
}

fn contains_pem(data: &[u8], label: &str) -> bool {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains(label))
}

/// An error's text followed by the text of each of its sources.
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// The URI an endpoint is dialled at. `host:port` means https when the
/// client has TLS settings, plain http otherwise; an explicit scheme wins.
pub fn target_uri(ep: &str, tls: bool) -> String {
    if ep.starts_with("http://") || ep.starts_with("https://") {
        ep.to_owned()
    } else if tls {
        format!("https://{ep}")
    } else {
        format!("http://{ep}")
    }
}

/// Decides whether the client speaks TLS, refusing endpoint lists that
/// would fail over between encrypted and plaintext connections: with the
/// `tls` option every endpoint is TLS (an explicit `http://` is refused);
/// without it, either every endpoint is `https://` (verified against the
/// system's roots) or none is.
pub fn uses_tls(endpoints: &[String], tls_option: bool) -> Result<bool, String> {
    let https = endpoints
        .iter()
        .filter(|e| e.starts_with("https://"))
        .count();
    if tls_option {
        if let Some(ep) = endpoints.iter().find(|e| e.starts_with("http://")) {
            return Err(format!(
                "endpoint '{ep}' is plain http but the tls option is set"
            ));
        }
        return Ok(true);
    }
    if https > 0 && https < endpoints.len() {
        return Err("endpoints mix https and plain http".into());
    }
    Ok(https > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target_uri("127.0.0.1:2379", false), "http://127.0.0.1:2379");
        assert_eq!(target_uri("127.0.0.1:2379", true), "https://127.0.0.1:2379");
        assert_eq!(target_uri("http://h:1", true), "http://h:1");
        assert_eq!(target_uri("https://h:1", false), "https://h:1");
    }

    #[test]
    fn schemes() {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(uses_tls(&v(&["a:1", "b:2"]), false), Ok(false));
        assert_eq!(uses_tls(&v(&["a:1", "https://b:2"]), true), Ok(true));
        assert_eq!(
            uses_tls(&v(&["https://a:1", "https://b:2"]), false),
            Ok(true)
        );
        assert!(uses_tls(&v(&["http://a:1"]), true).is_err());
        assert!(uses_tls(&v(&["a:1", "https://b:2"]), false).is_err());
    }

    #[test]
    fn load_names_option_and_file() {
        let p = TlsPaths {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert_eq!(
            Tls::load(&p).unwrap_err(),
            "tls ca_file '/nonexistent/ca.pem': No such file or directory"
        );
        let p = TlsPaths {
            cert_file: Some("c".into()),
            ..Default::default()
        };
        assert!(Tls::load(&p).unwrap_err().contains("without key_file"));
    }
}
