//! Segments as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...).
//!
//! An object cannot be appended to, so every batch is a segment object of its own,
//! written once by a conditional PUT (`If-None-Match: *`): an object is never
//! replaced, even by a process that wrongly shares a writer id. A PUT that returned
//! is durable, as an `fdatasync` is for a file. Frames are read back with ranged GETs.
//! Requests go path-style (`endpoint/bucket/key`), signed with AWS Signature
//! Version 4 over the payload's SHA-256, so a body changed on the way is refused.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use super::{SegmentInfo, SegmentScan, SegmentStorage, SEGMENT_PREFIX, SEGMENT_SUFFIX};
use crate::StoreError;

/// SHA-256 of an empty body, the payload hash of a GET.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// A PUT or GET that takes longer fails; the caller retries the batch or the read.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Object names found taken in a row before a batch fails: one is a writer id shared
/// by mistake, many a store that does not honour `If-None-Match`.
const TAKEN_NAMES_TRIED: u32 = 8;
/// The largest object read whole (to overwrite erased records in it): an object is one
/// batch, which ingest bounds far below this (its messages' count and size).
const MAX_OBJECT_BYTES: u64 = 4 << 30;
/// Overwrites of one object found it changed since it was read, in a row, before the
/// erasure fails (and is tried again on the next pass).
const OVERWRITES_TRIED: u32 = 8;
/// The largest listing page read (a thousand keys take about 300 KB).
const MAX_LIST_BYTES: u64 = 16 << 20;

/// An S3-compatible bucket for evidence (`[evidence_bucket]` in the settings). The
/// secret key never comes from a settings file; `Debug` hides it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Bucket {
    /// The S3 API's address, `http://host:port` or `https://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// The region requests are signed for; S3-compatible stores that have no
    /// regions take `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Put before every segment's name, e.g. `evidence/` (empty, or ending with
    /// `/`): letters, digits, `-`, `_`, `.` and `/`.
    #[serde(default)]
    pub prefix: String,
    pub access_key_id: String,
    #[serde(skip)]
    pub secret_access_key: String,
    /// PEM certificates to trust for an `https` endpoint instead of the public
    /// roots (a city's own certificate authority).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Bucket")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl S3Bucket {
    /// What is wrong with these settings, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if split_endpoint(&self.endpoint).is_none() {
            problems.push(format!(
                "evidence_bucket.endpoint `{}` must be http(s)://host[:port]",
                self.endpoint
            ));
        }
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            problems.push(format!(
                "evidence_bucket.bucket `{}` must be 3-63 lower-case letters, digits, `-` or `.`",
                self.bucket
            ));
        }
        let prefix_ok = !self.prefix.starts_with('/')
            && (self.prefix.is_empty() || self.prefix.ends_with('/'))
            && !self.prefix.split('/').any(|part| part == "..")
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        if !prefix_ok {
            problems.push(format!(
                "evidence_bucket.prefix `{}` may hold letters, digits, `-`, `_`, `.` and `/`, ending with `/` and not starting with it",
                self.prefix
            ));
        }
        if self.region.is_empty() || self.access_key_id.is_empty() {
            problems.push("evidence_bucket.region and access_key_id must not be empty".into());
        }
        if self.secret_access_key.is_empty() {
            problems.push(
                "evidence_bucket is set but KOZOMOL_EVIDENCE_SECRET_ACCESS_KEY is not".into(),
            );
        }
        problems
    }
}

/// `http(s)://authority` → (base URL without a trailing slash, authority as the
/// `Host` header carries it).
fn split_endpoint(endpoint: &str) -> Option<(String, String)> {
    let endpoint = endpoint.trim_end_matches('/');
    let (scheme, authority) = endpoint.split_once("://")?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    // A default port is not part of the Host header; the signature covers that header.
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some((format!("{scheme}://{authority}"), authority.to_owned()))
}

/// Evidence segments in a bucket, for one writer.
pub struct S3Segments {
    bucket: S3Bucket,
    base_url: String,
    host: String,
    writer_id: String,
    agent: ureq::Agent,
    next_sequence: AtomicU64,
}

