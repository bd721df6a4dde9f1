//! `dns_sd_configs`: SRV, A, AAAA, MX or NS lookups every
//! `refresh_interval`, with Prometheus' `__meta_dns_*` labels.
//!
//! Names are resolved as Prometheus does: the servers, search list and
//! `ndots` of /etc/resolv.conf, UDP first and TCP when the answer is
//! truncated, the first server that answers wins. A name that fails keeps
//! its last good targets; NXDOMAIN everywhere means no targets.

use super::config::{DnsSdConfig, DnsType};
use super::{join_host_port, ProviderCtx};
use crate::config::TargetGroup;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

pub const META_NAME: &str = "__meta_dns_name";
pub const META_SRV_TARGET: &str = "__meta_dns_srv_record_target";
pub const META_SRV_PORT: &str = "__meta_dns_srv_record_port";
pub const META_MX_TARGET: &str = "__meta_dns_mx_record_target";
pub const META_NS_TARGET: &str = "__meta_dns_ns_record_target";

/// Where and how names are looked up.
#[derive(Clone, Debug)]
pub struct ResolverConf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
}

impl ResolverConf {
    /// Parses resolv.conf text (`nameserver`, `search`/`domain`,
    /// `options ndots:N timeout:N`).
    pub fn parse(text: &str) -> ResolverConf {
        let mut c = ResolverConf {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
        };
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match w.next() {
                Some("nameserver") => {
                    if let Some(ip) = w.next().and_then(|s| s.parse::<std::net::IpAddr>().ok()) {
                        c.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") | Some("domain") => {
                    c.search = w.map(|s| s.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for o in w {
                        if let Some(n) = o.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                            c.ndots = n;
                        }
                        if let Some(n) = o.strip_prefix("timeout:").and_then(|n| n.parse().ok()) {
                            c.timeout = Duration::from_secs(n);
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The fully qualified names to try for `name`, in order.
    pub fn name_list(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let as_is = format!("{name}.");
        let searched = self.search.iter().map(|d| format!("{name}.{d}."));
        if name.matches('.').count() >= self.ndots {
            std::iter::once(as_is).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(as_is)).collect()
        }
    }
}

pub async fn run(cfg: DnsSdConfig, ctx: ProviderCtx) {
    let conf = match &ctx.opts.dns_servers {
        Some(servers) => ResolverConf {
            servers: servers.clone(),
            search: Vec::new(),
            ndots: 1,
            timeout: ctx.opts.dns_timeout,
        },
        None => match std::fs::read_to_string("/etc/resolv.conf") {
            Ok(t) => ResolverConf::parse(&t),
            Err(e) => {
                ctx.failed(&format!("reading /etc/resolv.conf: {e}"));
                return;
            }
        },
    };
    let mut last: HashMap<String, Vec<TargetGroup>> = HashMap::new();
    loop {
        let lookups = cfg.names.iter().map(|n| refresh_one(&conf, &cfg, n));
        let results = futures_util::future::join_all(lookups).await;
        let mut groups = Vec::new();
        for (name, r) in cfg.names.iter().zip(results) {
            match r {
                Ok(gs) => {
                    groups.extend(gs.iter().cloned());
                    last.insert(name.clone(), gs);
                }
                Err(e) => {
                    ctx.failed(&e);
                    groups.extend(last.get(name).into_iter().flatten().cloned());
                }
            }
        }
        ctx.replace_all(groups);
        tokio::time::sleep(cfg.refresh_interval).await;
    }
}

fn record_type(t: DnsType) -> RecordType {
    match t {
        DnsType::Srv => RecordType::SRV,
        DnsType::A => RecordType::A,
        DnsType::Aaaa => RecordType::AAAA,
        DnsType::Mx => RecordType::MX,
        DnsType::Ns => RecordType::NS,
    }
}

/// The targets of one name: one group per record (each record has its own
/// labels), sources `NAME/INDEX`.
pub async fn refresh_one(
    conf: &ResolverConf,
    cfg: &DnsSdConfig,
    name: &str,
) -> Result<Vec<TargetGroup>, String> {
    let msg = lookup_with_search(conf, name, record_type(cfg.kind)).await?;
    let mut out = Vec::new();
    for rec in &msg.answers {
        let mut labels = BTreeMap::new();
        for l in [
            META_SRV_TARGET,
            META_SRV_PORT,
            META_MX_TARGET,
            META_NS_TARGET,
        ] {
            labels.insert(l.to_string(), String::new());
        }
        labels.insert(META_NAME.to_string(), name.to_string());
        let target = match &rec.data {
            RData::SRV(srv) => {
                let t = srv.target.to_ascii();
                labels.insert(META_SRV_TARGET.into(), t.clone());
                labels.insert(META_SRV_PORT.into(), srv.port.to_string());
                join_host_port(t.trim_end_matches('.'), srv.port)
            }
            RData::MX(mx) => {
                let t = mx.exchange.to_ascii();
                labels.insert(META_MX_TARGET.into(), t.clone());
                join_host_port(t.trim_end_matches('.'), cfg.port)
            }
            RData::NS(ns) => {
                let t = ns.0.to_ascii();
                labels.insert(META_NS_TARGET.into(), t.clone());
                join_host_port(t.trim_end_matches('.'), cfg.port)
            }
            RData::A(a) => join_host_port(&a.0.to_string(), cfg.port),
            RData::AAAA(a) => join_host_port(&a.0.to_string(), cfg.port),
            // CNAMEs come with A/AAAA answers; other types are not targets.
            _ => continue,
        };
        out.push(TargetGroup {
            targets: vec![target],
            labels,
            source: format!("{name}/{}", out.len()),
            target_labels: Vec::new(),
        });
    }
    Ok(out)
}

/// Tries every name of the search list; the first NOERROR answer wins.
/// NXDOMAIN (or another error code) for every name is an empty answer; a
/// name no server answered is an error.
async fn lookup_with_search(
    conf: &ResolverConf,
    name: &str,
    qtype: RecordType,
) -> Result<Message, String> {
    let mut all_answered = true;
    let mut last_err = String::new();
    for fqdn in conf.name_list(name) {
        match lookup_any_server(conf, &fqdn, qtype).await {
            Ok(m) if m.metadata.response_code == ResponseCode::NoError => return Ok(m),
            Ok(_) => {}
            Err(e) => {
                all_answered = false;
                last_err = e;
            }
        }
    }
    if all_answered {
        return Ok(Message::new(0, MessageType::Response, OpCode::Query));
    }
    Err(format!(
        "could not resolve {name:?}: all servers responded with errors to at least one search domain ({last_err})"
    ))
}

async fn lookup_any_server(
    conf: &ResolverConf,
    fqdn: &str,
    qtype: RecordType,
) -> Result<Message, String> {
    let mut qname = Name::from_ascii(fqdn).map_err(|e| format!("invalid name {fqdn:?}: {e}"))?;
    qname.set_fqdn(true);
    let mut errors = Vec::new();
    for &server in &conf.servers {
        let id = crate::net::dns::rand_id();
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(qname.clone(), qtype));
        let bytes = msg.to_vec().map_err(|e| e.to_string())?;
        let mut r = exchange(server, false, &bytes, id, conf.timeout).await;
        if let Ok(m) = &r {
            if m.metadata.truncation {
                r = exchange(server, true, &bytes, id, conf.timeout).await;
            }
        }
        match r {
            Ok(m) => return Ok(m),
            Err(e) => errors.push(format!("{server}: {e}")),
        }
    }
    if conf.servers.is_empty() {
        errors.push("no nameserver configured".to_string());
    }
    Err(format!(
        "could not resolve {fqdn}: no servers returned a viable answer ({})",
        errors.join("; ")
    ))
}

async fn exchange(
    server: SocketAddr,
    tcp: bool,
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> Result<Message, String> {
    match tokio::time::timeout(timeout, crate::net::dns::exchange(server, tcp, query, id)).await {
        Ok(r) => r.map(|(m, _)| m),
        Err(_) => Err(format!(
            "{} query timed out after {timeout:?}",
            if tcp { "TCP" } else { "UDP" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_search_order() {
        let c = ResolverConf::parse(
            "# x\nnameserver 10.0.0.1\nnameserver ::1\nsearch a.example b.example\noptions ndots:2 timeout:3\n",
        );
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].port(), 53);
        assert_eq!(c.ndots, 2);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(
            c.name_list("web"),
            ["web.a.example.", "web.b.example.", "web."]
        );
        assert_eq!(
            c.name_list("x.y.z"),
            ["x.y.z.", "x.y.z.a.example.", "x.y.z.b.example."]
        );
        assert_eq!(c.name_list("abs."), ["abs."]);
    }
}
