//! `/proc/net/netstat`, `/proc/net/snmp` and `/proc/net/snmp6`, with
//! node_exporter's default field selection. Typed untyped upstream; gauges
//! here (see `vmstat`).

use super::{num, parse_err, read, HostError, HostOptions, Out};
use std::path::Path;

/// node_exporter 1.5's default `--collector.netstat.fields`, as a predicate:
/// `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`
fn wanted(proto: &str, field: &str) -> bool {
    if matches!(field, "InErrors" | "InErrs") {
        return true;
    }
    match proto {
        "Ip" => field == "Forwarding",
        "Ip6" | "IpExt" => matches!(field, "InOctets" | "OutOctets"),
        "Icmp" | "Icmp6" => matches!(field, "InMsgs" | "OutMsgs"),
        "TcpExt" => {
            field.starts_with("Listen")
                || field.starts_with("Syncookies")
                || matches!(field, "TCPSynRetrans" | "TCPTimeouts")
        }
        "Tcp" => matches!(
            field,
            "ActiveOpens"
                | "InSegs"
                | "OutSegs"
                | "OutRsts"
                | "PassiveOpens"
                | "RetransSegs"
                | "CurrEstab"
        ),
        "Udp" | "Udp6" => matches!(
            field,
            "InDatagrams" | "OutDatagrams" | "NoPorts" | "RcvbufErrors" | "SndbufErrors"
        ),
        _ => false,
    }
}

fn emit(out: &mut Out, proto: &str, field: &str, v: f64) {
    if wanted(proto, field) {
        let name = format!("node_netstat_{proto}_{field}");
        out.untyped(&name, &format!("Statistic {proto}{field}."), &[], v);
    }
}

/// Pairs of lines: `Proto: Name1 Name2 ...` then `Proto: v1 v2 ...`.
fn parse_pairs(p: &Path, text: &str, out: &mut Out) -> Result<(), HostError> {
    let lines: Vec<&str> = text.lines().collect();
    for (n, pair) in lines.chunks(2).enumerate() {
        let [names, vals] = pair else {
            return Err(parse_err(p, n * 2 + 1, "header without value line"));
        };
        let (Some((proto, names)), Some((proto2, vals))) =
            (names.split_once(':'), vals.split_once(':'))
        else {
            return Err(parse_err(p, n * 2 + 1, "missing ':'"));
        };
        if proto != proto2 {
            return Err(parse_err(
                p,
                n * 2 + 2,
                format!("protocol {proto2} after header {proto}"),
            ));
        }
        for (k, v) in names.split_whitespace().zip(vals.split_whitespace()) {
            if wanted(proto, k) {
                emit(out, proto, k, num(p, n * 2 + 2, k, v)?);
            }
        }
    }
    Ok(())
}

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    for f in ["net/netstat", "net/snmp"] {
        let p = opts.proc_path.join(f);
        parse_pairs(&p, &read(&p)?, out)?;
    }
    // snmp6 is `Ip6InOctets 128` one per line; absent without IPv6.
    let p = opts.proc_path.join("net/snmp6");
    if let Ok(text) = std::fs::read_to_string(&p) {
        for (i, line) in text.lines().enumerate() {
            let mut f = line.split_whitespace();
            let (Some(k), Some(v)) = (f.next(), f.next()) else {
                continue;
            };
            let Some(split) = ["UdpLite6", "Icmp6", "Udp6", "Ip6"]
                .iter()
                .find(|pre| k.starts_with(*pre))
            else {
                continue;
            };
            let (proto, field) = k.split_at(split.len());
            if wanted(proto, field) {
                emit(out, proto, field, num(&p, i + 1, k, v)?);
            }
        }
    }
    Ok(())
}
