//! Plugin host figures (printed, not asserted). Needs packed components:
//! run scripts/build-all.sh first, then `cargo bench -p aloft-plugin`.
//!
//! Prints, for the AWS component (the largest, ~46k catalog rows): cold
//! compile, load from the on-disk cache, instantiate + one catalog call, and
//! one small call on a warm instance; each the median of several runs.

use aloft_plugin::{Call, Limits, PluginHost, Registry};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let plugins = std::env::var_os("ALOFT_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/plugins"));
    let name = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "aws".into());
    let dir = plugins.join(&name);
    if !dir.join("plugin.toml").exists() {
        eprintln!(
            "no packed plugin at {}: run scripts/build-all.sh",
            dir.display()
        );
        std::process::exit(1);
    }
    let home = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let host = PluginHost::new(home.path(), Limits::default()).expect("host");
    let installed = Registry::new(home.path())
        .install(&host, &dir)
        .expect("install");
    let bytes = std::fs::read(installed.component()).expect("read");
    println!(
        "plugin {} ({} KiB component)",
        installed.manifest.label(),
        bytes.len() / 1024
    );

    let runs = 5;
    let compile: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            host.compile(&bytes, &installed.component())
                .expect("compile");
            t.elapsed()
        })
        .collect();
    println!(
        "cold compile (wasmtime, no cache)     {}",
        ms(median(compile))
    );

    let load: Vec<Duration> = (0..runs * 4)
        .map(|_| {
            let t = Instant::now();
            host.load(&installed.manifest, &installed.component())
                .expect("load");
            t.elapsed()
        })
        .collect();
    println!("load from on-disk cache               {}", ms(median(load)));

    let loaded = host
        .load(&installed.manifest, &installed.component())
        .expect("load");
    let (inst, first) = rt.block_on(async {
        let mut inst = Vec::new();
        let mut first = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let mut s = loaded.session().await.expect("instantiate");
            inst.push(t.elapsed());
            if let Ok(aloft_plugin::Reply::Catalog(c)) = s.call(Call::Catalog).await {
                rows = c.offerings.len();
            }
            first.push(t.elapsed());
        }
        println!("catalog rows                          {rows}");
        (inst, first)
    });
    println!("instantiate                           {}", ms(median(inst)));
    println!(
        "instantiate + one catalog call        {}",
        ms(median(first))
    );

    let warm = rt.block_on(async {
        let mut s = loaded.session().await.expect("instantiate");
        let _ = s.call(Call::Check).await;
        let mut v = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let _ = s.call(Call::Check).await; // small: answers from secrets
            v.push(t.elapsed());
        }
        v
    });
    println!("small call (check) on a warm instance {}", ms(median(warm)));
}
