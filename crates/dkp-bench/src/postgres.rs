//! PostgreSQL's server programs, for servers of a program's own (the chaos
//! harness's cluster, the tests' primary and replica): where they are, and
//! how to run them. PostgreSQL refuses to run as root, so as root they run
//! as the `postgres` user, in folders that user owns.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A server program by its path: in `DKP_PG_BIN` when set, else in the
/// newest of Debian's `/usr/lib/postgresql/<version>/bin` that has it, else
/// as the `PATH` finds it.
pub fn bin(program: &str) -> String {
    let folder = std::env::var("DKP_PG_BIN").ok().map(PathBuf::from).or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin")))
            })
            .filter(|(_, folder)| folder.join(program).exists())
            .collect();
        versions.sort();
        Some(versions.pop()?.1)
    });
    folder.map_or_else(|| program.to_owned(), |folder| folder.join(program).display().to_string())
}

/// `program` run as `postgres` when this process runs as root.
pub fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command` to its end: its output, or an error with all it printed.
pub fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Makes a new database cluster in `data` (whose parent the server's user
/// may write): trust authentication for `postgres`, UTF-8.
pub fn initdb(data: &Path) -> anyhow::Result<()> {
    run(as_postgres(&bin("initdb")).arg("-D").arg(data).args([
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    ]))?;
    Ok(())
}
