//! `ssgen push --to s3:// --html`: the page for people goes up after the
//! catalog it lists, with the content type and cache policy of `ssgen
//! serve`, and holds the same bytes `ssgen build --html` writes for the
//! same tree. moto's S3 emulator stands in for the stores (as in
//! `s3_push.rs`), behind the logging proxy that shows the order of writes.

use ssgen_tests::images::sample_tree;
use ssgen_tests::proc::RunDir;
use ssgen_tests::s3::{FaultProxy, Moto, push_command};
use ssgen_tests::{require_tools, run, ssgen_bin};

const T: &str = "1767225600";
const URL: &str = "https://images.example.org";

#[test]
fn push_html_uploads_the_page_after_the_catalog() {
    require_tools(&["mksquashfs", "qemu-img", "tar", "xz"]).unwrap_or_else(|e| panic!("{e:#}"));
    let run_dir = RunDir::new().expect("run dir");
    let moto = Moto::start(&run_dir, "page").unwrap_or_else(|e| panic!("starting moto: {e:#}"));
    let proxy = FaultProxy::start(moto.port()).expect("proxy");
    let home = run_dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let tree = sample_tree(&run_dir.path().join("tree")).expect("tree");
    // The reference: the page `ssgen build --html` writes for this tree.
    run(std::process::Command::new(ssgen_bin())
        .args(["build", "--timestamp", T, "--html", "--url", URL])
        .arg(&tree.root))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let local = std::fs::read(tree.root.join("index.html")).expect("local index.html");

    let push = || {
        let out = push_command(
            &home,
            &tree.root,
            "s3://page/lxd",
            &proxy.endpoint(),
            &moto.access_key,
            &moto.secret_key,
        )
        .args(["--timestamp", T, "--html", "--url", URL])
        .output()
        .expect("ssgen push");
        assert!(
            out.status.success(),
            "ssgen push --html: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    push();
    let puts: Vec<String> = proxy
        .take_log()
        .into_iter()
        .filter(|l| l.method == "PUT")
        .map(|l| l.target)
        .collect();
    let at = |key: &str| {
        puts.iter()
            .position(|t| t.ends_with(key))
            .unwrap_or_else(|| panic!("no PUT of {key}: {puts:?}"))
    };
    assert!(
        at("/lxd/streams/v1/images.json") < at("/lxd/streams/v1/index.json")
            && at("/lxd/streams/v1/index.json") < at("/lxd/index.html"),
        "not images.json, index.json, then index.html: {puts:?}"
    );
    let head = moto
        .head("lxd/index.html")
        .expect("head")
        .expect("index.html in the bucket");
    assert_eq!(head["content_type"], "text/html; charset=utf-8");
    assert_eq!(head["cache_control"], "public, max-age=60");
    let dump = run_dir.path().join("dump");
    moto.dump("lxd/", &dump).expect("dump");
    let uploaded = std::fs::read(dump.join("index.html")).expect("the uploaded page");
    assert!(
        uploaded == local,
        "the bucket's page differs from the one ssgen build --html writes"
    );

    // Nothing changed: the page is not sent again.
    push();
    let again: Vec<String> = proxy
        .take_log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.target.ends_with("index.html"))
        .map(|l| l.target)
        .collect();
    assert!(
        again.is_empty(),
        "an unchanged page was sent again: {again:?}"
    );
}
