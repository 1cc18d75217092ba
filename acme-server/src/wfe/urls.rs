//! The server's ACME URLs, built from the configured public base URL (never from `Host`), in
//! the layout Wire clients know (`/acme/wire/...`).

/// URL builder and parser.
#[derive(Debug, Clone)]
pub struct Urls {
    root: String,
}

/// The path prefix of every ACME resource.
pub const PREFIX: &str = "/acme/wire";

impl Urls {
    /// URLs under `base` (scheme, host, port; no trailing slash).
    pub fn new(base: &str) -> Self {
        Self {
            root: format!("{}{PREFIX}", base.trim_end_matches('/')),
        }
    }

    /// The full URL of a request path.
    pub fn of_path(&self, path: &str) -> String {
        let base = self.root.strip_suffix(PREFIX).unwrap_or(&self.root);
        format!("{base}{path}")
    }

    /// Directory.
    pub fn directory(&self) -> String {
        format!("{}/directory", self.root)
    }
    /// newNonce.
    pub fn new_nonce(&self) -> String {
        format!("{}/new-nonce", self.root)
    }
    /// newAccount.
    pub fn new_account(&self) -> String {
        format!("{}/new-account", self.root)
    }
    /// newOrder.
    pub fn new_order(&self) -> String {
        format!("{}/new-order", self.root)
    }
    /// revokeCert.
    pub fn revoke_cert(&self) -> String {
        format!("{}/revoke-cert", self.root)
    }
    /// keyChange.
    pub fn key_change(&self) -> String {
        format!("{}/key-change", self.root)
    }
    /// renewalInfo (RFC 9773).
    pub fn renewal_info(&self) -> String {
        format!("{}/renewal-info", self.root)
    }
    /// The CRL of the identity CA.
    pub fn crl(&self) -> String {
        format!("{}/crl", self.root)
    }
    /// The CRL of the name CA (standard orders).
    pub fn names_crl(&self) -> String {
        format!("{}/crl/names", self.root)
    }
    /// An account.
    pub fn account(&self, id: &str) -> String {
        format!("{}/account/{id}", self.root)
    }
    /// An account's orders list.
    pub fn account_orders(&self, id: &str) -> String {
        format!("{}/orders", self.account(id))
    }
    /// An order.
    pub fn order(&self, id: &str) -> String {
        format!("{}/order/{id}", self.root)
    }
    /// An order's finalize URL.
    pub fn finalize(&self, id: &str) -> String {
        format!("{}/finalize", self.order(id))
    }
    /// An authorization.
    pub fn authz(&self, id: &str) -> String {
        format!("{}/authz/{id}", self.root)
    }
    /// A challenge.
    pub fn challenge(&self, authz: &str, id: &str) -> String {
        format!("{}/challenge/{authz}/{id}", self.root)
    }
    /// A certificate.
    pub fn certificate(&self, id: &str) -> String {
        format!("{}/certificate/{id}", self.root)
    }

    /// The account id named by a `kid`, if it is one of our account URLs.
    pub fn account_id_of<'k>(&self, kid: &'k str) -> Option<&'k str> {
        let id = kid.strip_prefix(&self.root)?.strip_prefix("/account/")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_map_back_to_account_ids() {
        let urls = Urls::new("https://127.0.0.1:9443/");
        let kid = urls.account("abc");
        assert_eq!(kid, "https://127.0.0.1:9443/acme/wire/account/abc");
        assert_eq!(urls.account_id_of(&kid), Some("abc"));
        assert_eq!(urls.account_id_of(&urls.account_orders("abc")), None);
        assert_eq!(
            urls.account_id_of("https://evil.test/acme/wire/account/abc"),
            None
        );
        assert_eq!(urls.of_path("/acme/wire/new-order"), urls.new_order());
    }
}
