//! Comparison of HTTP target URIs as RFC 9449 §4.3 asks for `htu`: syntax- and scheme-based
//! normalisation (RFC 3986 §6.2.2–6.2.3) with query and fragment ignored.

use url::Url;

use crate::{Error, Result};

/// Normalises an absolute `http`/`https` URI: lower-case scheme and host, default port
/// dropped, dot segments removed, empty path as `/`, percent-escapes of unreserved characters
/// decoded and the others upper-cased, query and fragment removed.
pub fn normalize(uri: &str, field: &'static str) -> Result<String> {
    let mut url = Url::parse(uri).map_err(|_| Error::InvalidUri(field))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Error::InvalidUri(field));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidUri(field));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = normalize_percent_encoding(url.path());
    url.set_path(&path);
    Ok(url.to_string())
}

/// Whether two URIs name the same resource under [`normalize`]. A `presented` URI that does
/// not parse never matches.
pub fn matches(presented: &str, expected: &str) -> Result<bool> {
    let expected = normalize(expected, "expected URI")?;
    Ok(normalize(presented, "htu").is_ok_and(|p| p == expected))
}

fn normalize_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = &path[i + 1..i + 3];
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(v));
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        out.push(char::from(bytes[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_forms_match() {
        let base = "https://server.example.com/clients/ab/access-token";
        for same in [
            "HTTPS://Server.Example.COM/clients/ab/access-token",
            "https://server.example.com:443/clients/ab/access-token",
            "https://server.example.com/clients/./x/../ab/access-token",
            "https://server.example.com/clients/%61b/access-token",
            "https://server.example.com/clients/ab/access-token?x=1#frag",
        ] {
            assert!(matches(same, base).unwrap(), "{same}");
        }
        assert_eq!(normalize("http://h", "t").unwrap(), "http://h/");
        assert_eq!(normalize("http://h/a%2fb", "t").unwrap(), "http://h/a%2Fb");
    }

    #[test]
    fn different_resources_do_not_match() {
        let base = "https://server.example.com/token";
        for other in [
            "http://server.example.com/token",
            "https://server.example.com:8443/token",
            "https://other.example.com/token",
            "https://server.example.com/token/",
            "https://server.example.com/Token",
            "not a uri",
            "ftp://server.example.com/token",
            "https://user@server.example.com/token",
        ] {
            assert!(!matches(other, base).unwrap(), "{other}");
        }
    }
}
