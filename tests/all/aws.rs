//! The AWS provider component (aws-sdk-ec2 inside wasm) against moto's EC2
//! API on 127.0.0.1 (issue 7). Provisioning is driven through the provider
//! itself (`aloft provider call aws ...`) and checked from the outside with
//! boto3 (moto's own dependency). moto's instances have made-up addresses:
//! nothing here connects to them.

use crate::util::{Run, TestHome};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// moto's server, as installed by scripts/install-moto.sh.
fn moto_server() -> PathBuf {
    if let Some(p) = std::env::var_os("ALOFT_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let tools = std::env::var_os("ALOFT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache").join("aloft-tools"));
    let p = tools.join("moto-5.2.5").join("bin").join("moto_server");
    assert!(
        p.exists(),
        "{} missing: run scripts/install-moto.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A moto server on 127.0.0.1 and a home with the aws provider installed.
struct Moto {
    child: Child,
    url: String,
    port: u16,
    home: TestHome,
    /// HOME for aloft and boto3: no ~/.aws of the machine is ever read.
    user_home: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl aloft-test";

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let m = Moto {
            child,
            url,
            port,
            home: TestHome::new(),
            user_home: tempfile::tempdir().expect("tempdir"),
        };
        assert!(
            crate::util::wait_until(60, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
            "moto did not listen on {port}"
        );
        m.home.install(&["aws"]);
        m
    }

    /// `aloft ARGS` with test credentials and the endpoint at `endpoint`.
    fn cmd_at(&self, endpoint: &str, args: &[&str]) -> Command {
        let mut c = self.home.cmd(args);
        for v in [
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_CONFIG_FILE",
        ] {
            c.env_remove(v);
        }
        c.env("HOME", self.user_home.path())
            .env("AWS_ACCESS_KEY_ID", "AKIAALOFTTESTKEY0001")
            .env("AWS_SECRET_ACCESS_KEY", "aloft-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_EC2", endpoint);
        c
    }

    fn call_at(&self, endpoint: &str, op: &str, args: Value) -> Run {
        self.home.output(self.cmd_at(
            endpoint,
            &["provider", "call", "aws", op, "--json", &args.to_string()],
        ))
    }

    /// A provider call that must succeed; its JSON reply.
    #[track_caller]
    fn call(&self, op: &str, args: Value) -> Value {
        let run = self.call_at(&self.url, op, args);
        let v = run.json();
        assert_eq!(run.status, 0, "{op}: {v}\n{}", run.stderr);
        v
    }

    /// Runs a Python snippet with boto3 against moto; it prints JSON.
    fn boto(&self, code: &str) -> Value {
        let python = moto_server().with_file_name("python");
        let script = format!(
            "import boto3, json\nec2 = boto3.client('ec2', region_name='us-east-1', endpoint_url='{}', \
             aws_access_key_id='AKIAALOFTTESTKEY0001', aws_secret_access_key='x')\n{code}",
            self.url
        );
        let out = Command::new(python)
            .args(["-c", &script])
            .env("HOME", self.user_home.path())
            .output()
            .expect("python");
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "boto3 output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The cluster's instances as moto has them (any state).
    fn instances(&self, cluster: &str) -> Vec<Value> {
        let v = self.boto(&format!(
            "r = ec2.describe_instances(Filters=[{{'Name': 'tag:aloft-cluster-name', 'Values': ['{cluster}']}}])\n\
             print(json.dumps([i for res in r['Reservations'] for i in res['Instances']], default=str))"
        ));
        v.as_array().cloned().unwrap_or_default()
    }
}

fn tag(instance: &Value, key: &str) -> Option<String> {
    instance["Tags"]
        .as_array()?
        .iter()
        .find(|t| t["Key"] == key)
        .and_then(|t| t["Value"].as_str().map(str::to_string))
}

fn cluster(name: &str) -> Value {
    json!({ "cluster_name": name, "region": "us-east-1", "zone": "us-east-1a" })
}

fn states(m: &Moto, name: &str) -> Vec<String> {
    let mut s: Vec<String> = m
        .instances(name)
        .iter()
        .map(|i| i["State"]["Name"].as_str().unwrap_or("?").to_string())
        .collect();
    s.sort();
    s
}

/// The newest image tagged `tag` for us-east-1 in the shipped images table:
/// what the provider should pick when the task names no image.
fn expected_image(tag: &str) -> String {
    let text =
        std::fs::read_to_string(crate::util::root().join("providers/aws/catalog/images.csv"))
            .expect("images.csv");
    let mut rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[0] == tag && f[1] == "us-east-1")
        .collect();
    rows.sort_by_key(|f| f[5].to_string());
    rows.last()
        .unwrap_or_else(|| panic!("a us-east-1 image tagged {tag}"))[4]
        .to_string()
}

#[test]
fn spot_cluster_lifecycle_on_moto() {
    let m = Moto::start();

    // check: credentials accepted, identity shown.
    let check = m.home.output(m.cmd_at(&m.url, &["check", "--json"])).json();
    assert_eq!(check["aws"]["enabled"], true, "{check}");
    let detail = check["aws"]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("AWS account 123456789012") && detail.contains("AKIA…0001"),
        "{detail}"
    );
    let id = m.call("check", Value::Null);
    assert!(
        id["id"].as_str().unwrap_or("").contains("123456789012"),
        "{id}"
    );

    let req = json!({
        "cluster": cluster("train"),
        "node_count": 2,
        "instance_type": "m5.large",
        "use_spot": true,
        "disk_size_gib": 120,
        "ports": [{ "start": 8888, "end": 8890 }],
        "labels": [["team", "ml"], ["project", "aloft"]],
        "ssh_public_key": KEY,
    });
    let nodes = m.call("run-instances", req.clone());
    let nodes = nodes.as_array().expect("instances");
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(nodes[0]["rank"], 0);
    assert_eq!(nodes[1]["rank"], 1);
    for n in nodes {
        assert_eq!(n["spot"], true, "{n}");
        assert_eq!(n["instance_type"], "m5.large");
        assert_eq!(n["ssh_user"], "ubuntu");
        assert!(n["private_ip"].is_string(), "{n}");
    }

    // What moto holds, seen with boto3.
    let got = m.instances("train");
    assert_eq!(got.len(), 2);
    let mut ranks: Vec<String> = got
        .iter()
        .filter_map(|i| tag(i, "aloft-node-rank"))
        .collect();
    ranks.sort();
    assert_eq!(ranks, ["0", "1"]);
    let image = expected_image("skypilot:custom-cpu-ubuntu");
    for i in &got {
        assert_eq!(i["InstanceLifecycle"], "spot", "{i}");
        assert_eq!(tag(i, "team").as_deref(), Some("ml"));
        assert_eq!(tag(i, "project").as_deref(), Some("aloft"));
        assert!(tag(i, "Name")
            .unwrap_or_default()
            .starts_with("aloft-train-"));
        assert_eq!(i["ImageId"], image.as_str());
        assert_eq!(i["Placement"]["AvailabilityZone"], "us-east-1a");
        assert_eq!(i["SecurityGroups"][0]["GroupName"], "aloft-train", "{i}");
        assert!(
            i["KeyName"].as_str().unwrap_or("").starts_with("aloft-"),
            "{i}"
        );
    }
    let key_name = got[0]["KeyName"].as_str().unwrap_or("").to_string();
    let keys = m.boto(&format!(
        "print(json.dumps([k['KeyName'] for k in ec2.describe_key_pairs(KeyNames=['{key_name}'])['KeyPairs']]))"
    ));
    assert_eq!(keys, json!([key_name]));
    let perms = m.boto(
        "g = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['aloft-train']}])['SecurityGroups']\n\
         print(json.dumps(sorted([[p['FromPort'], p['ToPort']] for p in g[0]['IpPermissions']])))",
    );
    assert_eq!(perms, json!([[22, 22], [8888, 8890]]));
    let volumes = m.boto(&format!(
        "v = ec2.describe_volumes(Filters=[{{'Name': 'attachment.instance-id', 'Values': ['{}']}}])['Volumes']\n\
         print(json.dumps([x['Size'] for x in v]))",
        got[0]["InstanceId"].as_str().unwrap_or("")
    ));
    assert_eq!(volumes, json!([120]), "root volume size");

    // Launching again adds nothing.
    let again = m.call("run-instances", req);
    assert_eq!(again.as_array().map(Vec::len), Some(2));
    assert_eq!(m.instances("train").len(), 2);

    // query, stop, start, terminate (twice).
    let q = m.call("query-instances", cluster("train"));
    assert_eq!(q.as_array().map(Vec::len), Some(2));
    m.call("stop-instances", cluster("train"));
    assert_eq!(states(&m, "train"), ["stopped", "stopped"]);
    let q = m.call("query-instances", cluster("train"));
    assert!(
        q.as_array()
            .expect("list")
            .iter()
            .all(|n| n["state"] == "stopped"),
        "{q}"
    );
    let started = m.call("start-instances", cluster("train"));
    assert!(started
        .as_array()
        .expect("list")
        .iter()
        .all(|n| n["state"] == "running" || n["state"] == "pending"));
    assert_eq!(states(&m, "train"), ["running", "running"]);
    m.call(
        "open-ports",
        json!({ "cluster": cluster("train"), "ports": [{ "start": 6006, "end": 6006 }] }),
    );
    let perms = m.boto(
        "g = ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['aloft-train']}])['SecurityGroups']\n\
         print(json.dumps(sorted([p['FromPort'] for p in g[0]['IpPermissions']])))",
    );
    assert_eq!(perms, json!([22, 6006, 8888]));

    m.call("terminate-instances", cluster("train"));
    assert_eq!(states(&m, "train"), ["terminated", "terminated"]);
    let groups = m.boto(
        "print(json.dumps(len(ec2.describe_security_groups(Filters=[{'Name': 'group-name', 'Values': ['aloft-train']}])['SecurityGroups'])))",
    );
    assert_eq!(groups, json!(0), "security group deleted on down");
    assert_eq!(m.call("query-instances", cluster("train")), json!([]));
    // A second down is a no-op.
    m.call("terminate-instances", cluster("train"));
    assert_eq!(states(&m, "train"), ["terminated", "terminated"]);

    // An on-demand node of another cluster: no market options.
    let od = m.call(
        "run-instances",
        json!({ "cluster": cluster("serve"), "node_count": 1, "instance_type": "t3.medium", "ssh_public_key": KEY }),
    );
    assert_eq!(od[0]["spot"], false, "{od}");
    let got = m.instances("serve");
    assert!(got[0].get("InstanceLifecycle").is_none(), "{}", got[0]);
    // The key pair is shared, not imported again.
    let n = m.boto("print(json.dumps(len(ec2.describe_key_pairs()['KeyPairs'])))");
    assert_eq!(n, json!(1));
    m.call("terminate-instances", cluster("serve"));

    // Without image_id: the GPU image for a GPU type, arm64 for Graviton.
    for (itype, tag) in [
        ("p3.2xlarge", "skypilot:custom-gpu-ubuntu"),
        ("m7g.large", "skypilot:custom-cpu-ubuntu-arm64"),
    ] {
        let name = format!("img-{}", itype.replace('.', "-"));
        m.call(
            "run-instances",
            json!({ "cluster": cluster(&name), "node_count": 1, "instance_type": itype, "ssh_public_key": KEY }),
        );
        assert_eq!(
            m.instances(&name)[0]["ImageId"],
            expected_image(tag).as_str(),
            "{itype}"
        );
        m.call("terminate-instances", cluster(&name));
    }
}

#[test]
fn credentials_from_an_aws_profile() {
    let m = Moto::start();
    let aws = m.user_home.path().join(".aws");
    std::fs::create_dir_all(&aws).expect("mkdir");
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = AKIADEFAULTNOTUSED00\naws_secret_access_key = nope\n\n\
         [research]\naws_access_key_id = AKIARESEARCH00000001\naws_secret_access_key = s3cret\n",
    )
    .expect("write");
    std::fs::write(
        aws.join("config"),
        format!(
            "[profile research]\nregion = us-east-1\nendpoint_url = {}\n",
            m.url
        ),
    )
    .expect("write");
    let profile_cmd = |profile: &str| {
        let mut c = m.cmd_at(&m.url, &["provider", "call", "aws", "check"]);
        for v in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_ENDPOINT_URL_EC2",
        ] {
            c.env_remove(v);
        }
        c.env("AWS_PROFILE", profile);
        c
    };
    // Keys, region and endpoint all from the profile.
    let run = m.home.output(profile_cmd("research"));
    let v = run.json();
    assert_eq!(run.status, 0, "{v}\n{}", run.stderr);
    assert!(
        v["id"].as_str().unwrap_or("").contains("123456789012"),
        "{v}"
    );
    let details = v["details"].to_string();
    assert!(details.contains("AKIA…0001"), "{details}");
    assert!(details.contains(&m.url), "{details}");

    // A profile that does not exist: an auth error that says what to set.
    let run = m.home.output(profile_cmd("missing"));
    let v = run.json();
    assert_eq!(run.status, 1);
    assert_eq!(v["error"]["kind"], "auth", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("AWS_ACCESS_KEY_ID"),
        "{v}"
    );
}

