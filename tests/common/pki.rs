//! A test PKI made with rcgen: a CA and a leaf for 127.0.0.1/localhost, and client
//! certificates under their own CA.

use std::path::{Path, PathBuf};

/// A test PKI: a CA and a leaf for 127.0.0.1/localhost signed by it. Returns the paths of
/// the CA certificate, the leaf chain (leaf then CA) and the leaf key (PKCS#8 PEM).
pub fn make_pki(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cn} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut lp = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    lp.distinguished_name.push(DnType::CommonName, cn);
    let leaf = lp.signed_by(&leaf_key, &ca).unwrap();
    let ca_path = dir.join(format!("{cn}-ca.pem"));
    let chain_path = dir.join(format!("{cn}-chain.pem"));
    let key_path = dir.join(format!("{cn}-key.pem"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&chain_path, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, chain_path, key_path)
}

/// A client certificate signed by a fresh CA: (ca, cert, key) paths.
pub fn make_client_pki(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cn} client CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join(format!("{cn}-client-ca.pem")),
        dir.join(format!("{cn}-client.pem")),
        dir.join(format!("{cn}-client-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}
