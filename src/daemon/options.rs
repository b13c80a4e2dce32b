//! Mount settings, and the `-o` option lists that mount(8), fstab and `valfs mount -o` give.

use std::time::Duration;

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

/// Everything `valfs mount` can be told, before it becomes [`super::MountArgs`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountOpts {
    pub branch: String,
    pub read_only: bool,
    pub allow_other: bool,
    /// Mount a repository or branch valfs did not make (`--adopt`).
    pub adopt: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub umask: Option<u16>,
    pub coalesce: Option<Duration>,
    pub scratch: Vec<String>,
    /// Generic mount flags (`noexec`, `nosuid`, ...), passed on to the kernel.
    pub kernel_flags: Vec<String>,
}

impl MountOpts {
    /// Applies one comma-separated option list (`ro,branch=prod,coalesce=500`). Later options
    /// win; an option valfs does not know is an error naming it.
    pub fn apply(&mut self, list: &str) -> Result<(), String> {
        for opt in list.split(',') {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, value) {
                ("", None) => {}
                ("ro", None) => self.read_only = true,
                ("rw", None) => self.read_only = false,
                ("allow_other", None) => self.allow_other = true,
                ("adopt", None) => self.adopt = true,
                ("branch", Some(b)) if !b.is_empty() => self.branch = b.to_owned(),
                ("uid", Some(v)) => self.uid = Some(number(opt, v)?),
                ("gid", Some(v)) => self.gid = Some(number(opt, v)?),
                ("umask", Some(v)) => {
                    self.umask = Some(
                        u16::from_str_radix(v, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| format!("{opt}: not an octal mode"))?,
                    )
                }
                ("coalesce", Some(v)) => {
                    self.coalesce = Some(Duration::from_millis(number(opt, v)?.into()))
                }
                ("scratch", Some(g)) if !g.is_empty() => self.scratch.push(g.to_owned()),
                (k, None) if KERNEL_FLAGS.contains(&k) => {
                    self.kernel_flags.retain(|f| f != k);
                    self.kernel_flags.push(k.to_owned())
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
}

fn number(opt: &str, v: &str) -> Result<u32, String> {
    v.parse().map_err(|_| format!("{opt}: not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &str) -> Result<MountOpts, String> {
        let mut o = MountOpts {
            branch: "main".into(),
            ..MountOpts::default()
        };
        o.apply(list).map(|()| o)
    }

    #[test]
    fn fstab_options_are_understood_or_ignored() {
        let o = parse("rw,noauto,user,users,nofail,_netdev,x-systemd.automount,user=joe,dev,suid")
            .unwrap();
        assert!(!o.read_only);
        assert_eq!(o.kernel_flags, ["dev", "suid"]);
        let o =
            parse("ro,allow_other,branch=prod,uid=1000,gid=100,umask=027,coalesce=500").unwrap();
        assert!(o.read_only && o.allow_other);
        assert_eq!(o.branch, "prod");
        assert_eq!((o.uid, o.gid, o.umask), (Some(1000), Some(100), Some(0o27)));
        assert_eq!(o.coalesce, Some(Duration::from_millis(500)));
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
}