/// A loopback proxy in front of moto that answers one EC2 action with an
/// error of AWS's documented shape and passes every other request through.
/// One request per connection (the host's wasi:http client opens one each).
struct FaultProxy {
    url: String,
    /// (status, body) served for the faulted action.
    fault: Arc<Mutex<(u16, String)>>,
    /// Authorization headers of faulted requests, as received.
    seen_auth: Arc<Mutex<Vec<String>>>,
    /// Bodies of faulted requests (form-encoded EC2 Query parameters).
    seen_bodies: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    fn start(moto_port: u16, action: &'static str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let fault = Arc::new(Mutex::new((500, String::new())));
        let seen_auth = Arc::new(Mutex::new(Vec::new()));
        let seen_bodies = Arc::new(Mutex::new(Vec::new()));
        let (f, s, b) = (fault.clone(), seen_auth.clone(), seen_bodies.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (f, s, b) = (f.clone(), s.clone(), b.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, moto_port, action, &f, &s, &b);
                });
            }
        });
        FaultProxy {
            url,
            fault,
            seen_auth,
            seen_bodies,
        }
    }

    fn set(&self, status: u16, code: &str, message: &str) {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{message}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
        );
        *self.fault.lock().expect("lock") = (status, body);
    }
}

/// Reads one HTTP/1.1 message (headers + Content-Length body).
fn read_message(conn: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((head, buf[head_end..].to_vec()))
}

