//! The DNS prober: one query to the target server over UDP or TCP, with
//! hickory-proto encoding the messages, then blackbox's rcode and
//! resource-record validations. Records are validated in their zone-file
//! text form (`name\tttl\tclass\ttype\trdata`), which is what blackbox's
//! regexes are written against.

use super::module::{DnsModule, RRValidator};
use super::{resolve, Ctx};
use crate::net::dns::{exchange, rand_id};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;

const DUR: &str = "probe_dns_duration_seconds";
const DUR_HELP: &str = "Duration of DNS request by phase";

/// Record type by name (`A`, `AAAA`, `ANY`, ...).
pub fn record_type(s: &str) -> Option<RecordType> {
    match RecordType::from_str(s) {
        Ok(RecordType::Unknown(_)) | Err(_) => None,
        Ok(t) => Some(t),
    }
}

/// DNS class by name (`IN`, `CH`, ...).
pub fn dns_class(s: &str) -> Option<DNSClass> {
    DNSClass::from_str(s).ok()
}

/// Numeric rcode for the names blackbox (miekg/dns) accepts.
pub fn rcode_value(s: &str) -> Option<u16> {
    Some(match s {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        "YXDOMAIN" => 6,
        "YXRRSET" => 7,
        "NXRRSET" => 8,
        "NOTAUTH" => 9,
        "NOTZONE" => 10,
        "BADSIG" | "BADVERS" => 16,
        "BADKEY" => 17,
        "BADTIME" => 18,
        "BADMODE" => 19,
        "BADNAME" => 20,
        "BADALG" => 21,
        "BADTRUNC" => 22,
        "BADCOOKIE" => 23,
        _ => return None,
    })
}

fn rr_text(r: &Record) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        r.name,
        r.ttl,
        r.dns_class,
        r.record_type(),
        r.data
    )
}

/// blackbox's `validRRs`: false when any configured check fails.
fn valid_rrs(ctx: &mut Ctx, rrs: &[Record], v: &RRValidator) -> bool {
    let texts: Vec<String> = rrs.iter().map(rr_text).collect();
    for re in &v.fail_if_matches {
        if texts.iter().any(|t| re.is_match(t)) {
            ctx.error("At least one RR matched regexp", &[("regexp", re.as_str())]);
            return false;
        }
    }
    for re in &v.fail_if_all_match {
        if !texts.is_empty() && texts.iter().all(|t| re.is_match(t)) {
            ctx.error("All RRs matched regexp", &[("regexp", re.as_str())]);
            return false;
        }
    }
    for re in &v.fail_if_not_matches {
        if texts.iter().any(|t| !re.is_match(t)) {
            ctx.error(
                "At least one RR did not match regexp",
                &[("regexp", re.as_str())],
            );
            return false;
        }
    }
    for re in &v.fail_if_none_matches {
        if !texts.iter().any(|t| re.is_match(t)) {
            ctx.error(
                "None of the RRs did matched any regexp",
                &[("regexp", re.as_str())],
            );
            return false;
        }
    }
    true
}

