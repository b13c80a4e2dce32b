//! Fetch, push and bringing a remote's branch in: the steps of a sync, pull or push.

use super::super::{Oid, Store, StoreError, swapped};
use super::{
    Options, PUSH_ATTEMPTS, Pulled, Pushed, Remote, RemoteError, Report, Result, git, short,
    status, tracking_ref,
};

/// Fetch, bring in, push (retrying a push that lost a race).
pub(super) fn sync(store: &Store, remote: &Remote, opts: &Options) -> Result<Report> {
    let theirs = fetch(store, remote, opts)?;
    let pulled = match theirs {
        Some(t) => bring_in(store, remote, t, opts)?,
        None => Pulled::NoBranch,
    };
    let mut report = Report {
        remote: remote.name.clone(),
        pulled: Some(pulled),
        pushed: None,
    };
    report.pushed = Some(push_racing(store, remote, theirs, opts, &mut report)?);
    Ok(report)
}

pub(super) fn pull(store: &Store, remote: &Remote, opts: &Options) -> Result<Pulled> {
    match fetch(store, remote, opts)? {
        Some(theirs) => bring_in(store, remote, theirs, opts),
        None => Ok(Pulled::NoBranch),
    }
}

/// One push of the local head; a remote that moved on is an error asking to pull first.
pub(super) fn push(store: &Store, remote: &Remote, opts: &Options) -> Result<Report> {
    let head = store.head_commit()?;
    let known = store
        .repo
        .refname_to_id(&tracking_ref(&remote.name, store.branch()))
        .ok();
    let pushed = match push_commit(store, remote, head, opts)? {
        Push::Done { already: true } => Pushed::UpToDate,
        Push::Done { already: false } => Pushed::Sent {
            commit: head,
            commits: known.map(|t| store.ahead_of(head, t)).transpose()?,
        },
        Push::Rejected(reason) if is_race(&reason) => {
            return Err(RemoteError::Behind {
                remote: remote.name.clone(),
            });
        }
        Push::Rejected(reason) => {
            return Err(RemoteError::Rejected {
                remote: remote.name.clone(),
                reason,
            });
        }
    };
    Ok(Report {
        remote: remote.name.clone(),
        pulled: None,
        pushed: Some(pushed),
    })
}

/// Pushes the local head until the remote takes it: a push rejected because the remote's
/// branch moved on since `theirs` (another machine pushed first) fetches it, brings it in and
/// tries again, a few times.
fn push_racing(
    store: &Store,
    remote: &Remote,
    mut theirs: Option<Oid>,
    opts: &Options,
    report: &mut Report,
) -> Result<Pushed> {
    for _ in 0..PUSH_ATTEMPTS {
        let head = store.head_commit()?;
        if theirs == Some(head) {
            return Ok(Pushed::UpToDate);
        }
        let reason = match push_commit(store, remote, head, opts)? {
            Push::Done { already: true } => return Ok(Pushed::UpToDate),
            Push::Done { already: false } => {
                return Ok(Pushed::Sent {
                    commit: head,
                    commits: theirs.map(|t| store.ahead_of(head, t)).transpose()?,
                });
            }
            Push::Rejected(reason) => reason,
        };
        theirs = fetch(store, remote, opts)?;
        match theirs {
            // It moved on: bring that in, then push again.
            Some(t) if !store.is_ancestor(t, head)? => {
                log::info!(
                    "{}: the branch moved on there; pulling and pushing again",
                    remote.name
                );
                report.pulled = Some(bring_in(store, remote, t, opts)?);
            }
            // It did not: the refusal is the remote's own (a hook, a protected branch).
            _ => {
                return Err(RemoteError::Rejected {
                    remote: remote.name.clone(),
                    reason,
                });
            }
        }
    }
    Err(RemoteError::KeptMoving {
        remote: remote.name.clone(),
        attempts: PUSH_ATTEMPTS,
    })
}

/// Whether git's reason for rejecting a push means the remote's branch has commits the pushed
/// one lacks.
fn is_race(reason: &str) -> bool {
    reason.contains("non-fast-forward") || reason.contains("fetch first")
}

/// Runs git for `remote`, turning a run that could not start or finish into an error.
fn run_git(
    store: &Store,
    remote: &Remote,
    op: &'static str,
    args: &[&str],
    opts: &Options,
) -> Result<git::Ran> {
    git::run(store.path(), args, opts.timeout).map_err(|failed| match failed {
        git::Failed::Spawn(e) => RemoteError::NoGit(e.to_string()),
        git::Failed::Timeout(limit) => RemoteError::Timeout {
            remote: remote.name.clone(),
            op,
            secs: limit.as_secs(),
        },
    })
}

/// Fetches the remote's copy of the branch into `refs/remotes/NAME/BRANCH` (replacing what an
/// earlier fetch left there) and returns its head, or `None` when the remote has no such
/// branch (the stale copy is then dropped).
pub fn fetch(store: &Store, remote: &Remote, opts: &Options) -> Result<Option<Oid>> {
    let tracking = tracking_ref(&remote.name, store.branch());
    let spec = format!("+refs/heads/{}:{tracking}", store.branch());
    let args = [
        "fetch",
        "--no-tags",
        "--no-write-fetch-head",
        remote.name.as_str(),
        spec.as_str(),
    ];
    let ran = run_git(store, remote, "fetch", &args, opts)?;
    if ran.status.success() {
        status::seen(store, &remote.name);
        return Ok(Some(store.repo.refname_to_id(&tracking)?));
    }
    if ran.stderr.contains("couldn't find remote ref") {
        if let Ok(mut stale) = store.repo.find_reference(&tracking) {
            stale.delete()?;
        }
        status::seen(store, &remote.name);
        return Ok(None);
    }
    Err(RemoteError::Transport {
        remote: remote.name.clone(),
        message: ran.complaint(),
    })
}

