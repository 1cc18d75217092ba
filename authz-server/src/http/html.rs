//! The server's HTML pages (login, consent, device verification): one layout, escaping, and
//! the headers every page carries (no caching, no framing, a strict content security policy).

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A complete page with `title` and already-escaped `body`; its forms post only to this server.
pub fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    page_with_form_targets(status, title, body, &[])
}

/// A page whose form submission ends in a redirect to `redirect_uri` (browsers apply the CSP
/// `form-action` to that redirect too, so its origin is allowed besides this server).
pub fn html_page_redirecting(
    status: StatusCode,
    title: &str,
    body: &str,
    redirect_uri: &str,
) -> Response {
    page_with_form_targets(status, title, body, &[redirect_uri])
}

/// A page whose forms may end in a redirect to any of `targets` (URLs; their origins are
/// allowed as CSP `form-action` besides this server): a client's `redirect_uri`, the
/// authorization endpoints of upstream identity providers.
pub fn page_with_form_targets(
    status: StatusCode,
    title: &str,
    body: &str,
    targets: &[&str],
) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin:.75rem 0}}input{{display:block;width:100%;padding:.4rem;box-sizing:border-box}}
button{{padding:.5rem 1.2rem;margin-right:.5rem}}.error{{color:#a00}}</style></head><body><h1>{title}</h1>{body}</body></html>"#,
        title = escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    let mut form_action = "'self'".to_owned();
    for target in targets {
        let Some(origin) = url::Url::parse(target)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
        else {
            continue;
        };
        // A loopback redirect may use any port (RFC 8252 §7.3).
        let source = if origin.starts_with("http://127.0.0.1") {
            "http://127.0.0.1:*".to_owned()
        } else {
            origin
        };
        if !form_action.split(' ').any(|s| s == source) {
            form_action.push(' ');
            form_action.push_str(&source);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'"
    );
    if let Ok(value) = header::HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A form page's error line (`role="alert"`), or nothing.
pub fn error_alert(error: Option<&str>) -> String {
    error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default()
}

/// Tells the client when to try again (a 429's `Retry-After`).
pub fn set_retry_after(response: &mut Response, secs: u64) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
