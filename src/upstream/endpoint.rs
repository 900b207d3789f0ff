//! Where a request goes: `https://bedrock-runtime.{region}.amazonaws.com` by default, or
//! the fixed `--upstream-endpoint` (VPC, FIPS, tests). The SigV4 `host` is exactly the
//! `Host` header sent: the port is included when it is not the scheme's default.

/// A parsed upstream endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// AWS's regional Bedrock Runtime endpoint.
    AwsRegional,
    /// A fixed endpoint.
    Fixed { tls: bool, host: String, port: u16 },
}

/// One concrete destination; also the pool key. Its `Host` value is written once, when
/// the target is made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    host_header: String,
}

impl Target {
    pub fn new(tls: bool, host: String, port: u16) -> Target {
        let default = if tls { 443 } else { 80 };
        let mut host_header = String::with_capacity(host.len() + 8);
        let v6 = host.contains(':');
        if v6 {
            host_header.push('[');
        }
        host_header.push_str(&host);
        if v6 {
            host_header.push(']');
        }
        if port != default {
            host_header.push(':');
            host_header.push_str(&port.to_string());
        }
        Target {
            tls,
            host,
            port,
            host_header,
        }
    }

    /// The `Host` header value (and SigV4 host).
    pub fn host_header(&self) -> &str {
        &self.host_header
    }
}

impl Endpoint {
    pub fn aws_default() -> Self {
        Endpoint::AwsRegional
    }

    /// The `host:port` of a plain-HTTP endpoint that is not on this machine (a loopback
    /// address or `localhost`): signed requests and their answers would cross a network
    /// in clear text. `None` for TLS and loopback endpoints.
    pub fn plain_remote(&self) -> Option<String> {
        match self {
            Endpoint::Fixed { tls: false, host, port } => {
                let loopback = host.eq_ignore_ascii_case("localhost")
                    || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
                (!loopback).then(|| format!("{host}:{port}"))
            }
            _ => None,
        }
    }

    /// Parses `http://host[:port]` or `https://host[:port]` (an optional trailing `/`).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{url}` must start with http:// or https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') || rest.contains('@') {
            return Err(format!(
                "`{url}` must be scheme://host[:port] with no path, query or user"
            ));
        }
        let (host, port) = if let Some(h) = rest.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| format!("`{url}` has an unclosed IPv6 bracket"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse::<u16>().map_err(|_| format!("`{url}` has an invalid port"))?,
                None if after.is_empty() => {
                    if tls {
                        443
                    } else {
                        80
                    }
                }
                None => return Err(format!("`{url}` is malformed")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse::<u16>().map_err(|_| format!("`{url}` has an invalid port"))?,
                ),
                None => (rest.to_string(), if tls { 443 } else { 80 }),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(format!("`{url}` has an invalid host"));
        }
        if port == 0 {
            return Err(format!("`{url}` has port 0"));
        }
        Ok(Endpoint::Fixed { tls, host, port })
    }

    /// The destination for a (validated) region.
    pub fn target(&self, region: &str) -> Target {
        match self {
            Endpoint::AwsRegional => Target::new(true, format!("bedrock-runtime.{region}.amazonaws.com"), 443),
            Endpoint::Fixed { tls, host, port } => Target::new(*tls, host.clone(), *port),
        }
    }

    /// For logs.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::AwsRegional => "https://bedrock-runtime.{region}.amazonaws.com".into(),
            Endpoint::Fixed { tls, .. } => {
                let t = self.target("");
                format!("{}://{}", if *tls { "https" } else { "http" }, t.host_header())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_host() {
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(e.target("us-east-1").host_header(), "127.0.0.1:9000");
        let e = Endpoint::parse("https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com/").unwrap();
        assert_eq!(
            e.target("x").host_header(),
            "vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"
        );
        assert_eq!(
            Endpoint::aws_default().target("eu-west-1").host_header(),
            "bedrock-runtime.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            Endpoint::parse("http://[::1]:9").unwrap().target("").host_header(),
            "[::1]:9"
        );
        for bad in [
            "ftp://x",
            "http://x/path",
            "http://u@x",
            "http://x:99999",
            "http://",
            "http://x:0",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
