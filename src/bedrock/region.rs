//! Region names: they become part of a host name, so only `^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$`
//! is accepted (no dots, ports, `@`, `#`, or anything else that could redirect a request).

/// Region used when the client sends none.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";
/// Longest region name accepted.
pub const MAX_REGION_LEN: usize = 32;

/// Whether `r` is a well-formed AWS region name.
pub fn is_valid_region(r: &str) -> bool {
    if r.len() > MAX_REGION_LEN {
        return false;
    }
    let b = r.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_lowercase() || !b[1].is_ascii_lowercase() || b[2] != b'-' {
        return false;
    }
    let rest = &b[3..];
    // `[a-z]+-[0-9]+`, with or without a leading `gov-`.
    word_dash_digits(rest) || (rest.starts_with(b"gov-") && word_dash_digits(&rest[4..]))
}

fn word_dash_digits(b: &[u8]) -> bool {
    let letters = b.iter().take_while(|c| c.is_ascii_lowercase()).count();
    if letters == 0 || b.get(letters) != Some(&b'-') {
        return false;
    }
    let digits = &b[letters + 1..];
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-west-3",
            "ap-southeast-2",
            "us-gov-west-1",
            "ca-central-1",
            "il-central-10",
        ] {
            assert!(is_valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-1.evil.com",
            "us-east-1@x",
            "us-east-1#",
            "..",
            "US-EAST-1",
            "us-east-1:443",
            "us-east-1/",
            "u-east-1",
            "use-east-1",
            "us--1",
            "us-east-",
            " us-east-1",
            "us-gov--1",
        ] {
            assert!(!is_valid_region(bad), "{bad}");
        }
    }
}
