//! Entering namespaces. Only a single-threaded process may change its user
//! namespace, so these are called by the namespace agent, never by the
//! engine inside Node.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use nix::sched::{setns, unshare, CloneFlags};

/// Creates a new user and network namespace for this process, mapping our
/// user and group to root inside it (as `unshare --map-root-user` does).
pub fn unshare_user_net() -> io::Result<()> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)?;
    fs::write("/proc/self/setgroups", "deny")?;
    fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// Joins the user namespace at `path`, unless we are already in it (the
/// kernel refuses to re-enter one's own user namespace).
pub fn join_user(path: &str) -> io::Result<()> {
    let target = fs::metadata(path)?;
    let own = fs::metadata("/proc/self/ns/user")?;
    if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
        return Ok(());
    }
    let f = File::open(path)?;
    setns(f.as_raw_fd(), CloneFlags::CLONE_NEWUSER)?;
    Ok(())
}

pub fn join_net(path: &str) -> io::Result<()> {
    let f = File::open(path)?;
    setns(f.as_raw_fd(), CloneFlags::CLONE_NEWNET)?;
    Ok(())
}
