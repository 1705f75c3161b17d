//! URLs as they may be logged: without credentials or secret query values.
//!
//! Owns: [`Redacted`] and [`Shown`], the one way a URL reaches a log line or an error message.
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

/// How much of a URL its log lines and errors show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shown {
    /// As [`Redacted`]: path and harmless query values kept, so that a message says which table
    /// and page was asked for.
    #[default]
    Redacted,
    /// Scheme and host only (`https://hooks.slack.com/…`): for URLs whose path is itself the
    /// secret, as a webhook's is (Slack `/services/T…/B…/<token>`, Discord `/api/webhooks/<id>/<token>`).
    Origin,
}

impl Shown {
    /// `url` as this policy shows it.
    pub fn show(self, url: &str) -> String {
        match self {
            Self::Redacted => Redacted(url).to_string(),
            Self::Origin => {
                let parts = Parts::of(url);
                let scheme = parts.scheme.map(|s| format!("{s}://")).unwrap_or_default();
                let hidden = if parts.path.len() <= 1 && parts.query.is_none() {
                    ""
                } else {
                    "/…"
                };
                format!("{scheme}{}{hidden}", parts.host)
            }
        }
    }
}

/// A URL cut where [`Shown`] policies need it, without parsing (a URL too broken to parse must
/// still be shown without its secrets).
struct Parts<'a> {
    scheme: Option<&'a str>,
    /// Without userinfo.
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn of(url: &'a str) -> Self {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
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
        Self {
            scheme,
            host,
            path,
            query,
        }
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Parts {
            scheme,
            host,
            path,
            query,
        } = Parts::of(self.0);
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

    #[test]
    fn a_webhook_shown_by_origin_keeps_only_scheme_and_host() {
        let shown: Vec<String> = [
            "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX",
            "https://user:pw@discord.com/api/webhooks/1/tok?wait=true#f",
            "http://127.0.0.1:9/",
            "https://alerts.example",
            "not a url/secret",
        ]
        .iter()
        .map(|url| Shown::Origin.show(url))
        .collect();
        insta::assert_snapshot!(shown.join("\n"), @r"
        https://hooks.slack.com/…
        https://discord.com/…
        http://127.0.0.1:9
        https://alerts.example
        not a url/…
        ");
    }
}
