//! Whether a form post comes from one of this server's own pages. A browser says where a
//! request comes from (`Sec-Fetch-Site`, and `Origin` on every cross-origin post): a login form
//! posted from another site (login CSRF: the attacker's credentials, and then the attacker's
//! session in the victim's browser), a sign-out or a consent posted from elsewhere, are refused
//! before anything is checked or stored. A client that is no browser (the SDK's headless login)
//! sends neither header, and is not a victim's browser.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::html::html_page;

/// Whether the request says it comes from another origin than `base_url`'s.
pub(super) fn from_elsewhere(headers: &HeaderMap, base_url: &str) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return true;
    }
    let ours = url::Url::parse(base_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    text(header::ORIGIN).is_some_and(|origin| origin != ours)
}

/// The page refusing a form posted from another site.
pub(super) fn refused() -> Response {
    html_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "<p>This form was not sent from this server's page. Nothing was changed; go back to the application and start again.</p>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, header::HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn only_our_own_origin_or_no_browser_at_all_passes() {
        let base = "https://auth.example:8443";
        for ok in [
            headers(&[]),
            headers(&[("origin", "https://auth.example:8443")]),
            headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://auth.example:8443"),
            ]),
            headers(&[("sec-fetch-site", "none")]),
        ] {
            assert!(!from_elsewhere(&ok, base), "{ok:?}");
        }
        for bad in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "https://auth.example")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(from_elsewhere(&bad, base), "{bad:?}");
        }
    }
}