impl S3Segments {
    /// A writer `writer_id` into `bucket`; no request is made until the first batch.
    pub fn open(bucket: S3Bucket, writer_id: &str) -> Result<Self, StoreError> {
        super::check_writer_id(writer_id)?;
        let problems = bucket.problems();
        if !problems.is_empty() {
            return Err(StoreError::Invalid(problems.join("; ")));
        }
        let (base_url, host) = split_endpoint(&bucket.endpoint)
            .ok_or_else(|| StoreError::Invalid("evidence bucket endpoint".into()))?;
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false);
        if let Some(path) = &bucket.ca_file {
            config = config.tls_config(trusting(path)?);
        }
        let agent = config.build().new_agent();
        // Sequences start at the clock's microseconds, so a restarted writer needs no
        // listing to find a name of its own; a taken name is skipped (HTTP 412).
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Ok(S3Segments {
            bucket,
            base_url,
            host,
            writer_id: writer_id.to_owned(),
            agent,
            next_sequence: AtomicU64::new(now),
        })
    }

    fn key(&self, segment: &str) -> String {
        format!("{}{segment}", self.bucket.prefix)
    }

    /// The signed request's URL and headers (with `Authorization`).
    fn signed(
        &self,
        method: &str,
        key: &str,
        extra: &[(&str, String)],
        payload_sha256: &str,
    ) -> (String, Vec<(String, String)>) {
        let path = uri_encode_path(&format!("/{}/{key}", self.bucket.bucket));
        self.signed_on(method, &path, "", extra, payload_sha256)
    }

    /// [`S3Segments::signed`] for an encoded `path` and canonical `query` (names and
    /// values encoded, sorted by name; empty for none).
    fn signed_on(
        &self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, String)],
        payload_sha256: &str,
    ) -> (String, Vec<(String, String)>) {
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), self.host.clone()),
            ("x-amz-content-sha256".into(), payload_sha256.into()),
            ("x-amz-date".into(), amz_date.clone()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        headers.sort();
        let authorization = authorization(
            &Request {
                method,
                path,
                query,
                headers: &headers,
                payload_sha256,
                amz_date: &amz_date,
            },
            &self.bucket,
        );
        headers.retain(|(name, _)| name != "host");
        headers.push(("authorization".into(), authorization));
        let url = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}{path}?{query}", self.base_url)
        };
        (url, headers)
    }

    /// One page of ListObjectsV2 under the prefix: the segments on it and the token of
    /// the next page, if any.
    fn list_page(
        &self,
        continuation: Option<&str>,
    ) -> Result<(Vec<SegmentInfo>, Option<String>), StoreError> {
        let mut params = vec![
            ("list-type", "2".to_owned()),
            ("prefix", self.bucket.prefix.clone()),
        ];
        if let Some(token) = continuation {
            params.push(("continuation-token", token.to_owned()));
        }
        params.sort();
        let query = params
            .iter()
            .map(|(name, value)| format!("{}={}", uri_encode(name), uri_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let path = uri_encode_path(&format!("/{}", self.bucket.bucket));
        let (url, headers) = self.signed_on("GET", &path, &query, &[], EMPTY_SHA256);
        let mut request = self.agent.get(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let what = format!("{}?list-type=2", self.bucket.prefix);
        let mut response = request.call().map_err(|e| transport("GET", &what, e))?;
        if response.status().as_u16() != 200 {
            let status = response.status().as_u16();
            return Err(refused("GET", &what, status, response.body_mut()));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_LIST_BYTES)
            .read_to_string()
            .map_err(|e| transport("GET", &what, e))?;
        parse_listing(&body, &self.bucket.prefix)
    }
}

impl SegmentStorage for S3Segments {
    fn append(&self, records: &[u8]) -> Result<(String, u64), StoreError> {
        let digest = Sha256::digest(records);
        let payload_sha256 = hex::encode(digest);
        // The store checks the body against it too; a bucket with object lock
        // refuses a PUT that carries no checksum.
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        for _ in 0..TAKEN_NAMES_TRIED {
            let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
            let segment = format!(
                "{SEGMENT_PREFIX}{}-{sequence:010}{SEGMENT_SUFFIX}",
                self.writer_id
            );
            let key = self.key(&segment);
            let (url, headers) = self.signed(
                "PUT",
                &key,
                &[
                    ("if-none-match", "*".into()),
                    ("x-amz-checksum-sha256", checksum.clone()),
                ],
                &payload_sha256,
            );
            let mut request = self.agent.put(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let mut response = request
                .send(records)
                .map_err(|e| transport("PUT", &key, e))?;
            match response.status().as_u16() {
                200..=299 => {
                    debug!(segment = %segment, bytes = records.len(), "evidence segment stored");
                    return Ok((segment, 0));
                }
                // Someone holds this name: never replace an object, take the next.
                412 => {
                    warn!(key = %key, "evidence object name taken; trying the next");
                    continue;
                }
                status => return Err(refused("PUT", &key, status, response.body_mut())),
            }
        }
        Err(StoreError::Io(io::Error::other(format!(
            "evidence bucket answered {TAKEN_NAMES_TRIED} conditional PUTs in a row with \
             HTTP 412: does it support If-None-Match?"
        ))))
    }

    fn read_at(&self, segment: &str, start: u64, len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let key = self.key(segment);
        let range = format!("bytes={start}-{}", start + len - 1);
        let (url, headers) = self.signed("GET", &key, &[("range", range)], EMPTY_SHA256);
        let mut request = self.agent.get(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let mut response = request.call().map_err(|e| transport("GET", &key, e))?;
        match response.status().as_u16() {
            206 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(len + 1)
                    .read_to_vec()
                    .map_err(|e| transport("GET", &key, e))?;
                Ok((body.len() as u64 == len).then_some(body))
            }
            // A store that ignores Range would send whole objects for every frame.
            200 => Err(StoreError::Io(io::Error::other(format!(
                "evidence bucket ignored the Range of GET `{key}`: kozomol needs ranged reads"
            )))),
            416 => Ok(None),
            404 => Err(StoreError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "evidence object `{key}` is not in bucket `{}`",
                    self.bucket.bucket
                ),
            ))),
            status => Err(refused("GET", &key, status, response.body_mut())),
        }
    }

    /// An object is never changed in place: the whole object is read and written back
    /// with the records replaced, on condition that it is still the object read
    /// (`If-Match` its ETag), so an erasure never undoes a change made meanwhile (one
    /// process erases at a time, under the archive lease; this guards the rest). In a
    /// versioned bucket the earlier version stays until the bucket's own rules expire
    /// it (docs/operations.md).
    fn overwrite(&self, segment: &str, writes: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let key = self.key(segment);
        for _ in 0..OVERWRITES_TRIED {
            let (mut object, etag) = self.whole(&key)?;
            for (start, bytes) in writes {
                let end = *start as usize + bytes.len();
                let Some(place) = object.get_mut(*start as usize..end) else {
                    return Err(StoreError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("evidence object `{key}` ends before byte {end}"),
                    )));
                };
                place.copy_from_slice(bytes);
            }
            let digest = Sha256::digest(&object);
            let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
            let (url, headers) = self.signed(
                "PUT",
                &key,
                &[("if-match", etag), ("x-amz-checksum-sha256", checksum)],
                &hex::encode(digest),
            );
            let mut request = self.agent.put(&url);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let mut response = request
                .send(&object[..])
                .map_err(|e| transport("PUT", &key, e))?;
            match response.status().as_u16() {
                200..=299 => return Ok(()),
                // Changed since it was read: read it again.
                412 => continue,
                status => return Err(refused("PUT", &key, status, response.body_mut())),
            }
        }
        Err(StoreError::Io(io::Error::other(format!(
            "evidence object `{key}` changed under {OVERWRITES_TRIED} overwrites in a row"
        ))))
    }

    /// Every segment object under the prefix, page by page.
    fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        let mut segments = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let (page, next) = self.list_page(continuation.as_deref())?;
            segments.extend(page);
            match next {
                Some(token) if Some(&token) != continuation.as_ref() => continuation = Some(token),
                _ => return Ok(segments),
            }
        }
    }

    /// The object is one batch: read whole.
    fn scan(&self, segment: &str) -> Result<SegmentScan, StoreError> {
        let (object, _) = self.whole(&self.key(segment))?;
        let size = object.len() as u64;
        super::scan_records(object.as_slice(), size, segment)
    }

    fn written_at(&self, segment: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        let key = self.key(segment);
        let (url, headers) = self.signed("HEAD", &key, &[], EMPTY_SHA256);
        let mut request = self.agent.head(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let mut response = request.call().map_err(|e| transport("HEAD", &key, e))?;
        if response.status().as_u16() != 200 {
            let status = response.status().as_u16();
            return Err(refused("HEAD", &key, status, response.body_mut()));
        }
        response
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            // An HTTP-date ends in GMT; some stores write UTC.
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(&v.replace(" UTC", " GMT")).ok())
            .and_then(|at| chrono::DateTime::from_timestamp(at.timestamp(), 0))
            .ok_or_else(|| {
                StoreError::Io(io::Error::other(format!(
                    "evidence bucket sent `{key}` without a readable Last-Modified"
                )))
            })
    }
}

