//! A Helm chart repository over HTTPS for the `https://` dependency tests: Python's `http.server`
//! wrapped in TLS with a fresh [`TestCa`] certificate, serving one directory (its `index.yaml` and
//! archives) on a free loopback port. python3 is installed by `.ci/run`; missing, the test fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::tls::TestCa;

const SERVER: &str = r#"
import http.server, ssl, sys, os, functools
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// A running HTTPS file server; stopped when dropped.
pub struct HttpsDir {
    child: Child,
    pub port: u16,
    pub ca: TestCa,
    _tls: tempfile::TempDir,
}

impl HttpsDir {
    /// Serves `root` over HTTPS on 127.0.0.1.
    pub fn serve(root: &Path) -> HttpsDir {
        let python = super::require_tool("python3");
        let tls = super::tmp();
        let ca = TestCa::generate(tls.path());
        let mut child = Command::new(python)
            .arg("-c")
            .arg(SERVER)
            .arg(root)
            .arg(&ca.server_cert_path)
            .arg(&ca.server_key_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 https server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("python3 https server did not start: {line:?}"));
        HttpsDir { child, port, ca, _tls: tls }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for HttpsDir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
