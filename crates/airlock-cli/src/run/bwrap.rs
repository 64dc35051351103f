//! bubblewrap's spellings, so that a bwrap command line ports by renaming
//! the program: the ones that mean what airlock can do are accepted (some
//! are no-ops because airlock already does it by default), and the ones
//! airlock has no feature for are refused by name with the reason,
//! instead of being taken for the program.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

const HEADING: &str = "bubblewrap spellings";

/// Flags bubblewrap has that map onto airlock's spec.
#[derive(Args, Default)]
pub struct BwrapArgs {
    /// Like --bind, but nothing happens when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) bind_try: Vec<String>,
    /// Like --ro-bind, but nothing happens when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) ro_bind_try: Vec<String>,
    /// Like --dev-bind, but nothing happens when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) dev_bind_try: Vec<String>,
    /// Write the text read from file descriptor FD into the file DST (made
    /// if missing; its directory must be writable).
    #[arg(long, num_args = 2, value_names = ["FD", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) file: Vec<String>,
    /// Bind a file of its own with the text read from FD over DST (made if
    /// missing): DST itself is not written, so a read-only /etc's passwd
    /// can be replaced.
    #[arg(long, num_args = 2, value_names = ["FD", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) bind_data: Vec<String>,
    /// Like --bind-data, and DST is read-only in the sandbox.
    #[arg(long, num_args = 2, value_names = ["FD", "DST"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) ro_bind_data: Vec<String>,
    /// The mode of the next --tmpfs, --dir, --file, --bind-data or
    /// --ro-bind-data (a --dir or --file already there keeps its own).
    #[arg(long, value_name = "OCTAL", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) perms: Vec<String>,
    /// The size limit of the next --tmpfs.
    #[arg(long, value_name = "SIZE", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) size: Vec<String>,
    /// Make the mount at DEST (made by an earlier flag) read-only, not the
    /// mounts below it; `/`: the root, once assembled.
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) remount_ro: Vec<String>,
    /// Install the compiled BPF program read from FD as a seccomp filter,
    /// the last step before the exec, after airlock's own (filters stack:
    /// it can only refuse more).
    #[arg(long = "add-seccomp-fd", value_name = "FD", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) add_seccomp_fd: Vec<i32>,
    /// Like --add-seccomp-fd: airlock's own filter stays (--seccomp-profile
    /// none, acknowledged, leaves only this one).
    #[arg(long = "seccomp", value_name = "FD", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) seccomp_fd: Vec<i32>,
    /// Hold a read lock on the file DEST in the sandbox while it runs (a
    /// process outside that cannot take a write lock knows it runs).
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) lock_file: Vec<String>,
    /// A layer of the overlay the next --tmp-overlay or --ro-overlay makes
    /// (the first given is the bottom one); judged as a read-only bind.
    #[arg(long, value_name = "SRC", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) overlay_src: Vec<String>,
    /// An overlay of the --overlay-src layers before it at DEST, whose
    /// writes go to a tmpfs that vanishes with the sandbox.
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) tmp_overlay: Vec<String>,
    /// A read-only overlay of the --overlay-src layers before it (two at
    /// least) at DEST.
    #[arg(long, value_name = "DEST", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) ro_overlay: Vec<String>,
    /// bubblewrap's `--overlay RWSRC WORKDIR DEST` right after
    /// --overlay-src, which the command line is rewritten to
    /// (`overlay_after_layers`) to tell it from airlock's own --overlay.
    #[arg(long, num_args = 3, value_names = ["RWSRC", "WORKDIR", "DEST"], action = ArgAction::Append, hide = true)]
    pub(crate) bwrap_overlay: Vec<String>,
    /// Set the mode of PATH, which an earlier --dir, --tmpfs or --file made.
    #[arg(long, num_args = 2, value_names = ["OCTAL", "PATH"], action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) chmod: Vec<String>,
    /// Read more arguments from FD, separated by NUL bytes (they go where
    /// --args stood).
    #[arg(long, value_name = "FD", action = ArgAction::Append, help_heading = HEADING)]
    pub args: Vec<i32>,
    /// Kill the sandbox when the process that started airlock dies (not
    /// with -d, --name or --rm, whose sandboxes are meant to be managed).
    #[arg(long, conflicts_with_all = ["detach", "name", "rm"], help_heading = HEADING, overrides_with = "die_with_parent")]
    pub(crate) die_with_parent: bool,
    /// Run the program with VALUE as its argv[0] (a multi-call binary picks
    /// its applet by it, a login shell starts with `-`).
    #[arg(long, value_name = "VALUE", allow_hyphen_values = true, help_heading = HEADING)]
    pub(crate) argv0: Option<String>,
    /// Drop a capability --cap-add kept (all others are dropped already).
    #[arg(long, value_name = "CAP", action = ArgAction::Append, help_heading = HEADING)]
    pub(crate) cap_drop: Vec<String>,
    /// Write a JSON object to FD once the sandbox is set up: its PID 1's
    /// pid on the host ("child-pid") and its namespaces' ids.
    #[arg(long, value_name = "FD", conflicts_with_all = ["detach", "name", "rm"], help_heading = HEADING)]
    pub(crate) info_fd: Option<i32>,
    /// Write JSON lines to FD: --info-fd's object, then {"exit-code": N}
    /// when the workload has ended.
    #[arg(long, value_name = "FD", conflicts_with_all = ["detach", "name", "rm"], help_heading = HEADING)]
    pub(crate) json_status_fd: Option<i32>,
    /// Hold FD open until the sandbox has ended and been cleaned up (the
    /// supervisor holds it; nothing in the sandbox does).
    #[arg(long, value_name = "FD", conflicts_with_all = ["detach", "name", "rm"], help_heading = HEADING)]
    pub(crate) sync_fd: Option<i32>,
    /// Once PID 1 exists in the sandbox's namespaces, in its cgroups and
    /// with its id maps (and --info-fd is written), wait for a byte or the
    /// end of FD before the mounts and the program.
    #[arg(long, value_name = "FD", conflicts_with_all = ["detach", "name", "rm"], help_heading = HEADING)]
    pub(crate) block_fd: Option<i32>,
    /// What airlock does by default (as are --unshare-{user,ipc,pid,net,
    /// uts,cgroup}[-try] and --new-session): each takes back a --share-*
    /// of its kinds (or --keep-session) given before it, or a spec
    /// file's, as the last word does in bubblewrap (whose --unshare-all
    /// has no time namespace: --share-time stays).
    #[arg(long, action = ArgAction::Count, help_heading = HEADING)]
    pub(crate) unshare_all: u8,
    #[arg(long, alias = "unshare-user-try", action = ArgAction::Count, hide = true)]
    pub(crate) unshare_user: u8,
    #[arg(long, action = ArgAction::Count, hide = true)]
    pub(crate) unshare_ipc: u8,
    #[arg(long, action = ArgAction::Count, hide = true)]
    pub(crate) unshare_pid: u8,
    #[arg(long, action = ArgAction::Count, hide = true)]
    pub(crate) unshare_net: u8,
    #[arg(long, action = ArgAction::Count, hide = true)]
    pub(crate) unshare_uts: u8,
    #[arg(long, alias = "unshare-cgroup-try", action = ArgAction::Count, hide = true)]
    pub(crate) unshare_cgroup: u8,
    #[arg(long, action = ArgAction::Count, hide = true)]
    pub(crate) new_session: u8,
    #[command(flatten)]
    pub(crate) refused: Refused,
}

