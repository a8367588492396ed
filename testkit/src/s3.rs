//! An S3-compatible bucket for tests: moto's server (PyPI `moto[server]`, installed
//! by `ensure_s3_standin` in scripts/lib.sh, named by `KOZOMOL_MOTO_SERVER`) on a
//! free port, with request signatures checked: an account with a key of its own is
//! made first, and every later request must be signed with that key.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Requests moto lets through unsigned before it checks signatures: the three
/// that make the account below.
const UNSIGNED_SETUP_REQUESTS: &str = "3";

const MAKE_ACCOUNT: &str = r#"
import json, sys, boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="kozomol")
key = iam.create_access_key(UserName="kozomol")["AccessKey"]
iam.put_user_policy(UserName="kozomol", PolicyName="evidence", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket=bucket)
print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
"#;

/// A running S3 stand-in with one bucket; stopped on drop.
pub struct S3StandIn {
    child: Child,
    pub addr: SocketAddr,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3StandIn {
    /// Starts moto on a free port and makes the account and `bucket`.
    pub fn start(bucket: &str) -> Result<S3StandIn> {
        let server = std::env::var("KOZOMOL_MOTO_SERVER").context(
            "KOZOMOL_MOTO_SERVER is not set: run the tests through scripts/test.sh, or \
             `source scripts/lib.sh && ensure_s3_standin` first",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", UNSIGNED_SETUP_REQUESTS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {server}"))?;
        let mut stand_in = S3StandIn {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bucket: bucket.to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        let started = Instant::now();
        while TcpStream::connect(stand_in.addr).is_err() {
            if let Some(status) = stand_in.child.try_wait()? {
                bail!("moto's server exited at start: {status}");
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("moto's server did not listen on {} in 30 s", stand_in.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // moto_server sits next to the Python that has boto3.
        let python = std::path::Path::new(&server).with_file_name("python");
        let output = Command::new(&python)
            .args(["-c", MAKE_ACCOUNT, &stand_in.endpoint(), bucket])
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !output.status.success() {
            bail!(
                "making the S3 stand-in's account failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let key: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        stand_in.access_key_id = key["id"].as_str().context("access key id")?.to_owned();
        stand_in.secret_access_key = key["secret"].as_str().context("secret key")?.to_owned();
        Ok(stand_in)
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for S3StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
