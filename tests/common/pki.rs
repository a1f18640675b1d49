//! Test certificates made with the `openssl` command: a CA and the leaf certificates it
//! signs, PEM files in a directory of the test's.

use std::path::Path;
use std::process::{Command, Stdio};

/// `openssl ARGS...` in `dir`; the test fails if it does.
pub fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A self-signed CA: `ca.key`, `ca.pem`.
pub fn make_ca(dir: &Path, cn: &str) {
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subj,
            "-keyout", "ca.key", "-out", "ca.pem",
        ],
    );
}

/// `NAME.key` and `NAME.pem` signed by the CA of `make_ca`, with subject `subj` and the
/// extensions `ext` (extensions also make the certificate X.509 v3, which webpki requires).
pub fn sign(dir: &Path, name: &str, subj: &str, ext: &str) {
    let (extf, key, csr, pem) = (
        format!("{name}.ext"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    std::fs::write(dir.join(&extf), ext).expect("write the extensions file");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", &key, "-out", &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &extf,
        ],
    );
}