fn serve(
    mut conn: TcpStream,
    moto_port: u16,
    action: &str,
    fault: &Mutex<(u16, String)>,
    seen_auth: &Mutex<Vec<String>>,
    seen_bodies: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, body) = read_message(&mut conn)?;
    let text = String::from_utf8_lossy(&body);
    if text.split('&').any(|kv| kv == format!("Action={action}")) {
        let auth = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
            .unwrap_or("")
            .to_string();
        seen_auth.lock().expect("lock").push(auth);
        seen_bodies.lock().expect("lock").push(text.to_string());
        let (status, body) = fault.lock().expect("lock").clone();
        let reply = format!(
            "HTTP/1.1 {status} Error\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return conn.write_all(reply.as_bytes());
    }
    // Pass through to moto, one request on a fresh connection.
    let mut upstream = TcpStream::connect(("127.0.0.1", moto_port))?;
    upstream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = head.replacen("\r\n", "\r\nConnection: close\r\n", 1);
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&body)?;
    let (rhead, rbody) = read_message(&mut upstream)?;
    conn.write_all(rhead.as_bytes())?;
    conn.write_all(&rbody)
}

#[test]
fn ec2_errors_become_typed_provider_errors() {
    let m = Moto::start();
    let proxy = FaultProxy::start(m.port, "RunInstances");
    let req = json!({
        "cluster": cluster("errs"),
        "node_count": 2,
        "instance_type": "p4d.24xlarge",
        "use_spot": true,
        "ssh_public_key": KEY,
    });
    // (HTTP status, code, message, expected kind); statuses as EC2 sends them.
    let cases = [
        (500, "InsufficientInstanceCapacity", "We currently do not have sufficient p4d.24xlarge capacity in the Availability Zone you requested (us-east-1a).", "capacity"),
        (400, "VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit of 32 allows.", "quota"),
        (400, "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded", "quota"),
        (400, "InstanceLimitExceeded", "Your quota allows for 0 more running instance(s).", "quota"),
        (401, "AuthFailure", "AWS was not able to validate the provided access credentials", "auth"),
        (403, "UnauthorizedOperation", "You are not authorized to perform this operation.", "auth"),
        (400, "Unsupported", "Your requested instance type (p4d.24xlarge) is not supported in your requested Availability Zone (us-east-1e).", "capacity"),
        (400, "InvalidParameterValue", "Value (x) for parameter instanceType is invalid.", "other"),
    ];
    for (status, code, message, kind) in cases {
        proxy.set(status, code, message);
        let started = Instant::now();
        let run = m.call_at(&proxy.url, "run-instances", req.clone());
        let v = run.json();
        assert_eq!(run.status, 1, "{code}: {v}");
        assert_eq!(v["error"]["kind"], kind, "{code}: {v}");
        let text = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            text.contains(code) && text.contains("RunInstances"),
            "{code}: {text}"
        );
        assert!(
            text.contains(&message[..20]),
            "{code}: AWS's message is kept: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{code} took {:?}",
            started.elapsed()
        );
    }
    // The requests reached the proxy signed (SigV4) with the given key.
    let auth = proxy.seen_auth.lock().expect("lock").clone();
    assert!(!auth.is_empty());
    assert!(
        auth.iter()
            .all(|a| a.contains("AWS4-HMAC-SHA256 Credential=AKIAALOFTTESTKEY0001/")),
        "{auth:?}"
    );
    // Nothing was launched; what failed did not leave instances behind.
    assert!(m.instances("errs").is_empty());

    // An image id of the wrong shape is refused before any call is made.
    let run = m.call_at(
        &m.url,
        "run-instances",
        json!({
            "cluster": cluster("errs"), "node_count": 1, "instance_type": "m5.large",
            "image_id": "not-an-ami", "ssh_public_key": KEY,
        }),
    );
    let v = run.json();
    assert_eq!(v["error"]["kind"], "other", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("expected an AMI id"),
        "{v}"
    );
}

