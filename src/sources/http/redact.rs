//! URLs as they may be logged: without credentials or secret query values.
//!
//! Owns: [`Redacted`], the one way a URL reaches a log line or an error message.
//! Must not: change the URL that is sent (only its display).

use std::fmt;

/// Query keys whose values are never shown: any key that contains one of these, case-insensitively
/// (`api_key`, `apiKey`, `access_token`, `client_secret`, `Password`).
pub const SECRET_QUERY_KEYS: [&str; 5] = ["key", "token", "password", "secret", "signature"];

/// What a hidden value is shown as.
const HIDDEN: &str = "REDACTED";

/// Displays a URL without its userinfo (`user:pass@`) and with the value of every secret query
/// key (see [`SECRET_QUERY_KEYS`]) replaced by `REDACTED`. Everything else is shown as written,
/// so the redacted URL still says which table and page was asked for. The fragment is dropped.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0.split_once('#').map_or(self.0, |(before, _)| before);
        let (before_query, query) = match url.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (url, None),
        };
        // Userinfo sits between `scheme://` and the first `@` of the authority; an `@` in the path
        // (`/users/@me`) is not userinfo.
        let (scheme, rest) = match before_query.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, before_query),
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        if let Some(scheme) = scheme {
            write!(f, "{scheme}://")?;
        }
        write!(f, "{host}{path}")?;
        if let Some(query) = query {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _)) if is_secret(key) => write!(f, "{key}={HIDDEN}")?,
                    _ => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_QUERY_KEYS.iter().any(|secret| key.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_secret_query_values_are_hidden() {
        let shown: Vec<String> = [
            "https://statistikdatabasen.scb.se/api/v2/tables/TAB638/data?lang=sv&outputFormat=json-stat2",
            "https://user:hunter2@api.scb.se/OV0104/v1/doris/sv/?config",
            "https://api.kolada.se/v3/data/kpi/N15033?api_key=abc123&per_page=5000#frag",
            "http://x.example/a?Token=t&accessToken=u&PASSWORD=p&client_secret=s&keyword=k&page=2",
            "https://x.example/users/@me?sig=1&signature=2",
            "not a url?key=1",
        ]
        .iter()
        .map(|url| Redacted(url).to_string())
        .collect();
        insta::assert_snapshot!(shown.join("\n"), @r"
        https://statistikdatabasen.scb.se/api/v2/tables/TAB638/data?lang=sv&outputFormat=json-stat2
        https://api.scb.se/OV0104/v1/doris/sv/?config
        https://api.kolada.se/v3/data/kpi/N15033?api_key=REDACTED&per_page=5000
        http://x.example/a?Token=REDACTED&accessToken=REDACTED&PASSWORD=REDACTED&client_secret=REDACTED&keyword=REDACTED&page=2
        https://x.example/users/@me?sig=1&signature=REDACTED
        not a url?key=REDACTED
        ");
    }
}
