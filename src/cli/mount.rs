//! `valfs mount`: its arguments, the `-o` option lists that mount(8), fstab and `valfs mount -o`
//! give, and mount(8)'s own form, resolved into one [`MountConfig`]: what the filesystem mounts.

use super::{Cli, CliError};
use crate::fs::MountConfig;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The arguments of `valfs mount`.
#[derive(Args, Debug)]
pub struct MountArgs {
    pub mountpoint: PathBuf,
    /// Return once the mount is usable, leaving the daemon running.
    #[arg(long)]
    pub daemon: bool,
    /// Also treat names matching GLOB as scratch files (repeatable).
    #[arg(long = "scratch", value_name = "GLOB")]
    pub scratch: Vec<String>,
    /// Batch commit points that come within MS of quiet into one commit.
    #[arg(long, value_name = "MS")]
    pub coalesce: Option<u64>,
    /// Sync with the store's remotes every SECONDS and soon after local saves (saves never
    /// wait for the network; at unmount, one last sync).
    #[arg(long, value_name = "SECONDS")]
    pub sync: Option<u64>,
    /// Refuse every change.
    #[arg(long)]
    pub read_only: bool,
    /// Owner of every entry, new ones included (default: the mounting user, and with
    /// --allow-other the user who creates an entry); chown still changes one.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Group of every entry, new ones included (as --uid).
    #[arg(long)]
    pub gid: Option<u32>,
    /// Permission bits to clear, in octal (default: the process umask).
    #[arg(long, value_parser = parse_octal)]
    pub umask: Option<u16>,
    /// Let other users in (their access is checked against the modes shown).
    #[arg(long)]
    pub allow_other: bool,
    /// Mount options as for mount(8), comma-separated (repeatable): ro, rw, allow_other,
    /// adopt (as --adopt), branch=NAME, uid=N, gid=N, umask=OCTAL, coalesce=MS, sync=SECONDS, scratch=GLOB, and the generic
    /// flags (noexec, nosuid, nodev, noatime, ...); noauto, user, nofail, _netdev and
    /// x-* are for mount(8) and ignored.
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
}

/// The period of `--sync SECONDS` (at least a second).
fn sync_every(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

fn parse_octal(s: &str) -> Result<u16, String> {
    u16::from_str_radix(s, 8).map_err(|e| format!("{s}: not an octal mode ({e})"))
}

impl Cli {
    /// What `valfs mount` with these arguments mounts: the flags, then each `-o` list in turn
    /// (later options win). `--daemon` detaches a child that runs this command line again
    /// without it.
    pub fn mount_config(&self, args: &MountArgs) -> Result<MountConfig, CliError> {
        let mut c = MountConfig::new(self.repo_path(), &self.branch, args.mountpoint.clone());
        c.create = self.repo.is_none();
        c.adopt = self.adopt;
        c.read_only = args.read_only;
        c.allow_other = args.allow_other;
        c.uid = args.uid;
        c.gid = args.gid;
        c.umask = args.umask;
        c.coalesce = args.coalesce.map(Duration::from_millis);
        c.sync = args.sync.map(sync_every);
        c.scratch = args.scratch.clone();
        for list in &args.options {
            apply(&mut c, list).map_err(CliError::Message)?;
        }
        if args.daemon {
            c.detach = Some(
                self.args
                    .iter()
                    .filter(|a| a.as_os_str() != "--daemon")
                    .cloned()
                    .collect(),
            );
        }
        Ok(c)
    }
}

/// Options that mean something to mount(8), fstab or mount.fuse3 only; a filesystem started by
/// them may still see them and ignores them.
const IGNORED: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "relatime",
    "norelatime",
    "strictatime",
    "lazytime",
    "nolazytime",
    "silent",
    "loud",
    "default_permissions",
];

/// Generic flags handed to the kernel with the mount.
const KERNEL_FLAGS: &[&str] = &[
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "sync", "async",
    "dirsync",
];