/// `aloft launch` on AWS with every RunInstances answered "no capacity":
/// each zone of the region is tried once (zone ids from the catalog turned
/// into this account's zone names), the launch fails with the list of
/// attempts, and nothing is left behind, in moto or in aloft's state. No
/// instance ever comes up, so nothing tries to reach moto's fake addresses.
#[test]
fn launch_fails_over_across_zones_then_leaves_nothing() {
    let m = Moto::start();
    let proxy = FaultProxy::start(m.port, "RunInstances");
    proxy.set(
        500,
        "InsufficientInstanceCapacity",
        "We currently do not have sufficient m5.large capacity in the Availability Zone you requested.",
    );
    let check = m
        .home
        .output(m.cmd_at(&proxy.url, &["check", "--json"]))
        .json();
    assert_eq!(check["aws"]["enabled"], true, "{check}");
    let launch = |name: &str| {
        m.home.output(m.cmd_at(
            &proxy.url,
            &[
                "launch",
                "-y",
                "-c",
                name,
                "--infra",
                "aws/us-east-1",
                "--instance-type",
                "m5.large",
                "echo never",
            ],
        ))
    };
    let err = launch("fo").fails_with(3);
    let zones = ["use1-az1", "use1-az2", "use1-az4", "use1-az5", "use1-az6"];
    for z in zones {
        assert!(
            err.contains(&format!("✗ aws/us-east-1/{z} m5.large")),
            "{z} not tried:\n{err}"
        );
    }
    assert!(
        err.contains("InsufficientInstanceCapacity") && err.contains("could not provision fo"),
        "{err}"
    );
    // Each attempt asked for its zone by this account's name for it.
    let bodies = proxy.seen_bodies.lock().expect("lock").clone();
    for name in [
        "us-east-1a",
        "us-east-1b",
        "us-east-1c",
        "us-east-1d",
        "us-east-1f",
    ] {
        assert!(
            bodies
                .iter()
                .any(|b| b.contains(&format!("Placement.AvailabilityZone={name}"))),
            "no RunInstances for {name}"
        );
    }
    assert!(m.instances("fo").is_empty());
    let groups = m.boto(
        "print(json.dumps([g['GroupName'] for g in ec2.describe_security_groups()['SecurityGroups'] if g['GroupName'].startswith('aloft-')]))",
    );
    assert_eq!(groups, json!([]), "failed attempts left security groups");
    assert_eq!(
        m.home
            .output(m.cmd_at(&proxy.url, &["status", "--json"]))
            .json(),
        json!([])
    );

    // Quota blocks the whole region at once: one attempt, not five.
    proxy.set(
        400,
        "VcpuLimitExceeded",
        "You have requested more vCPU capacity than your current vCPU limit of 0 allows.",
    );
    let err = launch("q").fails_with(3);
    assert_eq!(err.matches("✗ aws/us-east-1/").count(), 1, "{err}");
    assert!(err.contains("VcpuLimitExceeded"), "{err}");
}