impl S3Segments {
    /// A whole object and its ETag.
    fn whole(&self, key: &str) -> Result<(Vec<u8>, String), StoreError> {
        let (url, headers) = self.signed("GET", key, &[], EMPTY_SHA256);
        let mut request = self.agent.get(&url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let mut response = request.call().map_err(|e| transport("GET", key, e))?;
        match response.status().as_u16() {
            200 => {
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        StoreError::Io(io::Error::other(format!(
                            "evidence bucket sent `{key}` without an ETag"
                        )))
                    })?;
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_OBJECT_BYTES)
                    .read_to_vec()
                    .map_err(|e| transport("GET", key, e))?;
                Ok((body, etag))
            }
            status => Err(refused("GET", key, status, response.body_mut())),
        }
    }
}

/// TLS that trusts the certificates in the PEM file `path` alone.
fn trusting(path: &Path) -> Result<ureq::tls::TlsConfig, StoreError> {
    let unreadable = |why: String| {
        StoreError::Invalid(format!(
            "evidence_bucket.ca_file `{}`: {why}",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(certificate) =
            item.map_err(|e| unreadable(e.to_string()))?
        {
            certificates.push(certificate);
        }
    }
    if certificates.is_empty() {
        return Err(unreadable("holds no certificate".into()));
    }
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certificates))
        .build())
}

