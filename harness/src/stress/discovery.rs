//! Which tests a stress run runs: cargo builds the test executables, each lists its tests, and
//! the pattern picks among them.

use regex::Regex;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What cargo builds when the user names nothing: the lab's tests (the root package's
/// integration tests, tests/lab_2*.rs).
pub const DEFAULT_CARGO_ARGS: &[&str] = &["--package", "raft-lab", "--tests"];

/// A test executable cargo built.
#[derive(Clone, Debug)]
pub struct Executable {
    /// The cargo target, e.g. `lab_2a`.
    pub target: String,
    pub path: PathBuf,
    /// The package's directory: cargo runs a test there, so the stress runner does too.
    pub cwd: PathBuf,
}

/// One test to run over and over.
#[derive(Clone, Debug)]
pub struct TestCase {
    /// The test's name as its executable knows it (what `--exact` takes).
    pub name: String,
    /// What the report calls it: the name, or `target::name` when two executables have a test
    /// of that name.
    pub label: String,
    pub exe: Executable,
}

/// Builds the test executables `cargo test --no-run CARGO_ARGS` names and returns them. Cargo's
/// diagnostics go to this process's stderr as they would from a plain `cargo test`.
pub fn build(cargo_args: &[String]) -> Result<Vec<Executable>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ])
    .args(cargo_args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    let shown = format!("cargo test --no-run {}", cargo_args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run cargo ({shown}): {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let mut executables = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        if let Some(exe) = executable(&line) {
            executables.push(exe);
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(format!("{shown} failed ({status}); its errors are above"));
    }
    if executables.is_empty() {
        return Err(format!("{shown} built no test executable"));
    }
    Ok(executables)
}

/// The fields of a cargo JSON message that name a built test executable.
#[derive(Deserialize)]
struct Artifact {
    reason: String,
    manifest_path: Option<PathBuf>,
    target: Option<Target>,
    profile: Option<Profile>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
}

#[derive(Deserialize)]
struct Profile {
    test: bool,
}

/// The test executable one line of cargo's JSON output announces, if it announces one.
fn executable(line: &str) -> Option<Executable> {
    let artifact: Artifact = serde_json::from_str(line).ok()?;
    if artifact.reason != "compiler-artifact" || !artifact.profile?.test {
        return None;
    }
    Some(Executable {
        target: artifact.target?.name,
        path: artifact.executable?,
        cwd: artifact.manifest_path?.parent()?.to_path_buf(),
    })
}

/// The names of the tests `exe` holds (`EXE --list --format terse`).
pub fn list(exe: &Executable) -> Result<Vec<String>, String> {
    let output = Command::new(&exe.path)
        .args(["--list", "--format", "terse"])
        .current_dir(&exe.cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.path.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} --list failed ({}): {}",
            exe.path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
}

/// Test names from libtest's terse listing: `NAME: test` lines (benchmarks are `NAME: bench`).
fn parse_list(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect()
}

/// The lab part a test file holds, as the lab's test names spell it: `lab_4b` → `4B`.
fn lab_part(target: &str) -> Option<String> {
    target
        .strip_prefix("lab_")
        .filter(|part| part.len() == 2)
        .map(str::to_uppercase)
}

/// Every test of `executables` whose name `pattern` matches anywhere (as Go's `-run`), or whose
/// file's name or lab part does (`membership` picks every test of `tests/membership.rs`; `4B`
/// every test of `lab_4b`: the lab 4 tests keep the Go names, which carry no part). No match is
/// an error that shows what there is.
pub fn select(executables: &[Executable], pattern: &Regex) -> Result<Vec<TestCase>, String> {
    let mut all = Vec::new();
    for exe in executables {
        for name in list(exe)? {
            all.push((exe, name));
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, name) in &all {
        *seen.entry(name).or_default() += 1;
    }
    let chosen: Vec<TestCase> = all
        .iter()
        .filter(|(exe, name)| {
            pattern.is_match(name)
                || pattern.is_match(&exe.target)
                || lab_part(&exe.target).is_some_and(|p| pattern.is_match(&p))
        })
        .map(|(exe, name)| TestCase {
            name: name.clone(),
            label: if seen[name.as_str()] > 1 {
                format!("{}::{name}", exe.target)
            } else {
                name.clone()
            },
            exe: (*exe).clone(),
        })
        .collect();
    if chosen.is_empty() {
        return Err(no_match(pattern, &all));
    }
    Ok(chosen)
}

fn no_match(pattern: &Regex, all: &[(&Executable, String)]) -> String {
    const SHOWN: usize = 40;
    let mut names: Vec<&str> = all.iter().map(|(_, name)| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let mut message = format!("no test name matches '{pattern}'; the tests are:\n  ");
    message.push_str(&names.join("\n  "));
    if more > 0 {
        message.push_str(&format!("\n  ... and {more} more"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_lab_file_names_its_part() {
        assert_eq!(lab_part("lab_4b").as_deref(), Some("4B"));
        assert_eq!(lab_part("lab_2a").as_deref(), Some("2A"));
        assert_eq!(lab_part("membership"), None);
        assert_eq!(lab_part("lab_extra"), None);
    }

    #[test]
    fn reads_test_executables_from_cargos_json() {
        let line = r#"{"reason":"compiler-artifact","package_id":"path+file:///w#raft-lab@0.1.0","manifest_path":"/w/Cargo.toml","target":{"kind":["test"],"crate_types":["bin"],"name":"lab_2a","src_path":"/w/tests/lab_2a.rs","edition":"2021","doc":false,"doctest":false,"test":true},"profile":{"opt_level":"0","debuginfo":2,"debug_assertions":true,"overflow_checks":true,"test":true},"features":[],"filenames":["/w/target/debug/deps/lab_2a-0123"],"executable":"/w/target/debug/deps/lab_2a-0123","fresh":true}"#;
        let exe = executable(line).unwrap();
        assert_eq!(exe.target, "lab_2a");
        assert_eq!(exe.path, Path::new("/w/target/debug/deps/lab_2a-0123"));
        assert_eq!(exe.cwd, Path::new("/w"));
    }

    #[test]
    fn ignores_libraries_build_scripts_and_other_messages() {
        let library = r#"{"reason":"compiler-artifact","manifest_path":"/w/h/Cargo.toml","target":{"name":"harness"},"profile":{"test":false},"executable":null}"#;
        assert!(executable(library).is_none());
        assert!(executable(r#"{"reason":"build-finished","success":true}"#).is_none());
        assert!(executable("not json").is_none());
    }

    #[test]
    fn lists_tests_not_benchmarks() {
        let listing = "TestInitialElection2A: test\nTestReElection2A: test\nfast_path: bench\n";
        assert_eq!(
            parse_list(listing),
            ["TestInitialElection2A", "TestReElection2A"]
        );
    }
}