/// How one push ended.
enum Push {
    /// The remote's branch is the commit now (`already`: it was before).
    Done { already: bool },
    /// The remote refused, with git's reason (`[rejected] (fetch first)`, `[remote rejected]
    /// (hook declined)`).
    Rejected(String),
}

/// Pushes `commit` to the remote's branch: a plain push, so the remote takes it only as a
/// fast-forward.
fn push_commit(store: &Store, remote: &Remote, commit: Oid, opts: &Options) -> Result<Push> {
    let dst = format!("refs/heads/{}", store.branch());
    let spec = format!("{commit}:{dst}");
    let args = ["push", "--porcelain", remote.name.as_str(), spec.as_str()];
    let ran = run_git(store, remote, "push", &args, opts)?;
    // `--porcelain`: one line per ref, `FLAG \t FROM:TO \t SUMMARY`.
    let line = ran.stdout.lines().find_map(|l| {
        let mut fields = l.split('\t');
        let flag = fields.next()?;
        let refs = fields.next()?;
        refs.ends_with(&format!(":{dst}"))
            .then(|| (flag, fields.next().unwrap_or_default()))
    });
    match line {
        Some(("!", summary)) => Ok(Push::Rejected(summary.trim().to_owned())),
        Some((flag, _)) if ran.status.success() => {
            let tracking = tracking_ref(&remote.name, store.branch());
            store
                .repo
                .reference(&tracking, commit, true, "valfs: pushed")?;
            status::seen(store, &remote.name);
            Ok(Push::Done {
                already: flag == "=",
            })
        }
        _ => Err(RemoteError::Transport {
            remote: remote.name.clone(),
            message: ran.complaint(),
        }),
    }
}

/// Brings the remote's head `theirs` into the branch, after checking it is a valfs value
/// (unless adopting): the branch starts there when it has no commits yet.
fn bring_in(store: &Store, remote: &Remote, theirs: Oid, opts: &Options) -> Result<Pulled> {
    let label = format!("{}/{}", remote.name, store.branch());
    let head = store.head()?;
    if let Some(head) = head
        && store.is_ancestor(theirs, head)?
    {
        return Ok(Pulled::UpToDate);
    }
    if !opts.adopt {
        check_value(store, theirs, &label)?;
    }
    if head.is_none() && store.start_at(theirs, &format!("pull {label}"))? {
        return Ok(Pulled::FastForward {
            to: theirs,
            commits: store.ancestry(theirs)?,
        });
    }
    integrate(store, theirs, &label)
}

/// Refuses a commit that does not hold a valfs value.
pub(super) fn check_value(store: &Store, commit: Oid, label: &str) -> Result<()> {
    match store.not_a_value(commit)? {
        Some(why) => Err(RemoteError::NotValfs {
            label: label.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// Brings `theirs` into the branch: nothing when the branch already has it, a fast-forward
/// when the branch has nothing it lacks, else one two-parent merge commit with its conflicts
/// recorded (see [`Store::merge_into_branch`]).
fn integrate(store: &Store, theirs: Oid, label: &str) -> Result<Pulled> {
    let head = store.head_commit()?;
    let ahead = if store.is_ancestor(head, theirs)? {
        store.ahead_of(theirs, head)?
    } else {
        0
    };
    Ok(match store.merge_into_branch(theirs, label)? {
        crate::store::MergeOutcome::UpToDate => Pulled::UpToDate,
        crate::store::MergeOutcome::FastForward(to) => {
            log::info!("fast-forward {} to {label} ({})", store.branch(), short(to));
            Pulled::FastForward { to, commits: ahead }
        }
        crate::store::MergeOutcome::Merged { commit, conflicts } => {
            log::info!(
                "merged {label} into {} ({}), {} conflict(s)",
                store.branch(),
                short(commit),
                conflicts.len()
            );
            Pulled::Merged { commit, conflicts }
        }
    })
}

impl Store {
    /// Whether `ancestor` is `commit` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: Oid, commit: Oid) -> Result<bool, StoreError> {
        Ok(ancestor == commit || self.repo.graph_descendant_of(commit, ancestor)?)
    }

    /// How many commits `commit` has that `other` lacks.
    fn ahead_of(&self, commit: Oid, other: Oid) -> Result<usize, StoreError> {
        Ok(self.repo.graph_ahead_behind(commit, other)?.0)
    }

    /// How many commits `commit` and its ancestors are.
    fn ancestry(&self, commit: Oid) -> Result<usize, StoreError> {
        let mut walk = self.repo.revwalk()?;
        walk.push(commit)?;
        Ok(walk.count())
    }

    /// Moves the branch from `from` to `to` by compare-and-swap without making a commit (`to`
    /// descends from `from`: a fast-forward). `false` when the branch was no longer at `from`.
    pub fn fast_forward(&self, from: Oid, to: Oid, why: &str) -> Result<bool, StoreError> {
        let log = format!("valfs: {why}");
        swapped(
            self.repo
                .reference_matching(&self.refname(), to, true, from, &log),
        )
    }

    /// Starts the branch, which has no commits, at `commit`; `false` when another writer
    /// started it first.
    pub(super) fn start_at(&self, commit: Oid, why: &str) -> Result<bool, StoreError> {
        let log = format!("valfs: {why}");
        swapped(self.repo.reference(&self.refname(), commit, false, &log))
    }
}
