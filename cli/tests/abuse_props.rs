//! Property tests, with a fixed budget of cases, of two inputs from
//! outside that the writers act on: the file names of a multipart upload
//! (against one `ssgen serve`) and the contents of a `.withdrawn` marker
//! (against `ssgen prune`). No case may crash or hang a process, write or
//! delete outside its place, and every refusal names its input.

mod common;

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};

use common::{build, run, serve, ssgen, text, version};

const D: &str = "images/debian/12/amd64/default";

/// A runner of `cases` cases, the same ones on every run.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    TestRunner::new_with_rng(config, rng)
}

/// A path segment: plain, hostile or long.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._:~-]{1,12}",
        2 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just(String::new()),
        1 => Just(".ssgen".to_owned()),
        1 => Just("20260901_0000".to_owned()),
        1 => Just("root.tar.xz".to_owned()),
        1 => "[a-z]{250,300}",
        1 => "[ -~&&[^\"\\\\]]{1,10}",
        1 => "\\PC{1,6}".prop_filter("no quote, backslash or line break", |s| {
            !s.contains(['"', '\\', '\r', '\n'])
        }),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mostly a real product's directory, so that the checks of the
        // version and the file are reached.
        3 => (segment(), prop_oneof![3 => segment(), 1 => "[a-z]{240,300}"]).prop_map(|(v, f)| vec![
            "debian".to_owned(), "12".to_owned(), "amd64".to_owned(), "default".to_owned(), v, f
        ]),
        2 => prop::collection::vec(segment(), 6..=6),
        1 => prop::collection::vec(segment(), 1..9),
    ]
    .prop_map(|parts| parts.join("/"))
    .prop_map(|n| if n.len() % 5 == 0 { format!("/{n}") } else { n })
}

/// Every file under `dir` (relative paths), to see what a case changed.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path.clone());
            }
            out.push(
                path.strip_prefix(dir)
                    .expect("below")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    out.sort();
    out
}

#[test]
fn multipart_names_never_crash_the_server_and_refusals_name_them() {
    let tmp = tempfile::tempdir().expect("temp");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", "20260801_0000", 1);
    build(&root);
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).expect("outside");
    let mut served = serve(&root, &["--token", common::TOKEN]);
    let mut runner = runner(48);
    let result = runner.run(&name(), |name| {
        let body = tmp.path().join("form");
        let mut form = Vec::new();
        form.extend_from_slice(
            format!(
                "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{name}\"\r\n\r\nbytes\r\n--XbOuNdArY--\r\n"
            )
            .as_bytes(),
        );
        std::fs::write(&body, form).expect("form");
        let (status, answer) = served.curl(
            "images/",
            &[
                "-H",
                "Content-Type: multipart/form-data; boundary=XbOuNdArY",
                "--data-binary",
                &format!("@{}", common::s(&body)),
            ],
        );
        prop_assert!(
            [200, 201, 400, 409].contains(&status),
            "{name:?}: HTTP {status}: {answer}"
        );
        if status == 400 {
            let given = name.trim_start_matches('/');
            let shown: String = given.chars().take(60).collect();
            prop_assert!(answer.contains(&shown), "{name:?}: the refusal does not name it: {answer}");
        }
        if status == 201 {
            // What was stored is where the name says, under images/.
            let rel = format!("images/{}", name.trim_start_matches('/'));
            prop_assert!(root.join(&rel).is_file(), "{name:?}: stored elsewhere");
            prop_assert!(ssgen_core_free_check(&rel), "{name:?}: stored a path with a hidden or parent component");
        }
        prop_assert!(tree(&outside).is_empty(), "{name:?}: wrote outside the root");
        Ok(())
    });
    assert!(
        served.alive(),
        "the server died: {}",
        std::fs::read_to_string(&served.log).unwrap_or_default()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Whether a stored path has no empty, `.`, `..` or hidden component.
fn ssgen_core_free_check(rel: &str) -> bool {
    rel.split('/').all(|p| !p.is_empty() && !p.starts_with('.'))
}

/// Marker contents: well-formed ones with hostile names and times, and
/// bytes that are no marker at all.
fn marker() -> impl Strategy<Value = Vec<u8>> {
    let since = prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(1_i64),
        Just(-1_i64),
        any::<i64>(),
    ];
    let names = prop::collection::vec(
        prop_oneof![
            3 => prop::collection::vec(segment(), 1..5).prop_map(|p| p.join("/")),
            1 => Just("../../../../../../../victim".to_owned()),
            1 => Just("root.tar.xz".to_owned()),
        ],
        0..4,
    );
    prop_oneof![
        4 => (since, prop::option::of(names)).prop_map(|(since, files)| {
            match files {
                Some(f) => serde_json::json!({"since": since, "files": f}),
                None => serde_json::json!({"since": since}),
            }
            .to_string()
            .into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

#[test]
fn marker_contents_never_crash_prune_or_reach_outside_the_version() {
    let tmp = tempfile::tempdir().expect("temp");
    let template = tmp.path().join("template");
    version(&template, "debian", "12", "default", "20260701_0000", 1);
    version(&template, "debian", "12", "default", "20260801_0000", 2);
    build(&template);
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = runner(32);
    let result = runner.run(&marker(), |bytes| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = tmp.path().join(format!("case-{n}"));
        let root = dir.join("root");
        std::fs::create_dir_all(&dir).expect("case dir");
        let copied = std::process::Command::new("cp")
            .args(["-a", common::s(&template), common::s(&root)])
            .status()
            .expect("cp");
        prop_assert!(copied.success());
        std::fs::write(dir.join("victim"), b"precious").expect("victim");
        let other = root.join(format!("{D}/20260801_0000"));
        let before = tree(&other);
        let marker = root.join(format!("{D}/20260701_0000/.withdrawn"));
        std::fs::write(&marker, &bytes).expect("marker");
        let out = run(ssgen(&["prune", "--grace", "0", "--timestamp", "1785643200"]).arg(&root));
        let said = text(&out);
        prop_assert!(
            out.status.success(),
            "{:?}: {said}",
            String::from_utf8_lossy(&bytes)
        );
        prop_assert!(
            dir.join("victim").exists(),
            "{:?}: deleted outside the root",
            String::from_utf8_lossy(&bytes)
        );
        prop_assert_eq!(
            tree(&other),
            before.clone(),
            "{:?}: changed another version",
            String::from_utf8_lossy(&bytes)
        );
        prop_assert!(root.join(".ssgen/cache.json").exists(), "deleted the cache");
        if said.contains("not a valid marker") {
            prop_assert!(
                said.contains(common::s(&marker)),
                "the refusal does not name the marker: {said}"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
