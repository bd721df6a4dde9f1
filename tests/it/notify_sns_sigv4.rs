//! `sns_configs.sigv4` credentials against a mock STS and a mock SNS on
//! 127.0.0.1: a shared-file `profile`, `role_arn` (STS AssumeRole with
//! `external_id`, its credentials cached), and the errors. Every SigV4
//! signature the mocks receive is checked by an independent computation
//! (canonical request, string to sign, HMAC key chain) with the secret the
//! request should have been signed with.
//!
//! The AWS environment (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`,
//! `AWS_ENDPOINT_URL_STS`, ...) is per process, so the tests of this binary
//! run one at a time.

use crate::notify_deliver_support;

use hmac::{KeyInit, Mac};
use klaxon::metrics::Registry;
use klaxon::model::now_millis;
use klaxon::store::Store;
use notify_deliver_support::{alert, eventually, notification, outbox, FnMock, FnReq};
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Serialises the tests: they set process-wide environment variables.
static ENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Req = FnReq;

/// STS (paths under `/sts`) and SNS (the rest) on one port; STS answers
/// `sts_status` when it is not 200.
async fn mock_aws(sts_status: u16) -> FnMock {
    FnMock::start(Arc::new(move |r: &FnReq| {
        if !r.path.starts_with("/sts") {
            return (200, "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>".into());
        }
        if sts_status != 200 {
            let err = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>";
            return (sts_status, err.into());
        }
        let exp = klaxon::model::time::rfc3339_millis(now_millis() + 3_600_000);
        (200, format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>role-secret</SecretAccessKey><SessionToken>role-token</SessionToken><Expiration>{exp}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/klaxon/x</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ))
    }))
    .await
}

/// The requests whose path starts with `prefix`.
fn reqs(mock: &FnMock, prefix: &str) -> Vec<Req> {
    mock.reqs()
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect()
}

/// The shared AWS files in a temporary directory, and an environment
/// pointing at them and at the mock STS; everything else AWS_* unset.
struct AwsEnv {
    _dir: tempfile::TempDir,
}

const ENV_VARS: &[&str] = &[
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
];

impl AwsEnv {
    fn new(credentials: &str, config: &str, sts: &str) -> AwsEnv {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("credentials");
        let f = dir.path().join("config");
        std::fs::write(&c, credentials).unwrap();
        std::fs::write(&f, config).unwrap();
        for v in ENV_VARS {
            std::env::remove_var(v);
        }
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &c);
        std::env::set_var("AWS_CONFIG_FILE", &f);
        std::env::set_var("AWS_ENDPOINT_URL_STS", sts);
        AwsEnv { _dir: dir }
    }
}

impl Drop for AwsEnv {
    fn drop(&mut self) {
        for v in ENV_VARS {
            std::env::remove_var(v);
        }
    }
}

const CREDENTIALS: &str = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n[ops]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n";
const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[profile ops]\nregion = us-east-2\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug)]
struct Auth {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn auth_of(r: &Req) -> Auth {
    let h = r.headers["authorization"].to_str().unwrap();
    let rest = h
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .unwrap_or_else(|| panic!("not SigV4: {h}"));
    let mut cred = "";
    let mut signed = "";
    let mut sig = "";
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = v;
        }
    }
    let c: Vec<&str> = cred.split('/').collect();
    assert_eq!(c.len(), 5, "{cred}");
    assert_eq!(c[4], "aws4_request");
    Auth {
        access_key: c[0].into(),
        date: c[1].into(),
        region: c[2].into(),
        service: c[3].into(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: sig.into(),
    }
}

/// Recomputes the request's SigV4 signature with `secret`.
fn signature(r: &Req, a: &Auth, secret: &str) -> String {
    let headers: String = a
        .signed_headers
        .iter()
        .map(|h| {
            let v = r.headers[h.as_str()].to_str().unwrap().trim();
            format!("{h}:{v}\n")
        })
        .collect();
    let canonical = format!(
        "POST\n{}\n\n{headers}\n{}\n{}",
        r.path,
        a.signed_headers.join(";"),
        hex(&sha2::Sha256::digest(r.body.as_bytes()))
    );
    let amz_date = r.headers["x-amz-date"].to_str().unwrap();
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        a.date,
        a.region,
        a.service,
        hex(&sha2::Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), &a.date);
    let k = hmac(&k, &a.region);
    let k = hmac(&k, &a.service);
    let k = hmac(&k, "aws4_request");
    hex(&hmac(&k, &to_sign))
}

fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn receivers(mock: &FnMock, sigv4: &str) -> Vec<klaxon::notify::receivers::Receiver> {
    let yaml = format!(
        "route:\n  receiver: sns\nreceivers:\n- name: sns\n  sns_configs:\n  - api_url: '{}'\n    topic_arn: arn:aws:sns:us-east-2:123456789012:alerts\n    sigv4:\n{sigv4}",
        mock.url("/sns/")
    );
    klaxon::notify::config::load_str(&yaml, "am.yml", None)
        .unwrap_or_else(|e| panic!("{e}"))
        .receivers
}

async fn send_one(
    ob: &klaxon::notify::outbox::Outbox,
    store: &Store,
) -> klaxon::store::notify::Delivery {
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "sns",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(WAIT, || store
            .get_delivery(id)
            .unwrap()
            .is_some_and(|d| d.attempts >= 1 && d.status != "sending"))
        .await
    );
    store.get_delivery(id).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assumed_role_credentials_sign_the_publish_and_are_cached() {
    let _g = ENV.lock().await;
    let mock = mock_aws(200).await;
    let _env = AwsEnv::new(CREDENTIALS, CONFIG, &mock.url("/sts/"));
    let recv = receivers(
        &mock,
        "      profile: ops\n      role_arn: arn:aws:iam::123456789012:role/klaxon\n      external_id: ext-1\n",
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    for _ in 0..2 {
        let d = send_one(&ob, &store).await;
        assert_eq!(d.status, "success", "{d:?}");
    }

    // One AssumeRole for both sends, signed with the profile's keys for STS
    // in the profile's region.
    let sts = reqs(&mock, "/sts");
    assert_eq!(sts.len(), 1, "{sts:#?}");
    let a = auth_of(&sts[0]);
    assert_eq!(
        (a.access_key.as_str(), a.region.as_str(), a.service.as_str()),
        ("AKIDPROFILE", "us-east-2", "sts")
    );
    assert_eq!(signature(&sts[0], &a, "profile-secret"), a.signature);
    assert!(sts[0].headers.get("x-amz-security-token").is_none());
    assert_eq!(
        sts[0].headers["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let f = form(&sts[0].body);
    assert_eq!(get(&f, "Action"), Some("AssumeRole"));
    assert_eq!(get(&f, "Version"), Some("2011-06-15"));
    assert_eq!(
        get(&f, "RoleArn"),
        Some("arn:aws:iam::123456789012:role/klaxon")
    );
    assert_eq!(get(&f, "ExternalId"), Some("ext-1"));
    assert_eq!(get(&f, "DurationSeconds"), Some("900"));
    assert!(get(&f, "RoleSessionName").is_some_and(|n| !n.is_empty()));

    // Both Publish requests signed with the role's temporary credentials.
    let sns = reqs(&mock, "/sns");
    assert_eq!(sns.len(), 2);
    for r in &sns {
        let a = auth_of(r);
        assert_eq!(
            (a.access_key.as_str(), a.region.as_str(), a.service.as_str()),
            ("ASIAROLE", "us-east-2", "sns")
        );
        assert_eq!(r.headers["x-amz-security-token"], "role-token");
        assert!(a
            .signed_headers
            .contains(&"x-amz-security-token".to_string()));
        assert_eq!(signature(r, &a, "role-secret"), a.signature);
        assert_ne!(signature(r, &a, "profile-secret"), a.signature);
        assert_eq!(get(&form(&r.body), "Action"), Some("Publish"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_credentials_sign_without_a_role() {
    let _g = ENV.lock().await;
    let mock = mock_aws(200).await;
    let creds = format!("{CREDENTIALS}aws_session_token = profile-token\n");
    let _env = AwsEnv::new(&creds, CONFIG, &mock.url("/sts/"));
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(
        store.clone(),
        receivers(&mock, "      profile: ops\n"),
        &Registry::new(),
    );
    let d = send_one(&ob, &store).await;
    assert_eq!(d.status, "success", "{d:?}");
    assert!(reqs(&mock, "/sts").is_empty());
    let sns = reqs(&mock, "/sns");
    assert_eq!(sns.len(), 1);
    let a = auth_of(&sns[0]);
    assert_eq!(
        (a.access_key.as_str(), a.region.as_str()),
        ("AKIDPROFILE", "us-east-2")
    );
    assert_eq!(sns[0].headers["x-amz-security-token"], "profile-token");
    assert_eq!(signature(&sns[0], &a, "profile-secret"), a.signature);

    // Static keys in the config win over every file, the default profile's
    // region still applies.
    let ob2 = outbox(
        store.clone(),
        receivers(
            &mock,
            "      access_key: AKIDSTATIC\n      secret_key: static-secret\n",
        ),
        &Registry::new(),
    );
    drop(ob);
    let d = send_one(&ob2, &store).await;
    assert_eq!(d.status, "success", "{d:?}");
    let sns = reqs(&mock, "/sns");
    let a = auth_of(&sns[1]);
    assert_eq!(
        (a.access_key.as_str(), a.region.as_str()),
        ("AKIDSTATIC", "eu-west-1")
    );
    assert_eq!(signature(&sns[1], &a, "static-secret"), a.signature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_profile_is_a_clear_error_naming_the_field() {
    let _g = ENV.lock().await;
    let mock = mock_aws(200).await;
    let _env = AwsEnv::new(CREDENTIALS, CONFIG, &mock.url("/sts/"));
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(
        store.clone(),
        receivers(&mock, "      region: us-east-2\n      profile: nope\n"),
        &Registry::new(),
    );
    let d = send_one(&ob, &store).await;
    let e = d.last_error.clone().unwrap_or_default();
    assert!(
        e.starts_with("sigv4.profile \"nope\": no such profile in ") && e.contains("credentials"),
        "{d:?}"
    );
    assert_eq!(d.last_reason.as_deref(), Some("config"));
    assert!(reqs(&mock, "").is_empty(), "nothing sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_assume_role_fails_with_aws_reason() {
    let _g = ENV.lock().await;
    let mock = mock_aws(403).await;
    let _env = AwsEnv::new(CREDENTIALS, CONFIG, &mock.url("/sts/"));
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(
        store.clone(),
        receivers(
            &mock,
            "      access_key: AKIDSTATIC\n      secret_key: static-secret\n      region: us-east-2\n      role_arn: arn:aws:iam::123456789012:role/none\n",
        ),
        &Registry::new(),
    );
    let d = send_one(&ob, &store).await;
    assert_eq!(d.status, "failed", "{d:?}");
    assert_eq!(d.attempts, 1);
    let e = d.last_error.unwrap();
    assert!(
        e.contains("sigv4.role_arn") && e.contains("403") && e.contains("AccessDenied"),
        "{e}"
    );
    assert!(!e.contains("static-secret"));
    // The AssumeRole was signed with the static keys.
    let sts = reqs(&mock, "/sts");
    let a = auth_of(&sts[0]);
    assert_eq!(a.access_key, "AKIDSTATIC");
    assert_eq!(signature(&sts[0], &a, "static-secret"), a.signature);
    assert!(reqs(&mock, "/sns").is_empty());
}

#[test]
fn external_id_needs_role_arn() {
    let yaml = "route:\n  receiver: sns\nreceivers:\n- name: sns\n  sns_configs:\n  - topic_arn: arn:aws:sns:us-east-2:1:a\n    sigv4:\n      external_id: x\n";
    let e = klaxon::notify::config::load_str(yaml, "am.yml", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("am.yml:8:20: external_id can only be used with role_arn"),
        "{e}"
    );
}