/// The cheapest spot price of `itype` in `region` in the shipped snapshot.
fn snapshot_spot(itype: &str, region: &str) -> f64 {
    let text = std::fs::read_to_string(crate::util::root().join("providers/aws/catalog/vms.csv"))
        .expect("vms.csv");
    text.lines()
        .filter(|l| l.starts_with(&format!("{itype},")))
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[f.len() - 3] == region)
        .filter_map(|f| f[f.len() - 4].parse::<f64>().ok())
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn catalog_refresh_takes_live_types_and_spot_prices() {
    let m = Moto::start();
    let plan = |region: &str| {
        let run = m.home.output(m.cmd_at(
            &m.url,
            &[
                "launch",
                "--dryrun",
                "--json",
                "--infra",
                &format!("aws/{region}"),
                "--instance-type",
                "m5.large",
                "--use-spot",
            ],
        ));
        let v = run.json();
        assert_eq!(run.status, 0, "{v}\n{}", run.stderr);
        v["hourly_cost"].as_f64().expect("cost")
    };
    let east = snapshot_spot("m5.large", "us-east-1");
    let west = snapshot_spot("m5.large", "us-west-2");
    assert!((plan("us-east-1") - east).abs() < 1e-6);

    let out = m
        .home
        .output(m.cmd_at(
            &m.url,
            &["catalog", "refresh", "aws", "--regions", "us-east-1"],
        ))
        .ok();
    assert!(
        out.contains("live catalog of") && out.contains("from us-east-1"),
        "{out}"
    );
    // moto's spot price for every type is $0.00001/h.
    let live: f64 = m
        .boto(
            "import datetime\nr = ec2.describe_spot_price_history(InstanceTypes=['m5.large'], \
             ProductDescriptions=['Linux/UNIX'], StartTime=datetime.datetime.utcnow())\n\
             print(json.dumps(min(float(p['SpotPrice']) for p in r['SpotPriceHistory'])))",
        )
        .as_f64()
        .expect("price");
    assert!(
        (plan("us-east-1") - live).abs() < 1e-9,
        "live spot price used"
    );
    // A region not refreshed keeps the snapshot's prices.
    assert!((plan("us-west-2") - west).abs() < 1e-6);

    m.home
        .output(m.cmd_at(&m.url, &["catalog", "reset", "aws"]))
        .ok();
    assert!(
        (plan("us-east-1") - east).abs() < 1e-6,
        "reset brings the snapshot back"
    );

    // A provider that cannot refresh says so, and nothing changes.
    m.home.install(&["lambda"]);
    let err = m
        .home
        .output(m.cmd_at(&m.url, &["catalog", "refresh", "lambda"]))
        .fails_with(2);
    assert!(err.contains("cannot refresh its catalog"), "{err}");
    // The setting is the host's only: the environment cannot switch it on.
    let mut c = m.cmd_at(&m.url, &["provider", "call", "aws", "catalog"]);
    c.env("ALOFT_CATALOG_REFRESH", "all");
    let v = m.home.output(c).json();
    assert_eq!(v["version"], "v8", "snapshot served");
}