/// Runs the DNS probe against `target` (`host[:port]`, port 53 default).
pub(crate) async fn probe(ctx: &mut Ctx, d: &DnsModule, target: &str) -> bool {
    for p in ["connect", "request", "resolve"] {
        ctx.metrics.set_labeled(DUR, DUR_HELP, &[("phase", p)], 0.0);
    }
    let m = &mut ctx.metrics;
    m.set(
        "probe_dns_answer_rrs",
        "Returns number of entries in the answer resource record list",
        0.0,
    );
    m.set(
        "probe_dns_authority_rrs",
        "Returns number of entries in the authority resource record list",
        0.0,
    );
    m.set(
        "probe_dns_additional_rrs",
        "Returns number of entries in the additional resource record list",
        0.0,
    );
    m.set(
        "probe_dns_query_succeeded",
        "Displays whether or not the query was executed successfully",
        0.0,
    );
    let (host, port) = match resolve::split_host_port(target, Some(53)) {
        Ok(hp) => hp,
        Err(e) => {
            ctx.error("Error splitting target address and port", &[("err", &e)]);
            return false;
        }
    };
    let (ip, lookup) = match resolve::choose(ctx, &host, &d.ip).await {
        Ok(v) => v,
        Err(_) => return false,
    };
    ctx.metrics
        .set_labeled(DUR, DUR_HELP, &[("phase", "resolve")], lookup);
    let Some(qtype) = record_type(&d.query_type) else {
        ctx.error("Invalid query type", &[("query_type", &d.query_type)]);
        return false;
    };
    let class = dns_class(&d.query_class).unwrap_or(DNSClass::IN);
    let mut name = match Name::from_ascii(&d.query_name) {
        Ok(n) => n,
        Err(e) => {
            ctx.error("Invalid query name", &[("err", &e.to_string())]);
            return false;
        }
    };
    name.set_fqdn(true);
    let id: u16 = rand_id();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = d.recursion_desired;
    let mut q = Query::query(name, qtype);
    q.set_query_class(class);
    msg.add_query(q);
    let bytes = match msg.to_vec() {
        Ok(b) => b,
        Err(e) => {
            ctx.error("Error encoding DNS query", &[("err", &e.to_string())]);
            return false;
        }
    };
    let addr = SocketAddr::new(ip, port);
    ctx.info(
        "Making DNS query",
        &[
            ("target", &addr.to_string()),
            ("dial_protocol", if d.tcp { "tcp" } else { "udp" }),
            ("query", &d.query_name),
            ("type", &d.query_type),
            ("class", &d.query_class),
        ],
    );
    let t0 = Instant::now();
    let (resp, connect) = match exchange(addr, d.tcp, &bytes, id).await {
        Ok(r) => r,
        Err(e) => {
            ctx.error("Error while sending a DNS query", &[("err", &e)]);
            return false;
        }
    };
    let total = t0.elapsed().as_secs_f64();
    ctx.metrics
        .set_labeled(DUR, DUR_HELP, &[("phase", "connect")], connect);
    ctx.metrics
        .set_labeled(DUR, DUR_HELP, &[("phase", "request")], total - connect);
    let m = &mut ctx.metrics;
    m.set(
        "probe_dns_answer_rrs",
        "Returns number of entries in the answer resource record list",
        resp.answers.len() as f64,
    );
    m.set(
        "probe_dns_authority_rrs",
        "Returns number of entries in the authority resource record list",
        resp.authorities.len() as f64,
    );
    m.set(
        "probe_dns_additional_rrs",
        "Returns number of entries in the additional resource record list",
        resp.additionals.len() as f64,
    );
    m.set(
        "probe_dns_query_succeeded",
        "Displays whether or not the query was executed successfully",
        1.0,
    );
    if qtype == RecordType::SOA {
        m.register("probe_dns_serial", "Returns the serial number of the zone");
        for a in &resp.answers {
            if let hickory_proto::rr::RData::SOA(soa) = &a.data {
                m.set(
                    "probe_dns_serial",
                    "Returns the serial number of the zone",
                    f64::from(soa.serial),
                );
            }
        }
    }
    let rcode = u16::from(resp.metadata.response_code);
    let valid: Vec<u16> = d
        .valid_rcodes
        .iter()
        .filter_map(|r| rcode_value(r))
        .collect();
    if !valid.contains(&rcode) {
        ctx.error(
            "Rcode is not one of the valid rcodes",
            &[
                ("string_rcode", &resp.metadata.response_code.to_string()),
                ("rcode", &rcode.to_string()),
                ("valid_rcodes", &d.valid_rcodes.join(",")),
            ],
        );
        return false;
    }
    ctx.info("Validating Answer RRs", &[]);
    if !valid_rrs(ctx, &resp.answers, &d.validate_answer) {
        ctx.error("Answer RRs validation failed", &[]);
        return false;
    }
    ctx.info("Validating Authority RRs", &[]);
    if !valid_rrs(ctx, &resp.authorities, &d.validate_authority) {
        ctx.error("Authority RRs validation failed", &[]);
        return false;
    }
    ctx.info("Validating Additional RRs", &[]);
    if !valid_rrs(ctx, &resp.additionals, &d.validate_additional) {
        ctx.error("Additional RRs validation failed", &[]);
        return false;
    }
    true
}
