//! The user's browser on node-oidc-provider's development pages (the enterprise IdP and the
//! upstream tests): a cookie-keeping client that follows redirects by hand, fills the login
//! form (any password) and the consent form, and stops at the first URL outside the provider.

#![allow(dead_code)]

/// From `url` (at the provider) through its login and consent pages as `login`; the first URL
/// the provider sends the browser to that starts with `until`, not followed.
pub async fn through_provider(
    http: &reqwest::Client,
    mut url: String,
    login: &str,
    until: &str,
) -> Result<String, String> {
    for _ in 0..12 {
        if url.starts_with(until) {
            return Ok(url);
        }
        let response = http.get(&url).send().await.map_err(|e| e.to_string())?;
        if response.status().is_redirection() {
            url = resolve(&url, &location(&response));
            continue;
        }
        let status = response.status();
        let page = response.text().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{url}: {status}: {page}"));
        }
        let form = if page.contains(r#"name="prompt" value="login""#) {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if page.contains(r#"name="prompt" value="consent""#) {
            vec![("prompt", "consent")]
        } else {
            return Err(format!("an unexpected page at the provider:\n{page}"));
        };
        let response = http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_redirection() {
            return Err(format!("{url}: the form got {}", response.status()));
        }
        url = resolve(&url, &location(&response));
    }
    Err("the provider never sent the browser back".into())
}

/// A response's `Location`, or nothing.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `location` resolved against `base`.
pub fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|u| u.join(location))
        .map(String::from)
        .unwrap_or_else(|_| location.to_owned())
}
