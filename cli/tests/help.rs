//! The help of the commands whose suites do not snapshot it themselves
//! (lint, list, import and verify do): reviewed text, so a change to a
//! doc comment shows up in review.

use std::process::Command;

#[test]
fn help_snapshots() {
    for cmd in [
        "", "build", "serve", "watch", "mirror", "prune", "remove", "push", "demo",
    ] {
        let mut args: Vec<&str> = vec![];
        if !cmd.is_empty() {
            args.push(cmd);
        }
        args.push("--help");
        let out = Command::new(env!("CARGO_BIN_EXE_ssgen"))
            .args(&args)
            .env("COLUMNS", "100")
            .output()
            .expect("ssgen runs");
        assert!(out.status.success(), "{cmd} --help failed");
        let name = if cmd.is_empty() { "ssgen" } else { cmd };
        insta::assert_snapshot!(format!("{name}_help"), String::from_utf8_lossy(&out.stdout));
    }
}