/// Applies one comma-separated option list (`ro,branch=prod,coalesce=500`). Later options
/// win; an option valfs does not know is an error naming it.
fn apply(c: &mut MountConfig, list: &str) -> Result<(), String> {
    for opt in list.split(',') {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match (key, value) {
            ("", None) => {}
            ("ro", None) => c.read_only = true,
            ("rw", None) => c.read_only = false,
            ("allow_other", None) => c.allow_other = true,
            ("adopt", None) => c.adopt = true,
            ("branch", Some(b)) if !b.is_empty() => c.branch = b.to_owned(),
            ("uid", Some(v)) => c.uid = Some(number(opt, v)?),
            ("gid", Some(v)) => c.gid = Some(number(opt, v)?),
            ("umask", Some(v)) => {
                c.umask = Some(
                    u16::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| format!("{opt}: not an octal mode"))?,
                )
            }
            ("coalesce", Some(v)) => {
                c.coalesce = Some(Duration::from_millis(number(opt, v)?.into()))
            }
            ("sync", Some(v)) => c.sync = Some(sync_every(number(opt, v)?.into())),
            ("scratch", Some(g)) if !g.is_empty() => c.scratch.push(g.to_owned()),
            (k, None) if KERNEL_FLAGS.contains(&k) => {
                c.kernel_flags.retain(|f| f != k);
                c.kernel_flags.push(k.to_owned())
            }
            (k, None) if IGNORED.contains(&k) => {}
            // mount(8) adds `user=NAME` for a user's mount; fsname and subtype are ours.
            ("user" | "comment" | "fsname" | "subtype", Some(_)) => {}
            (k, _) if k.starts_with("x-") => {}
            ("allow_root" | "auto_unmount", None) => {
                return Err(format!("mount option {opt} is not supported by valfs"));
            }
            _ => return Err(format!("unknown mount option {opt:?}")),
        }
    }
    Ok(())
}

fn number(opt: &str, v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| format!("{opt}: not a number"))
}

