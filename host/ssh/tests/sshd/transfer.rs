//! upload and sync_dir: only changes are sent, ignore files honoured,
//! modes, mtimes and symlinks kept.

use super::{pair, sh};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mtime(path: &Path) -> i64 {
    std::fs::metadata(path).unwrap().mtime()
}

#[tokio::test]
async fn upload_keeps_or_sets_the_mode_and_creates_parents() {
    let (_c, _h, s) = pair(5, "aloft-node2").await;
    sh(&s, "rm -rf ~/up").await;
    let local = tempfile::tempdir().unwrap();
    let script = local.path().join("run.sh");
    write(&script, "#!/bin/sh\necho hi\n", 0o755);

    s.upload(&script, "~/up/one/run.sh", None).await.unwrap();
    let got = sh(&s, "stat -c '%a %s %Y' ~/up/one/run.sh; ~/up/one/run.sh").await;
    assert_eq!(got, format!("755 18 {}\nhi\n", mtime(&script)));

    // A trailing slash keeps the local name; an explicit mode wins.
    s.upload(&script, "~/up/two/", Some(0o600)).await.unwrap();
    assert_eq!(sh(&s, "stat -c %a ~/up/two/run.sh").await, "600\n");

    // A file bigger than any window or chunk arrives intact.
    let big = local.path().join("big.bin");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    s.upload(&big, "~/up/big.bin", None).await.unwrap();
    let local_sum = std::process::Command::new("cksum")
        .arg(&big)
        .output()
        .unwrap();
    let local_sum = String::from_utf8_lossy(&local_sum.stdout);
    let remote_sum = sh(&s, "cd ~/up && cksum big.bin").await;
    assert_eq!(
        remote_sum.split_whitespace().take(2).collect::<Vec<_>>(),
        local_sum.split_whitespace().take(2).collect::<Vec<_>>()
    );

    // A directory is not a file; the error names it.
    let e = s
        .upload(local.path(), "~/up/x", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

#[tokio::test]
async fn sync_dir_sends_only_changes_and_honours_ignore_files() {
    let (_c, h, s) = pair(6, "aloft-node2").await;
    sh(&s, "rm -rf ~/work ~/work2").await;
    let src = tempfile::tempdir().unwrap();
    let p = src.path();
    write(&p.join("a.py"), "print(1)\n", 0o644);
    write(&p.join("run.sh"), "#!/bin/sh\n", 0o755);
    write(&p.join("odd name 'q' $x.txt"), "odd\n", 0o640);
    write(&p.join("sub/deep/x.txt"), "deep\n", 0o644);
    write(&p.join("data/big.bin"), "ignored by .gitignore\n", 0o644);
    write(&p.join("secret.env"), "ignored by .skyignore\n", 0o600);
    write(&p.join(".gitignore"), "data/\n", 0o644);
    write(&p.join(".skyignore"), "*.env\n", 0o644);
    write(&p.join(".git/HEAD"), "ref: refs/heads/main\n", 0o644);
    std::os::unix::fs::symlink("a.py", p.join("link.py")).unwrap();
    std::fs::create_dir(p.join("empty")).unwrap();

    let st = s.sync_dir(p, "~/work").await.unwrap();
    // a.py run.sh odd x.txt .gitignore .skyignore + the symlink
    assert_eq!((st.copied, st.unchanged), (7, 0), "{st:?}");
    assert!(st.bytes > 0);

    let listing = sh(
        &s,
        "cd ~/work && find . -mindepth 1 -printf '%y %m %P\\n' | LC_ALL=C sort",
    )
    .await;
    assert_eq!(
        listing,
        "d 755 empty\n\
         d 755 sub\n\
         d 755 sub/deep\n\
         f 640 odd name 'q' $x.txt\n\
         f 644 .gitignore\n\
         f 644 .skyignore\n\
         f 644 a.py\n\
         f 644 sub/deep/x.txt\n\
         f 755 run.sh\n\
         l 777 link.py\n",
        "{}",
        h.log()
    );
    assert_eq!(sh(&s, "readlink ~/work/link.py").await, "a.py\n");
    assert_eq!(
        sh(&s, "stat -c %Y ~/work/sub/deep/x.txt").await.trim(),
        mtime(&p.join("sub/deep/x.txt")).to_string()
    );
    assert_eq!(sh(&s, "stat -c %U ~/work/a.py").await, "aloft-node2\n");

    // Nothing changed: nothing sent.
    let st = s.sync_dir(p, "~/work").await.unwrap();
    assert_eq!((st.copied, st.unchanged, st.bytes), (0, 7, 0));

    // New content, a new mode, a retargeted link: those three are sent.
    write(&p.join("a.py"), "print(2)\n", 0o644);
    let later = SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(p.join("a.py"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    std::fs::set_permissions(
        p.join("sub/deep/x.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::remove_file(p.join("link.py")).unwrap();
    std::os::unix::fs::symlink("run.sh", p.join("link.py")).unwrap();
    // Files that exist only on the host are left alone.
    sh(&s, "echo keep > ~/work/outputs.log").await;
    let st = s.sync_dir(p, "~/work").await.unwrap();
    assert_eq!((st.copied, st.unchanged), (3, 4), "{st:?}");
    assert_eq!(sh(&s, "cat ~/work/a.py").await, "print(2)\n");
    assert_eq!(sh(&s, "stat -c %a ~/work/sub/deep/x.txt").await, "600\n");
    assert_eq!(sh(&s, "readlink ~/work/link.py").await, "run.sh\n");
    assert_eq!(sh(&s, "cat ~/work/outputs.log").await, "keep\n");

    // An absolute remote path works as well as ~.
    let abs = format!("{}/work2", h.home().display());
    let st = s.sync_dir(p, &abs).await.unwrap();
    assert_eq!(st.copied, 7);
}
