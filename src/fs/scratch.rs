//! Names of editors' and tools' temporary files: usable in the mount, never part of the value.

/// The built-in patterns (see docs/FORMAT.md): Vim, Emacs, sed, rsync, GNOME, JetBrains,
/// LibreOffice, Office, macOS, NFS and libfuse leftovers.
pub const BUILTIN: &[&str] = &[
    "*~",
    "*.swp",
    "*.swo",
    "*.swn",
    "*.swx",
    ".*.sw?",
    ".*.swpx",
    ".sw?",
    ".swpx",
    "4913",
    ".#*",
    "#*#",
    "sed??????",
    ".goutputstream-*",
    "*___jb_tmp___",
    "*___jb_old___",
    ".~lock.*#",
    "~$*",
    "._*",
    ".DS_Store",
    ".fuse_hidden*",
    ".nfs*",
    "*.tmp",
    "tmp??????",
    "tmp????????",
    ".*.??????",
];

/// A set of glob patterns (`*` and `?`).
#[derive(Clone, Debug)]
pub struct Scratch {
    patterns: Vec<String>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new(&[])
    }
}

impl Scratch {
    /// The built-in patterns plus the user's.
    pub fn new(extra: &[String]) -> Scratch {
        let mut patterns: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
        patterns.extend(extra.iter().cloned());
        Scratch { patterns }
    }

    pub fn matches(&self, name: &str) -> bool {
        is_vim_probe(name)
            || self
                .patterns
                .iter()
                .any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// Vim's permission probe: 4913, then 5036, 5159, ... in steps of 123.
fn is_vim_probe(name: &str) -> bool {
    match name.parse::<u32>() {
        Ok(n) => n >= 4913 && (n - 4913) % 123 == 0 && n < 100_000 && !name.starts_with('0'),
        Err(_) => false,
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_names_are_scratch() {
        let s = Scratch::default();
        for name in [
            "name~",
            ".name.swp",
            ".name.swpx",
            ".name.swx",
            "4913",
            "5036",
            ".#name",
            "#name#",
            "sedAb12Cd",
            ".goutputstream-XYZ123",
            "name___jb_tmp___",
            "name___jb_old___",
            ".~lock.name#",
            "._name",
            ".DS_Store",
            ".fuse_hidden0001",
            ".nfs1234",
            "x.tmp",
            ".name.a1B2c3",
            "tmpAbCdEf",
        ] {
            assert!(s.matches(name), "{name}");
        }
        for name in [
            "name", "age", "0", "12", "4914", "sed", ".hidden", "users", "a.swpx",
        ] {
            assert!(!s.matches(name), "{name}");
        }
    }

    #[test]
    fn user_patterns_add() {
        let s = Scratch::new(&["*.bak".into()]);
        assert!(s.matches("x.bak"));
    }
}