fn transport(method: &str, key: &str, err: ureq::Error) -> StoreError {
    let kind = match &err {
        ureq::Error::Io(e) => e.kind(),
        ureq::Error::Timeout(_) => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    StoreError::Io(io::Error::new(
        kind,
        format!("evidence bucket {method} `{key}`: {err}"),
    ))
}

/// An S3 error answer: its status and the `<Code>` of its XML body.
fn refused(method: &str, key: &str, status: u16, body: &mut ureq::Body) -> StoreError {
    let text = body
        .with_config()
        .limit(16 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or("", |(code, _)| code);
    StoreError::Io(io::Error::other(format!(
        "evidence bucket refused {method} `{key}`: HTTP {status} {code}"
    )))
}

/// What a Signature Version 4 signature covers.
struct Request<'a> {
    method: &'a str,
    /// Already URI-encoded.
    path: &'a str,
    /// The canonical query string: encoded, sorted by name; empty for none.
    query: &'a str,
    /// Lower-case names, sorted, every one signed.
    headers: &'a [(String, String)],
    payload_sha256: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, also among the headers as `x-amz-date`.
    amz_date: &'a str,
}

/// The `Authorization` header of AWS Signature Version 4, as the S3 API reference
/// defines it.
fn authorization(request: &Request<'_>, bucket: &S3Bucket) -> String {
    let signed_headers = request
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = request
        .headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.path, request.query, request.payload_sha256
    );
    let date = &request.amz_date[..request.amz_date.len().min(8)];
    let scope = format!("{date}/{}/s3/aws4_request", bucket.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", bucket.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [bucket.region.as_str(), "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        bucket.access_key_id
    )
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts every key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Percent-encodes a query name or value as Signature Version 4 wants it: every byte
/// but the unreserved ones.
fn uri_encode(text: &str) -> String {
    uri_encode_path(text).replace('/', "%2F")
}

/// The segments of a ListObjectsV2 answer (keys under `prefix` with a segment's name)
/// and its continuation token where the listing is truncated. Segment names need no
/// XML unescaping: their characters have none.
fn parse_listing(
    body: &str,
    prefix: &str,
) -> Result<(Vec<SegmentInfo>, Option<String>), StoreError> {
    let element = |text: &'_ str, name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_owned())
    };
    let mut segments = Vec::new();
    for contents in body.split("<Contents>").skip(1) {
        let contents = contents.split("</Contents>").next().unwrap_or_default();
        let Some(name) = element(contents, "Key")
            .and_then(|key| key.strip_prefix(prefix).map(str::to_owned))
            .filter(|name| super::is_segment_name(name))
        else {
            continue;
        };
        let written_at = element(contents, "LastModified")
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
            .and_then(|at| chrono::DateTime::from_timestamp(at.timestamp(), 0))
            .ok_or_else(|| {
                StoreError::Io(io::Error::other(format!(
                    "evidence bucket listed `{name}` without a readable LastModified"
                )))
            })?;
        segments.push(SegmentInfo { name, written_at });
    }
    let truncated = element(body, "IsTruncated").is_some_and(|t| t == "true");
    let next = element(body, "NextContinuationToken").filter(|_| truncated);
    if truncated && next.is_none() {
        return Err(StoreError::Io(io::Error::other(
            "evidence bucket sent a truncated listing without a continuation token",
        )));
    }
    Ok((segments, next))
}

