//! The shared raw shapes (as written, with source positions, `Spanned`, on
//! every node a semantic check may have to point at): `global:`, static and
//! file SD entries, HTTP client settings, relabel rules. Each stage's own
//! section shape lives in its `config.rs`; the whole file's is
//! `settings::raw`. Nothing here is defaulted or validated.
//!
//! All structs deny unknown fields: a misspelt key silently ignored is a
//! config that does something else than the user thinks.

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;
use std::fmt;

pub(crate) type S<T> = Spanned<T>;

/// A string-to-string mapping that keeps each key's and value's position
/// (serde-saphyr's `Spanned` is not `Ord`, so it cannot key a map).
#[derive(Debug, Default)]
pub(crate) struct SpannedMap(pub Vec<(S<String>, S<String>)>);

impl<'de> Deserialize<'de> for SpannedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpannedMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of label names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SpannedMap, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<S<String>, S<String>>()? {
                    v.push((k, val));
                }
                Ok(SpannedMap(v))
            }
            fn visit_unit<E>(self) -> Result<SpannedMap, E> {
                Ok(SpannedMap::default())
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub scrape_interval: Option<S<String>>,
    pub scrape_timeout: Option<S<String>>,
    pub evaluation_interval: Option<S<String>>,
    pub external_labels: Option<SpannedMap>,
    pub query_log_file: Option<S<String>>,
    pub scrape_protocols: Option<S<Vec<S<String>>>>,
    pub scrape_native_histograms: Option<bool>,
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    pub body_size_limit: Option<S<String>>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub metric_name_validation_scheme: Option<S<String>>,
    pub metric_name_escaping_scheme: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStaticConfig {
    pub targets: Option<Vec<S<String>>>,
    pub labels: Option<SpannedMap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileSdConfig {
    pub files: Option<Vec<S<String>>>,
    pub refresh_interval: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub username: Option<String>,
    pub username_file: Option<S<String>>,
    pub password: Option<S<String>>,
    pub password_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    pub credentials: Option<String>,
    pub credentials_file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub key: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<S<String>>,
    pub max_version: Option<S<String>>,
}

raw_http_client_struct! {
    /// An `http_config:` block (Alertmanager's receivers and `global`): the
    /// HTTP client settings a scrape config has inline, plus `proxy_url`,
    /// which the notifier supports.
    pub(crate) struct RawHttpClientConfig {
        proxy_url: Option<S<String>>,
        oauth2: Option<S<IgnoredAny>>,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelabelConfig {
    pub source_labels: Option<S<Vec<S<String>>>>,
    pub separator: Option<S<String>>,
    pub regex: Option<S<String>>,
    pub modulus: Option<S<u64>>,
    pub target_label: Option<S<String>>,
    pub replacement: Option<S<String>>,
    pub action: Option<S<String>>,
}

/// Declares a raw config struct (serde, unknown fields denied) that carries
/// Prometheus' HTTP client settings inline under their upstream names, after
/// the struct's own fields: `basic_auth`, `authorization`, `bearer_token`,
/// `bearer_token_file`, `tls_config`, `follow_redirects`, `enable_http2`.
/// With `unsupported;` first it also recognises the keys klaxon does not
/// implement (`proxy_url`, `no_proxy`, `proxy_from_environment`,
/// `proxy_connect_header`, `oauth2`) so they get a "not supported" error at
/// their line ([`crate::config::http::reject_unsupported`]). One list of
/// fields for every block that talks HTTP, and serde's own unknown-field
/// errors with their positions (`#[serde(flatten)]` would lose both).
macro_rules! raw_http_client_struct {
    (unsupported; $(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $f:ident : $t:ty,)*
    }) => {
        $crate::config::raw::raw_http_client_struct! {
            $(#[$m])* $vis struct $name {
                $($(#[$fm])* $f: $t,)*
                proxy_url: Option<$crate::config::raw::S<serde::de::IgnoredAny>>,
                no_proxy: Option<$crate::config::raw::S<serde::de::IgnoredAny>>,
                proxy_from_environment: Option<$crate::config::raw::S<serde::de::IgnoredAny>>,
                proxy_connect_header: Option<$crate::config::raw::S<serde::de::IgnoredAny>>,
                oauth2: Option<$crate::config::raw::S<serde::de::IgnoredAny>>,
            }
        }
    };
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $f:ident : $t:ty,)*
    }) => {
        $(#[$m])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $($(#[$fm])* pub $f: $t,)*
            pub basic_auth: Option<$crate::config::raw::S<$crate::config::raw::RawBasicAuth>>,
            pub authorization:
                Option<$crate::config::raw::S<$crate::config::raw::RawAuthorization>>,
            pub bearer_token: Option<$crate::config::raw::S<String>>,
            pub bearer_token_file: Option<$crate::config::raw::S<String>>,
            pub tls_config: Option<$crate::config::raw::S<$crate::config::raw::RawTlsConfig>>,
            pub follow_redirects: Option<bool>,
            pub enable_http2: Option<bool>,
        }
    };
}
pub(crate) use raw_http_client_struct;
