//! Certificate chains and private keys from PEM files, and the two facts the proxy
//! reads from a certificate's DER itself: the subject (tenant `mtls:<subject>`) and
//! notAfter (the expiry metric).

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsConfigError;

/// Longest peer subject kept (tenant `mtls:<subject>`).
pub const MAX_SUBJECT_CHARS: usize = 128;

/// Reads every certificate of a PEM file (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let p = path.display().to_string();
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| TlsConfigError::Read {
        path: p.clone(),
        why: e.to_string(),
    })?;
    let mut out = Vec::new();
    for c in iter {
        out.push(c.map_err(|e| TlsConfigError::Read {
            path: p.clone(),
            why: e.to_string(),
        })?);
    }
    if out.is_empty() {
        return Err(TlsConfigError::NoCertificate(p));
    }
    Ok(out)
}

/// Reads the first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsConfigError::Key {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// A DER element: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, &b[hdr..end], &b[end..]))
}

/// The fields of a certificate's TBSCertificate, in order (version skipped).
fn tbs_fields(cert: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (_, certificate, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(certificate)?;
    let mut out = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (t, c, r) = tlv(rest)?;
        if t != 0xa0 {
            out.push((t, c));
        }
        rest = r;
    }
    Some(out)
}

fn clean(s: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(s)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SUBJECT_CHARS)
        .collect();
    (!s.is_empty()).then_some(s)
}

/// The subject common name, else the first subjectAltName (DNS, email, URI).
pub fn peer_subject(cert: &[u8]) -> Option<String> {
    let f = tbs_fields(cert)?;
    // serial, signature, issuer, validity, subject, spki, [extensions]
    let subject = f.get(4)?.1;
    let mut rest = subject;
    while !rest.is_empty() {
        let (_, set, r) = tlv(rest)?;
        rest = r;
        let (_, atv, _) = tlv(set)?;
        let (t, oid, after) = tlv(atv)?;
        if t == 0x06 && oid == [0x55, 0x04, 0x03] {
            let (_, v, _) = tlv(after)?;
            return clean(v);
        }
    }
    let exts = f.iter().find(|(t, _)| *t == 0xa3)?.1;
    let (_, mut list, _) = tlv(exts)?;
    while !list.is_empty() {
        let (_, ext, r) = tlv(list)?;
        list = r;
        let (_, oid, mut after) = tlv(ext)?;
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        let (mut t, mut v, r2) = tlv(after)?;
        if t == 0x01 {
            after = r2;
            (t, v, _) = tlv(after)?;
        }
        if t != 0x04 {
            return None;
        }
        let (_, mut names, _) = tlv(v)?;
        while !names.is_empty() {
            let (nt, nv, r3) = tlv(names)?;
            names = r3;
            if matches!(nt, 0x81 | 0x82 | 0x86) {
                return clean(nv);
            }
        }
    }
    None
}

/// The certificate's notAfter as unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let f = tbs_fields(cert)?;
    let validity = f.get(3)?.1;
    let (_, _, rest) = tlv(validity)?;
    let (t, v, _) = tlv(rest)?;
    let s = std::str::from_utf8(v).ok()?;
    let digits = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (year, off) = match t {
        0x17 => {
            let yy = digits(0..2)? as i32;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        0x18 => (digits(0..4)? as i32, 4),
        _ => return None,
    };
    let (mo, d, h, mi, se) = (
        digits(off..off + 2)?,
        digits(off + 2..off + 4)?,
        digits(off + 4..off + 6)?,
        digits(off + 6..off + 8)?,
        digits(off + 8..off + 10)?,
    );
    Some(crate::util::time::days_from_civil(year, mo, d) * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}
