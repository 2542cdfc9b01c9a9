//! Processes and ports for end-to-end tests: [`free_port`], and [`spawn_binary`], which runs
//! a workspace binary (`voltline-edge`, `voltline-cloud`, `voltline-sim`, `voltline`) as a
//! child process that is killed when its [`ChildGuard`] drops.
//!
//! **Finding the binary.** `env!("CARGO_BIN_EXE_<name>")` exists only for binaries of the
//! test's own package, and these binaries live in other packages. So [`workspace_bin`] looks
//! next to the running test executable: cargo puts test executables in
//! `<target>/<profile>/deps/` and binaries in `<target>/<profile>/`, whatever
//! `CARGO_TARGET_DIR` says, so the parent of the test's directory is the binaries' directory
//! for the same profile. `VOLTLINE_BIN_DIR` overrides the directory. When the binary is not
//! there, [`spawn_binary`] builds it once per test process with the cargo that runs the test
//! (`$CARGO build -p <package> --bin <name>`, the same profile and target directory; it waits
//! for the target-dir lock like any build) — no extra crate (`escargot`) needed. Build the
//! binaries beforehand (`cargo build -p voltline-edge --bin voltline-edge`) to skip that.
//!
//! Children's stdout and stderr go to a log file in a temporary directory owned by the guard
//! ([`ChildGuard::log`] reads it, e.g. for an assertion message). It must never leave a child
//! running: the guard kills (SIGKILL) and reaps it on drop.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a binary's build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it in
/// between, which is why listeners that can bind port 0 should).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface has a free port")
}

/// Where the workspace binaries of this build live.
pub fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("VOLTLINE_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let deps = exe.parent().ok_or_else(|| not_found(&exe))?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().ok_or_else(|| not_found(deps))?
    } else {
        deps
    };
    Ok(dir.to_owned())
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("cannot tell the target directory from {}", p.display()),
    )
}

/// The path of workspace binary `name` in this build (it may not exist yet).
pub fn workspace_bin(name: &str) -> io::Result<PathBuf> {
    Ok(bin_dir()?.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// The package that builds binary `name` (every Voltline binary is named after its package).
fn package_of(name: &str) -> &str {
    name
}

/// Builds `name` with the cargo running this test, once per process (a no-op build when it
/// is up to date, so a test never runs a stale binary). With `VOLTLINE_NO_BUILD` set, an
/// existing binary is used as it is.
pub fn ensure_binary(name: &str) -> io::Result<PathBuf> {
    static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let path = workspace_bin(name)?;
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    let skip = std::env::var_os("VOLTLINE_NO_BUILD").is_some() && path.exists();
    if !skip && !built.contains(name) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package_of(name), "--bin", name]);
        if bin_dir()?.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let mut build = cmd.spawn()?;
        let deadline = Instant::now() + BUILD_TIMEOUT;
        let status = loop {
            if let Some(status) = build.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = build.kill();
                let _ = build.wait();
                return Err(io::Error::other(format!(
                    "building {name} took over {BUILD_TIMEOUT:?}; build it beforehand"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !status.success() {
            return Err(io::Error::other(format!(
                "`cargo build -p {} --bin {name}` failed ({status}); build it by hand to see why",
                package_of(name)
            )));
        }
        built.insert(name.to_owned());
    }
    if !path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} does not exist; build it, or set VOLTLINE_BIN_DIR to the directory holding it",
                path.display()
            ),
        ));
    }
    Ok(path)
}

/// A child process, killed and reaped when dropped.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs workspace binary `name` with `args` and extra environment `env` (built first if
/// missing, see the module doc).
pub fn spawn_binary(name: &str, args: &[&str], env: &[(&str, &str)]) -> io::Result<ChildGuard> {
    let path = ensure_binary(name)?;
    let dir = tempfile::tempdir()?;
    let log = dir.path().join(format!("{name}.log"));
    let out = File::create(&log)?;
    let err = out.try_clone()?;
    let child = Command::new(&path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()?;
    Ok(ChildGuard {
        name: name.to_owned(),
        child: Some(child),
        log,
        _dir: dir,
    })
}

impl ChildGuard {
    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the child wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// `Some(status)` once the child has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    /// Kills the child at once (SIGKILL: a crash, no clean-up) and reaps it.
    pub fn kill(&mut self) -> io::Result<Option<ExitStatus>> {
        let Some(mut c) = self.child.take() else {
            return Ok(None);
        };
        let _ = c.kill();
        c.wait().map(Some)
    }

    /// Asks the child to stop (SIGTERM, through the `kill` utility: std has no signals) and
    /// waits up to `grace`; kills it if it is still running then.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(c) = self.child.as_mut() else {
            return Ok(None);
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait()? {
                self.child = None;
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(name = %self.name, "child did not stop within its grace; killing it");
        self.kill()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