/// bubblewrap flags airlock has no feature for: (flag, number of values,
/// why it is refused and what to use instead).
pub const REFUSED: &[(&str, usize, &str)] = &[
    ("level-prefix", 0, "airlock's messages have no syslog level prefix"),
    ("userns", 1, "joining an existing user namespace is not supported: airlock makes the sandbox's own and writes its id maps (identity.uid_map, --uid)"),
    ("userns2", 1, "switching user namespace after setup is not supported"),
    ("pidns", 1, "joining a PID namespace by file descriptor is not supported (join one by path: --join pid=PATH)"),
    ("exec-label", 1, "SELinux labels are not supported"),
    ("file-label", 1, "SELinux labels are not supported"),
    ("bind-fd", 2, "binding an open directory by file descriptor is not supported: bind its path (--bind SRC DEST)"),
    ("ro-bind-fd", 2, "binding an open directory by file descriptor is not supported: bind its path (--ro-bind SRC DEST)"),
    ("userns-block-fd", 1, "airlock writes the user namespace's id maps itself (identity.uid_map, --uid), so there is nothing to wait for before them: --block-fd waits before the program runs"),
];

/// Which refused flags were given.
#[derive(Default)]
pub struct Refused(pub Vec<&'static str>);

impl FromArgMatches for Refused {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let given = REFUSED
            .iter()
            .filter(|(flag, _, _)| m.value_source(flag) == Some(ValueSource::CommandLine))
            .map(|(flag, _, _)| *flag)
            .collect();
        Ok(Refused(given))
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl Args for Refused {
    fn augment_args(mut cmd: Command) -> Command {
        // Hidden: they are in the README's "Coming from bubblewrap"
        // section; parsing them only serves to refuse them by name.
        for (flag, n, _) in REFUSED {
            let arg = Arg::new(*flag).long(*flag).hide(true);
            cmd = cmd.arg(if *n == 0 {
                arg.action(ArgAction::Count)
            } else {
                arg.num_args(*n).action(ArgAction::Append)
            });
        }
        cmd
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl Refused {
    /// The first refused flag given, as the error airlock reports.
    pub fn error(&self) -> Option<String> {
        let flag = self.0.first()?;
        let (_, _, why) = REFUSED.iter().find(|(f, _, _)| f == flag)?;
        Some(format!("--{flag} (bubblewrap) is not supported: {why}"))
    }
}

/// The mode bwrap's --perms and --chmod take (octal, as bwrap reads it).
pub fn octal_mode(flag: &str, s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{flag} {s}: not an octal file mode (such as 0755)"))
}

/// Read, from where it stands, and close a file descriptor the caller
/// handed to airlock (not one of airlock's own, which are all
/// close-on-exec), as bubblewrap reads and closes its own; at most
/// `limit` bytes. Stdio (`stdio` true: 0 to 2 may be given) is read and
/// left open: it is the workload's too.
pub fn read_handed_fd(fd: i32, limit: u64, stdio: bool) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    if fd < 0 || (fd < 3 && !stdio) {
        return Err("must be 3 or above (0 to 2 are the workload's stdio)".into());
    }
    // SAFETY: F_GETFD only reads the flags of an fd we may not own.
    match unsafe { libc::fcntl(fd, libc::F_GETFD) } {
        -1 => return Err("not an open file descriptor (given twice?)".into()),
        flags if flags & libc::FD_CLOEXEC != 0 => {
            return Err("not a file descriptor handed to airlock".into())
        }
        _ => {}
    }
    // SAFETY: checked open above, handed to airlock to be read; owned
    // (and closed) from here, unless it is stdio.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    let read = (&file).take(limit).read_to_end(&mut bytes);
    if fd < 3 {
        std::mem::forget(file);
    }
    read.map_err(|e| airlock::report::describe(&e))?;
    Ok(bytes)
}

/// What `--file`, `--bind-data` and `--args` read at most: far more than
/// a text file or an argument list needs.
const FD_LIMIT: u64 = 64 << 20;

/// What a flag's FD (`fd`, as given) holds, up to [`FD_LIMIT`]; errors
/// begin with `given`, the flag as the command line had it.
fn read_given_fd(given: &str, fd: &str) -> Result<Vec<u8>, String> {
    let n: i32 = fd
        .parse()
        .map_err(|_| format!("{given}: {fd:?} is not a file descriptor number"))?;
    if n == 0 {
        crate::spec_file::take_stdin(given).map_err(|e| format!("{given}: {e}"))?;
    }
    let bytes = read_handed_fd(n, FD_LIMIT + 1, true)
        .map_err(|e| format!("{given}: file descriptor {n}: {e}"))?;
    if bytes.len() as u64 > FD_LIMIT {
        return Err(format!("{given}: more than {FD_LIMIT} bytes"));
    }
    Ok(bytes)
}

/// The text a bwrap-style `--file FD DST` reads from FD.
pub fn read_fd(flag: &str, fd: &str, dst: &str) -> Result<String, String> {
    let bytes = read_given_fd(&format!("{flag} {fd} {dst}"), fd)?;
    String::from_utf8(bytes).map_err(|_| {
        format!(
            "{flag} {fd} {dst}: the content is not UTF-8 text (airlock's file mounts hold text)"
        )
    })
}

/// bubblewrap's `--overlay RWSRC WORKDIR DEST`: `argv` with each
/// `--overlay` that follows an `--overlay-src SRC` made `--bwrap-overlay`,
/// when the parse `m` took one as airlock's --overlay flag (a writable
/// layer over --rootfs, which takes no value), which then took RWSRC for
/// the program: only before the program, whose own arguments are its own.
/// The caller parses again, as long as something changes: a second one
/// was in the first one's program. `None` when there is nothing to change.
pub fn overlay_after_layers(
    argv: &[std::ffi::OsString],
    m: &ArgMatches,
) -> Option<Vec<std::ffi::OsString>> {
    let (_, sub) = m
        .subcommand()
        .filter(|(n, _)| *n == "run" || *n == "create")?;
    if !sub.get_flag("overlay") || sub.get_many::<String>("overlay_src").is_none() {
        return None;
    }
    // The program and its arguments are the rest of the line.
    let program = argv.len() - sub.get_many::<String>("command").map_or(0, |v| v.len());
    let mut out = argv.to_vec();
    let mut changed = false;
    for i in 1..program {
        let after_src = argv[i - 1].to_string_lossy().starts_with("--overlay-src=")
            || (i >= 2 && argv[i - 2] == "--overlay-src");
        if argv[i] == "--overlay" && after_src {
            out[i] = "--bwrap-overlay".into();
            changed = true;
        }
    }
    changed.then_some(out)
}

/// The arguments in `argv` with the first `count` `--args FD` (the ones
/// the parser took as airlock's: they all come before the program)
/// replaced by the NUL-separated arguments FD holds, as bwrap does.
pub fn expand_args(
    argv: &[std::ffi::OsString],
    count: usize,
) -> Result<Vec<std::ffi::OsString>, String> {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(argv.len());
    let mut left = count;
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].to_string_lossy();
        let fd = match arg.strip_prefix("--args") {
            Some("") if left > 0 && i + 1 < argv.len() => {
                i += 1;
                argv[i].to_string_lossy().into_owned()
            }
            Some(v) if left > 0 && v.starts_with('=') => v[1..].to_string(),
            _ => {
                out.push(argv[i].clone());
                i += 1;
                continue;
            }
        };
        left -= 1;
        i += 1;
        let bytes = read_given_fd(&format!("--args {fd}"), &fd)?;
        // Each argument ends with a NUL; an empty one is an argument too.
        let body = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
        if !body.is_empty() {
            out.extend(
                body.split(|b| *b == 0)
                    .map(|a| std::ffi::OsString::from_vec(a.to_vec())),
            );
        }
    }
    if left > 0 {
        return Err("--args: cannot find the --args given in the command line".into());
    }
    Ok(out)
}
