//! TLS for probes: client configuration from a module's `tls_config`, and
//! the certificate metrics blackbox derives from the peer chain.

use super::module::TlsOptions;
use super::ProbeMetrics;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Go's `time.Time{}.Unix()`: what blackbox reports as last chain expiry
/// when nothing was verified.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// Accepts any certificate: `insecure_skip_verify: true`. Handshake
/// signatures are still checked so the session itself is sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the client config; `alpn` is offered as given (HTTP/1.1 only:
/// the probe client speaks HTTP/1).
pub fn client_config(t: &TlsOptions, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
    let p = provider();
    let builder = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut cfg = if t.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(p)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &t.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("unable to read CA file {path}: {e}"))?;
                let mut n = 0;
                for der in pem_certs(&pem) {
                    roots
                        .add(der)
                        .map_err(|e| format!("invalid certificate in CA file {path}: {e}"))?;
                    n += 1;
                }
                if n == 0 {
                    return Err(format!("CA file {path} holds no PEM certificate"));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for c in native.certs {
                    let _ = roots.add(c);
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Extracts the certificates from PEM text (base64 between BEGIN/END
/// CERTIFICATE lines).
fn pem_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l == "-----BEGIN CERTIFICATE-----" {
            cur = Some(String::new());
        } else if l == "-----END CERTIFICATE-----" {
            if let Some(b) = cur.take() {
                if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b.as_bytes()) {
                    out.push(CertificateDer::from(der));
                }
            }
        } else if let Some(b) = cur.as_mut() {
            b.push_str(l);
        }
    }
    out
}

/// Performs the TLS handshake on a connected stream.
pub async fn handshake(
    tcp: TcpStream,
    t: &TlsOptions,
    host: &str,
    alpn: &[&[u8]],
) -> Result<TlsStream<TcpStream>, String> {
    let cfg = client_config(t, alpn)?;
    let name = t.server_name.clone().unwrap_or_else(|| host.to_string());
    let name = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let sn = ServerName::try_from(name.clone())
        .map_err(|e| format!("invalid server name {name:?}: {e}"))?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(sn, tcp)
        .await
        .map_err(|e| e.to_string())
}

/// Go's `pkix.Name.String()` approximation: RDNs in reverse order,
/// `SHORT=value` joined by commas.
fn name_string(n: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::oid_registry as oids;
    let mut parts = Vec::new();
    for rdn in n.iter() {
        for a in rdn.iter() {
            let oid = a.attr_type();
            let short = if *oid == oids::OID_X509_COMMON_NAME {
                "CN".to_string()
            } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                "O".into()
            } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                "OU".into()
            } else if *oid == oids::OID_X509_COUNTRY_NAME {
                "C".into()
            } else if *oid == oids::OID_X509_LOCALITY_NAME {
                "L".into()
            } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                "ST".into()
            } else {
                oid.to_id_string()
            };
            let v = a.as_str().unwrap_or("").to_string();
            parts.push(format!("{short}={v}"));
        }
    }
    parts.reverse();
    parts.join(",")
}

/// Records blackbox's TLS metrics for a finished handshake. `verified` is
/// false under `insecure_skip_verify` (Go then has no verified chain).
pub fn record(m: &mut ProbeMetrics, conn: &rustls::ClientConnection, verified: bool) {
    let certs = conn.peer_certificates().unwrap_or(&[]);
    let mut earliest: Option<i64> = None;
    let mut leaf_info: Option<(String, String, String, String)> = None;
    for (i, c) in certs.iter().enumerate() {
        let Ok((_, x)) = x509_parser::parse_x509_certificate(c.as_ref()) else {
            continue;
        };
        let na = x.validity().not_after.timestamp();
        earliest = Some(earliest.map_or(na, |e| e.min(na)));
        if i == 0 {
            let fp = sha2::Sha256::digest(c.as_ref());
            let fp: String = fp.iter().map(|b| format!("{b:02x}")).collect();
            let sans = x
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|s| {
                    s.value
                        .general_names
                        .iter()
                        .filter_map(|g| match g {
                            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            leaf_info = Some((fp, name_string(x.subject()), name_string(x.issuer()), sans));
        }
    }
    let earliest = earliest.map(|e| e as f64).unwrap_or(GO_ZERO_TIME);
    m.set(
        "probe_ssl_earliest_cert_expiry",
        "Returns last SSL chain expiry in unixtime",
        earliest,
    );
    m.set(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Returns last SSL chain expiry in timestamp",
        if verified { earliest } else { GO_ZERO_TIME },
    );
    if let Some((fp, subject, issuer, sans)) = leaf_info {
        m.set_labeled(
            "probe_ssl_last_chain_info",
            "Contains SSL leaf certificate information",
            &[
                ("fingerprint_sha256", &fp),
                ("subject", &subject),
                ("issuer", &issuer),
                ("subjectalternative", &sans),
            ],
            1.0,
        );
    }
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(rustls::ProtocolVersion::TLSv1_1) => "TLS 1.1",
        Some(rustls::ProtocolVersion::TLSv1_0) => "TLS 1.0",
        _ => "unknown",
    };
    m.set_labeled(
        "probe_tls_version_info",
        "Returns the TLS version used or NaN when unknown",
        &[("version", version)],
        1.0,
    );
}
