//! `--log.format logfmt`: one `key=value` line per event, like Prometheus'
//! go-kit logger: `ts=... level=info target=... msg=... request_id=...`.
//! Fields of the enclosing spans (request_id, route) are appended unless the
//! event carries the same key itself, so no key appears twice on a line.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Separators of the internal span-field encoding (never shown).
const KV: char = '\u{1f}';
const END: char = '\u{1e}';

/// Span field formatter: stores `key KV value END` pairs for [`Logfmt`].
pub struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut w: Writer<'w>,
        fields: R,
    ) -> fmt::Result {
        let mut c = Collect(Vec::new());
        fields.record(&mut c);
        for (k, v) in c.0 {
            write!(w, "{k}{KV}{v}{END}")?;
        }
        Ok(())
    }
}

/// The event formatter.
pub struct Logfmt;

struct Collect(Vec<(String, String)>);

impl Visit for Collect {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.push((key(f), v.to_string()));
    }

    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.0.push((key(f), format!("{v:?}")));
    }
}

fn key(f: &Field) -> String {
    match f.name() {
        "message" => "msg".to_string(),
        n => n.to_string(),
    }
}

/// Writes ` key=value`, quoting values that need it.
fn pair(w: &mut Writer<'_>, k: &str, v: &str) -> fmt::Result {
    let plain = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '=' || c.is_control());
    if plain {
        write!(w, " {k}={v}")
    } else {
        write!(w, " {k}=\"")?;
        for c in v.chars() {
            match c {
                '"' => w.write_str("\\\"")?,
                '\\' => w.write_str("\\\\")?,
                '\n' => w.write_str("\\n")?,
                c if c.is_control() => write!(w, "\\u{{{:x}}}", c as u32)?,
                c => w.write_char(c)?,
            }
        }
        w.write_char('"')
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "ts={} level={} target={}",
            crate::model::time::rfc3339_millis(crate::model::now_millis()),
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        )?;
        let mut c = Collect(Vec::new());
        event.record(&mut c);
        for (k, v) in &c.0 {
            pair(&mut w, k, v)?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                let Some(f) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                for item in f.fields.split(END) {
                    if let Some((k, v)) = item.split_once(KV) {
                        if !c.0.iter().any(|(ek, _)| ek == k) {
                            pair(&mut w, k, v)?;
                        }
                    }
                }
            }
        }
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_logfmt_with_span_fields_once() {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::fmt()
            .fmt_fields(LogfmtFields)
            .event_format(Logfmt)
            .with_writer(move || b2.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("request", request_id = "r-1", route = "/a b");
            let _e = span.enter();
            tracing::info!(target: "klaxon::access", request_id = "r-1", status = 200, "request done");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.starts_with("ts="), "{out}");
        assert!(
            out.trim_end().ends_with(
                "level=info target=klaxon::access msg=\"request done\" request_id=r-1 status=200 route=\"/a b\""
            ),
            "{out}"
        );
    }
}