/// The command line for this program's arguments (without the program name), translating
/// the form mount(8) uses through fuse3's mount.fuse3, `SOURCE MOUNTPOINT [-o OPTIONS]`, into
/// `--store SOURCE mount --daemon MOUNTPOINT -o OPTIONS` (`--repo SOURCE` when SOURCE has a
/// `/`). `-f` keeps that mount in the foreground. Says whether it was that form.
pub(super) fn helper_args(args: Vec<OsString>) -> (Vec<OsString>, bool) {
    use clap::CommandFactory;
    let Some(first) = args.first().map(|a| a.to_string_lossy().into_owned()) else {
        return (args, false);
    };
    let is_subcommand = Cli::command()
        .get_subcommands()
        .any(|c| c.get_name() == first || c.get_all_aliases().any(|a| a == first))
        || first == "help";
    if is_subcommand
        || first.starts_with('-')
        || args.len() < 2
        || args[1].to_string_lossy().starts_with('-')
    {
        return (args, false);
    }
    let source = &args[0];
    let mut out: Vec<OsString> = Vec::new();
    if source.to_string_lossy().contains('/') {
        out.push("--repo".into());
    } else {
        out.push("--store".into());
    }
    out.push(source.clone());
    out.push("mount".into());
    let mut rest = Vec::new();
    let mut daemon = true;
    let mut it = args[2..].iter();
    while let Some(a) = it.next() {
        if a == "-f" {
            daemon = false;
        } else if a == "-o" {
            rest.push(a.clone());
            if let Some(v) = it.next() {
                rest.push(v.clone());
            }
        } else {
            // Anything else is left for clap to refuse with a message.
            rest.push(a.clone());
        }
    }
    if daemon {
        out.push("--daemon".into());
    }
    out.extend(rest);
    out.push("--".into());
    out.push(args[1].clone());
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::super::Command;
    use super::*;

    fn parse(list: &str) -> Result<MountConfig, String> {
        let mut c = MountConfig::new("r.git".into(), "main", "m".into());
        apply(&mut c, list).map(|()| c)
    }

    #[test]
    fn fstab_options_are_understood_or_ignored() {
        let o = parse("rw,noauto,user,users,nofail,_netdev,x-systemd.automount,user=joe,dev,suid")
            .unwrap();
        assert!(!o.read_only);
        assert_eq!(o.kernel_flags, ["dev", "suid"]);
        let o = parse("ro,allow_other,branch=prod,uid=1000,gid=100,umask=027,coalesce=500,sync=30")
            .unwrap();
        assert!(o.read_only && o.allow_other);
        assert_eq!(o.branch, "prod");
        assert_eq!((o.uid, o.gid, o.umask), (Some(1000), Some(100), Some(0o27)));
        assert_eq!(o.coalesce, Some(Duration::from_millis(500)));
        assert_eq!(o.sync, Some(Duration::from_secs(30)));
        assert!(!parse("ro,rw").unwrap().read_only);
        assert!(parse("adopt").unwrap().adopt && !parse("ro").unwrap().adopt);
    }

    #[test]
    fn unknown_or_bad_options_are_named() {
        assert_eq!(
            parse("frobnicate").unwrap_err(),
            "unknown mount option \"frobnicate\""
        );
        assert!(parse("uid=joe").unwrap_err().contains("uid=joe"));
        assert!(parse("umask=999").unwrap_err().contains("umask=999"));
        assert!(parse("branch=").unwrap_err().contains("branch="));
        assert!(parse("allow_root").unwrap_err().contains("allow_root"));
    }

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    fn mount_config(line: &str) -> Result<MountConfig, CliError> {
        use clap::Parser;
        let mut cli = Cli::parse_from(std::iter::once("valfs".into()).chain(args(line)));
        cli.args = args(line);
        let Command::Mount(m) = &cli.command else {
            panic!("not a mount: {line}");
        };
        cli.mount_config(m)
    }

    #[test]
    fn the_flags_then_each_option_list_make_the_mount_config() {
        let line = "--store notes --branch dev mount --daemon --uid 5 --coalesce 200 -o ro,branch=prod -o noexec,rw /mnt/n";
        let c = mount_config(line).unwrap();
        assert_eq!(c.repo, crate::store::named_store("notes"));
        assert!(c.create && !c.adopt);
        assert_eq!(c.branch, "prod");
        assert_eq!(c.mountpoint, PathBuf::from("/mnt/n"));
        assert!(!c.read_only, "the later rw wins");
        assert_eq!((c.uid, c.gid, c.umask), (Some(5), None, None));
        assert_eq!(c.coalesce, Some(Duration::from_millis(200)));
        assert_eq!(c.kernel_flags, ["noexec"]);
        let again = args(&line.replace("--daemon ", ""));
        assert_eq!(
            c.detach,
            Some(again),
            "the daemon runs the same mount in the foreground"
        );

        let c = mount_config("--repo /srv/v.git --adopt mount --read-only /mnt/v").unwrap();
        assert_eq!(c.repo, PathBuf::from("/srv/v.git"));
        assert!(!c.create && c.adopt && c.read_only);
        assert_eq!((c.branch.as_str(), c.detach), ("main", None));

        let e = mount_config("mount -o frobnicate /mnt/n").unwrap_err();
        assert_eq!(e.to_string(), "unknown mount option \"frobnicate\"");
    }

    #[test]
    fn mount_fuse3s_form_becomes_a_daemon_mount() {
        let (a, helper) = helper_args(args("notes /mnt/n -o rw,noauto,dev,suid"));
        assert!(helper);
        assert_eq!(
            a,
            args("--store notes mount --daemon -o rw,noauto,dev,suid -- /mnt/n")
        );
        let (a, _) = helper_args(args("/srv/v.git /mnt/v -f"));
        assert_eq!(a, args("--repo /srv/v.git mount -- /mnt/v"));
    }

    #[test]
    fn subcommands_and_options_are_left_alone() {
        for line in [
            "mount /mnt/n",
            "umount /mnt/n",
            "get a/b",
            "--repo r get a",
            "help mount",
        ] {
            assert_eq!(helper_args(args(line)), (args(line), false), "{line}");
        }
    }
}
