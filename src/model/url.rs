//! URL helpers: query encoding, shared by scrape URLs (`params`,
//! `__param_*`) and the templates' `urlquery`/`urlQueryEscape`; and hiding a
//! URL's password where the URL is shown.

/// Go's `url.QueryEscape`: RFC 3986 unreserved bytes stay, space becomes
/// `+`, everything else is percent-encoded.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `url` with the password of its userinfo replaced by `<secret>`
/// (`http://user:<secret>@host/...`), for logs, errors and metric labels.
pub fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = url.get(rest_start..).unwrap_or("");
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_end).unwrap_or("");
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = authority.get(..at).unwrap_or("");
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:<secret>{}",
        url.get(..rest_start).unwrap_or(""),
        userinfo.get(..colon).unwrap_or(""),
        rest.get(at..).unwrap_or("")
    )
}

#[cfg(test)]
mod redact_tests {
    use super::redact_userinfo;

    #[test]
    fn only_the_password_is_hidden() {
        assert_eq!(
            redact_userinfo("https://u:p%40ss@h.example:9/api/v1/write?x=a@b"),
            "https://u:<secret>@h.example:9/api/v1/write?x=a@b"
        );
        assert_eq!(redact_userinfo("http://h/a@b"), "http://h/a@b");
        assert_eq!(redact_userinfo("http://u@h/"), "http://u@h/");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }
}