/// Percent-encodes a path as Signature Version 4 wants it: every byte but the
/// unreserved ones and `/`.
fn uri_encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn example_bucket() -> S3Bucket {
        S3Bucket {
            endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            ca_file: None,
        }
    }

    /// Method, path, canonical query, headers (sorted), payload hash, expected signature.
    type Example<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        &'a str,
        &'a str,
    );

    /// The worked examples of the S3 API reference ("Signature Calculations for the
    /// Authorization Header: Transferring Payload in a Single Chunk").
    #[test]
    fn signatures_match_the_s3_reference_examples() {
        let put_body = b"Welcome to Amazon S3.";
        let put_sha = hex::encode(Sha256::digest(put_body));
        let cases: [Example; 3] = [
            (
                "GET",
                "/test.txt",
                "",
                vec![
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("range", "bytes=0-9"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                EMPTY_SHA256,
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
            (
                "PUT",
                "/test$file.text",
                "",
                vec![
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", &put_sha),
                    ("x-amz-date", "20130524T000000Z"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                &put_sha,
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
            // "GET Bucket (List Objects)": a query string, signed sorted and encoded.
            (
                "GET",
                "/",
                "max-keys=2&prefix=J",
                vec![
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("x-amz-content-sha256", EMPTY_SHA256),
                    ("x-amz-date", "20130524T000000Z"),
                ],
                EMPTY_SHA256,
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            ),
        ];
        for (method, path, query, headers, payload, signature) in cases {
            let headers: Vec<(String, String)> = headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let names = headers
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(";");
            let path = uri_encode_path(path);
            let header = authorization(
                &Request {
                    method,
                    path: &path,
                    query,
                    headers: &headers,
                    payload_sha256: payload,
                    amz_date: "20130524T000000Z",
                },
                &example_bucket(),
            );
            assert_eq!(
                header,
                format!(
                    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders={names},Signature={signature}"
                ),
                "{method} {path}"
            );
        }
        assert_eq!(
            put_sha,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
    }

    #[test]
    fn a_listing_gives_the_segments_under_the_prefix_and_the_next_page() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Prefix>city/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>city/seg-ingest-0000000001.kzs</Key><LastModified>2026-12-01T10:20:30.456Z</LastModified><ETag>"x"</ETag><Size>10</Size></Contents>
<Contents><Key>city/notes.txt</Key><LastModified>2026-12-01T10:20:30.000Z</LastModified></Contents>
<Contents><Key>city/seg-fines-0000000002.kzs</Key><LastModified>2026-12-02T00:00:00Z</LastModified></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"#;
        let (segments, next) = parse_listing(body, "city/").unwrap();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(
            segments,
            [
                SegmentInfo {
                    name: "seg-ingest-0000000001.kzs".into(),
                    written_at: at("2026-12-01T10:20:30Z"),
                },
                SegmentInfo {
                    name: "seg-fines-0000000002.kzs".into(),
                    written_at: at("2026-12-02T00:00:00Z"),
                },
            ]
        );
        assert_eq!(
            next.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(
            uri_encode("1ueG/X+Y="),
            "1ueG%2FX%2BY%3D",
            "a token is signed encoded"
        );
        let last = body.replace("<IsTruncated>true", "<IsTruncated>false");
        assert_eq!(parse_listing(&last, "city/").unwrap().1, None);
        let broken = body.replace("<NextContinuationToken>", "<Other>");
        assert!(parse_listing(&broken, "city/").is_err());
    }

    /// A store that answers every request with `status` and `body`; counts them.
    fn answering(status: &str, body: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        let status = status.to_owned();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                // Read the head, then as much body as it announces.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body_in = vec![0u8; length];
                let _ = stream.read_exact(&mut body_in);
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (endpoint, requests)
    }

    fn segments_at(endpoint: String) -> S3Segments {
        S3Segments::open(
            S3Bucket {
                endpoint,
                ..example_bucket()
            },
            "w",
        )
        .unwrap()
    }

    #[test]
    fn a_store_that_never_takes_a_conditional_put_is_an_error_not_a_loop() {
        let (endpoint, requests) = answering("412 Precondition Failed", "");
        let err = segments_at(endpoint).append(b"records").unwrap_err();
        assert!(err.to_string().contains("If-None-Match"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), TAKEN_NAMES_TRIED as usize);
    }

    #[test]
    fn a_store_that_ignores_range_is_refused_and_errors_carry_the_code() {
        let (endpoint, _) = answering("200 OK", "the whole object, not the range asked");
        let err = segments_at(endpoint)
            .read_at("seg-w-0000000001.kzs", 8, 4)
            .unwrap_err();
        assert!(err.to_string().contains("ignored the Range"), "{err}");

        let (endpoint, _) = answering(
            "403 Forbidden",
            "<Error><Code>RequestTimeTooSkewed</Code></Error>",
        );
        let err = segments_at(endpoint).append(b"records").unwrap_err();
        assert!(
            err.to_string().contains("HTTP 403 RequestTimeTooSkewed"),
            "{err}"
        );
    }

    #[test]
    fn endpoints_become_a_base_url_and_a_host_header() {
        let cases = [
            (
                "http://127.0.0.1:9000",
                Some(("http://127.0.0.1:9000", "127.0.0.1:9000")),
            ),
            ("http://minio:80/", Some(("http://minio", "minio"))),
            (
                "https://s3.example.kg:443",
                Some(("https://s3.example.kg", "s3.example.kg")),
            ),
            (
                "https://s3.example.kg:8443",
                Some(("https://s3.example.kg:8443", "s3.example.kg:8443")),
            ),
            ("ftp://s3.example.kg", None),
            ("http://", None),
            ("http://host/path", None),
            ("http://user@host", None),
            ("s3.example.kg", None),
        ];
        for (endpoint, expected) in cases {
            let got = split_endpoint(endpoint);
            assert_eq!(
                got.as_ref().map(|(u, h)| (u.as_str(), h.as_str())),
                expected,
                "{endpoint}"
            );
        }
    }

    #[test]
    fn bad_bucket_settings_are_named() {
        let good = S3Bucket {
            endpoint: "http://127.0.0.1:9000".into(),
            prefix: "city/evidence/".into(),
            ..example_bucket()
        };
        assert!(good.problems().is_empty(), "{:?}", good.problems());
        let cases: [(&str, S3Bucket); 6] = [
            (
                "endpoint",
                S3Bucket {
                    endpoint: "s3".into(),
                    ..good.clone()
                },
            ),
            (
                "bucket",
                S3Bucket {
                    bucket: "Evidence_Bucket".into(),
                    ..good.clone()
                },
            ),
            (
                "prefix",
                S3Bucket {
                    prefix: "../x/".into(),
                    ..good.clone()
                },
            ),
            (
                "prefix",
                S3Bucket {
                    prefix: "a b/".into(),
                    ..good.clone()
                },
            ),
            (
                "prefix",
                S3Bucket {
                    prefix: "bishkek".into(),
                    ..good.clone()
                },
            ),
            (
                "KOZOMOL_EVIDENCE_SECRET_ACCESS_KEY",
                S3Bucket {
                    secret_access_key: String::new(),
                    ..good.clone()
                },
            ),
        ];
        for (named, bucket) in cases {
            let problems = bucket.problems().join("; ");
            assert!(problems.contains(named), "{named}: {problems}");
        }
        assert!(!format!("{good:?}").contains("EXAMPLEKEY"));
    }
}
