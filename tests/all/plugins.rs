//! The plugin host (issue 2): install checks, the sandbox, hostile fixtures,
//! the embedded catalogs, and the `aloft provider` commands.

use crate::util::{copy_plugin, plugin, TestHome};
use aloft_plugin::{Call, CallError, Limits, Op, PluginHost, Registry, Reply};
use std::time::{Duration, Instant};

fn host_with(home: &TestHome, limits: Limits) -> PluginHost {
    PluginHost::new(home.path(), limits).expect("plugin host")
}

fn installed(host: &PluginHost, home: &TestHome, name: &str) -> aloft_plugin::LoadedPlugin {
    let reg = Registry::new(home.path());
    let i = reg.install(host, &plugin(name)).expect("install");
    host.load(&i.manifest, &i.component()).expect("load")
}

async fn assert_well_behaved_works(good: &aloft_plugin::LoadedPlugin) {
    match good.call(Call::Catalog).await {
        Ok(Reply::Catalog(c)) => assert_eq!(c.offerings.len(), 2),
        other => panic!("well-behaved catalog after a hostile call: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_are_stopped_by_name_and_the_host_keeps_serving() {
    let home = TestHome::new();
    let mut limits = Limits::default();
    limits
        .apply_deadlines("check=1s,catalog=1s")
        .expect("deadlines");
    limits.memory_bytes = 64 << 20;
    let host = host_with(&home, limits);
    let good = installed(&host, &home, "fixture-well-behaved");
    assert_well_behaved_works(&good).await;

    // A trap: named, with the guest's panic message.
    let trap = installed(&host, &home, "fixture-trap");
    match trap.call(Call::Check).await {
        Err(CallError::Trap {
            plugin,
            op,
            message,
        }) => {
            assert_eq!((plugin.as_str(), op), ("fixture-trap@0.1.0", "check"));
            assert!(message.contains("fixture: trap in check"), "{message}");
        }
        other => panic!("trap fixture: {other:?}"),
    }
    assert_well_behaved_works(&good).await;

    // An endless loop: stopped at its deadline, not later.
    let spin = installed(&host, &home, "fixture-spin");
    let t = Instant::now();
    match spin.call(Call::Check).await {
        Err(CallError::Deadline {
            plugin, deadline, ..
        }) => {
            assert_eq!(plugin, "fixture-spin@0.1.0");
            assert_eq!(deadline, Duration::from_secs(1));
        }
        other => panic!("spin fixture: {other:?}"),
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "spin stopped after {took:?}"
    );
    assert_well_behaved_works(&good).await;

    // Unbounded memory growth: stopped at the limit.
    let hog = installed(&host, &home, "fixture-hog");
    match hog.call(Call::Check).await {
        Err(CallError::MemoryLimit {
            plugin, limit_mib, ..
        }) => {
            assert_eq!((plugin.as_str(), limit_mib), ("fixture-hog@0.1.0", 64));
        }
        other => panic!("hog fixture: {other:?}"),
    }
    assert_well_behaved_works(&good).await;

    // Raw sockets: refused by WASI, reported by the plugin as an error.
    let sock = installed(&host, &home, "fixture-raw-socket");
    match sock.call(Call::Check).await {
        Err(CallError::Provider { error, .. }) => {
            assert!(error.to_string().contains("access-denied"), "{error}");
        }
        other => panic!("raw-socket fixture: {other:?}"),
    }

    // A trapped session refuses further calls; a fresh one works.
    let mut session = trap.session().await.expect("session");
    assert!(session.call(Call::Check).await.is_err());
    match session.call(Call::Check).await {
        Err(CallError::Trap { message, .. }) => assert!(message.contains("discarded"), "{message}"),
        other => panic!("poisoned session: {other:?}"),
    }
    assert_well_behaved_works(&good).await;
}

#[test]
fn unsupported_api_version_is_refused_naming_plugin_and_version() {
    let home = TestHome::new();
    let err = home
        .run(&[
            "provider",
            "install",
            plugin("fixture-future-api").to_str().expect("path"),
        ])
        .fails_with(1);
    assert!(
        err.contains("fixture-future-api@0.1.0 implements aloft:provider@9.0.0")
            && err.contains("supports aloft:provider >=0.1.0, <0.2.0"),
        "{err}"
    );
    assert!(home
        .run(&["provider", "list", "--json"])
        .json()
        .as_array()
        .expect("array")
        .is_empty());
}

#[test]
fn egress_outside_the_list_is_refused_and_reported_by_the_plugin() {
    let home = TestHome::new();
    home.install(&["fixture-egress-denied"]);
    let run = home.run(&["provider", "call", "fixture-egress-denied", "check"]);
    let v = run.json();
    assert_eq!(v["error"]["kind"], "other", "{v}");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("127.0.0.9 is not in this plugin's egress list"),
        "{msg}"
    );
    assert_eq!(run.status, 1);
}

/// Regression guard for the empty-body GET trap (WASM-TOOLCHAIN.md): allowed
/// GETs against a server that answers slowly must all succeed.
#[test]
fn allowed_egress_reaches_a_slow_loopback_server_every_time() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        for _ in 0..8 {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            std::thread::sleep(Duration::from_millis(150));
            let body = "hello-from-loopback";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let home = TestHome::new();
    home.install(&["fixture-well-behaved"]);
    let args = r#"{"cluster_name":"c","region":"r"}"#;
    for i in 0..8 {
        let mut cmd = home.cmd(&[
            "provider",
            "call",
            "fixture-well-behaved",
            "query-instances",
            "--json",
            args,
        ]);
        cmd.env("PROBE_URL", format!("http://127.0.0.1:{port}/probe"));
        let v = home.output(cmd).json();
        assert_eq!(v[0]["id"], "hello-from-loopback", "attempt {i}: {v}");
        assert_eq!(v[0]["ssh_port"], 200);
    }
    server.join().expect("server");
}

#[test]
fn only_declared_secrets_reach_a_plugin() {
    let home = TestHome::new();
    home.install(&["fixture-undeclared-secret", "fixture-well-behaved"]);
    let mut cmd = home.cmd(&["provider", "call", "fixture-undeclared-secret", "check"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", "must-not-leak");
    let run = home.output(cmd);
    assert_eq!(run.status, 1);
    let v = run.json();
    assert_eq!(v["error"]["kind"], "auth");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(
        msg.contains("does not declare secret AWS_SECRET_ACCESS_KEY"),
        "{msg}"
    );
    assert!(!run.stdout.contains("must-not-leak") && !run.stderr.contains("must-not-leak"));

    // A declared secret is given.
    let mut cmd = home.cmd(&["provider", "call", "fixture-well-behaved", "check"]);
    cmd.env("FIXTURE_TOKEN", "12345");
    assert_eq!(home.output(cmd).json()["id"], "fixture-user-5");
    // ...and a missing one is the plugin's `auth` error.
    let v = home
        .run(&["provider", "call", "fixture-well-behaved", "check"])
        .json();
    assert_eq!(v["error"]["kind"], "auth", "{v}");
}

fn listed(home: &TestHome) -> serde_json::Value {
    home.run(&["provider", "list", "--json"]).json()
}

#[test]
fn bad_installs_name_the_file_and_leave_the_installed_set_alone() {
    let home = TestHome::new();
    home.install(&["fixture-well-behaved"]);
    let before = listed(&home);
    let scratch = tempfile::tempdir().expect("tmp");

    // A corrupt component (with a manifest whose sha256 matches it).
    let dir = copy_plugin("fixture-trap", scratch.path());
    let wasm = dir.join("fixture-trap.wasm");
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0garbage").expect("write");
    let sha = aloft_plugin::host::sha256_hex(&std::fs::read(&wasm).expect("read"));
    let manifest = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("sha256") {
                format!("sha256 = \"{sha}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, text).expect("write");
    let err = home
        .run(&["provider", "install", dir.to_str().expect("p")])
        .fails_with(1);
    assert!(
        err.contains("fixture-trap.wasm") && err.contains("not a valid WebAssembly component"),
        "{err}"
    );

    // A manifest whose sha256 does not match.
    let dir = copy_plugin("fixture-spin", scratch.path());
    let wasm = dir.join("fixture-spin.wasm");
    let mut bytes = std::fs::read(&wasm).expect("read");
    bytes.extend_from_slice(b"tamper");
    std::fs::write(&wasm, bytes).expect("write");
    let err = home
        .run(&["provider", "install", wasm.to_str().expect("p")])
        .fails_with(1);
    assert!(
        err.contains("fixture-spin.wasm")
            && err.contains("sha256 is")
            && err.contains("but plugin.toml says"),
        "{err}"
    );

    // A manifest with an unknown key.
    let dir = copy_plugin("fixture-hog", scratch.path());
    let manifest = dir.join("plugin.toml");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text.push_str("\nnetwork = \"all\"\n");
    std::fs::write(&manifest, text).expect("write");
    let err = home
        .run(&["provider", "install", dir.to_str().expect("p")])
        .fails_with(1);
    assert!(
        err.contains("plugin.toml") && err.contains("unknown field `network`"),
        "{err}"
    );

    // A component importing something the host does not give.
    let err = home
        .run(&[
            "provider",
            "install",
            plugin("fixture-forbidden-import").to_str().expect("p"),
        ])
        .fails_with(1);
    assert!(
        err.contains("fixture-forbidden-import.wasm")
            && err.contains("imports fixture:forbidden/spy"),
        "{err}"
    );

    assert_eq!(
        listed(&home),
        before,
        "a refused install changed the installed set"
    );
}

#[test]
fn list_info_remove_and_reinstall() {
    let home = TestHome::new();
    assert!(listed(&home).as_array().expect("array").is_empty());
    home.install(&["lambda", "runpod"]);
    let v = listed(&home);
    let names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["lambda", "runpod"]);
    assert_eq!(v[0]["api"], "aloft:provider@0.1.0");
    assert_eq!(v[0]["kind"], "provider");
    assert_eq!(v[0]["secrets"][0], "LAMBDA_API_KEY");
    assert!(v[0]["egress"]
        .as_array()
        .expect("egress")
        .iter()
        .any(|h| h == "cloud.lambdalabs.com"));
    assert_eq!(v[0]["sha256"].as_str().expect("sha").len(), 64);

    let table = home.run(&["provider", "list"]).ok();
    let header = table.lines().next().expect("header");
    for col in [
        "NAME", "VERSION", "API", "KIND", "EGRESS", "SECRETS", "SHA256",
    ] {
        assert!(header.contains(col), "{header}");
    }

    let info = home.run(&["provider", "info", "lambda", "--json"]).json();
    assert!(info["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .any(|e| e == "aloft:provider/catalog@0.1.0"));
    assert!(info["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .any(|e| e == "aloft:provider/secrets@0.1.0"));

    // Reinstalling the same version replaces it in place.
    home.install(&["lambda"]);
    assert_eq!(listed(&home).as_array().expect("array").len(), 2);

    home.run(&["provider", "remove", "lambda@0.1.0"]).ok();
    let err = home.run(&["provider", "remove", "lambda"]).fails_with(1);
    assert!(
        err.contains("no installed plugin matches \"lambda\""),
        "{err}"
    );
    let err = home.run(&["provider", "info", "../etc"]).fails_with(1);
    assert!(err.contains("name must be [a-z0-9-]"), "{err}");
    assert_eq!(listed(&home).as_array().expect("array").len(), 1);
}

#[test]
fn bad_call_arguments_are_exit_2() {
    let home = TestHome::new();
    home.install(&["lambda"]);
    let err = home
        .run(&["provider", "call", "lambda", "launch-rockets"])
        .fails_with(2);
    assert!(
        err.contains("unknown operation \"launch-rockets\""),
        "{err}"
    );
    let err = home
        .run(&[
            "provider",
            "call",
            "lambda",
            "query-instances",
            "--json",
            "{\"cluster\": 1}",
        ])
        .fails_with(2);
    assert!(err.contains("arguments of query-instances"), "{err}");
    // A typed `unsupported` from a provider whose provisioning is not written.
    let run = home.run(&[
        "provider",
        "call",
        "lambda",
        "query-instances",
        "--json",
        r#"{"cluster_name":"c","region":"us-east-1"}"#,
    ]);
    assert_eq!(run.status, 1);
    assert_eq!(run.json()["error"]["kind"], "unsupported");
}

fn csv_rows(provider: &str) -> usize {
    let text = std::fs::read_to_string(
        crate::util::root()
            .join("providers")
            .join(provider)
            .join("catalog/vms.csv"),
    )
    .expect("catalog csv");
    text.lines().filter(|l| !l.trim().is_empty()).count() - 1
}

#[test]
fn every_bundled_provider_serves_its_embedded_catalog() {
    let home = TestHome::new();
    let providers = ["aws", "azure", "gcp", "lambda", "runpod"];
    home.install(&providers);
    for p in providers {
        let v = home.run(&["provider", "call", p, "catalog"]).json();
        let offerings = v["offerings"].as_array().expect("offerings");
        assert_eq!(
            offerings.len(),
            csv_rows(p),
            "{p}: every CSV row is an offering"
        );
        assert_eq!(v["version"], if p == "azure" { "v6" } else { "v8" }, "{p}");
        assert!(v["data_date"].as_str().expect("date").len() == 10, "{p}");
        if p == "aws" {
            // A known row: p4d.24xlarge in ap-northeast-1 / apne1-az4.
            let row = offerings
                .iter()
                .find(|o| o["instance_type"] == "p4d.24xlarge" && o["zone"] == "apne1-az4")
                .expect("p4d row");
            assert_eq!(row["vcpus"], 96.0);
            assert_eq!(row["accelerator"]["name"], "A100");
            assert_eq!(row["accelerator"]["count"], 8.0);
            assert_eq!(row["accelerator"]["memory_gib"], 40.0);
            assert_eq!(row["price"], 30.09784);
            assert_eq!(row["spot_price"], 7.5205);
            assert_eq!(row["arch"], "x86_64");
        }
    }
}

#[test]
fn compiled_components_are_cached_by_hash_and_engine() {
    let home = TestHome::new();
    let host = host_with(&home, Limits::default());
    let loaded = installed(&host, &home, "lambda");
    let cache = host.cache_path(&loaded.manifest().sha256);
    assert!(
        cache.exists(),
        "install primes the cache: {}",
        cache.display()
    );
    assert!(cache
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .contains(host.engine_id()));
    let modified = std::fs::metadata(&cache)
        .expect("meta")
        .modified()
        .expect("mtime");
    let reg = Registry::new(home.path());
    let i = reg.get("lambda").expect("get");
    host.load(&i.manifest, &i.component())
        .expect("load from cache");
    assert_eq!(
        std::fs::metadata(&cache)
            .expect("meta")
            .modified()
            .expect("mtime"),
        modified
    );
    // A deleted cache is rebuilt.
    std::fs::remove_file(&cache).expect("rm");
    host.load(&i.manifest, &i.component())
        .expect("load and recompile");
    assert!(cache.exists());
}

#[test]
fn deadlines_are_configurable_per_call_kind() {
    let mut limits = Limits::default();
    limits
        .apply_deadlines("check=250ms, default=2s")
        .expect("spec");
    assert_eq!(limits.deadline(Op::Check), Duration::from_millis(250));
    assert_eq!(limits.deadline(Op::OpenPorts), Duration::from_secs(2));
    assert_eq!(limits.deadline(Op::Catalog), Duration::from_secs(30));
    assert!(limits
        .apply_deadlines("chekc=1s")
        .unwrap_err()
        .contains("unknown call"));
    assert!(limits
        .apply_deadlines("check=soon")
        .unwrap_err()
        .contains("not a duration"));

    // And they are applied: a 300ms check deadline stops the spinning plugin.
    let home = TestHome::new();
    home.install(&["fixture-spin"]);
    let mut cmd = home.cmd(&["provider", "call", "fixture-spin", "check"]);
    cmd.env("ALOFT_PLUGIN_DEADLINES", "check=300ms");
    let t = Instant::now();
    let run = home.output(cmd);
    assert_eq!(run.status, 1);
    assert_eq!(run.json()["error"]["kind"], "deadline");
    assert!(t.elapsed() < Duration::from_secs(5));
}
