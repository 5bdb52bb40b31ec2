//! The namespace agent's own program (`passt-nsagent`), see `netns` for
//! why it exists. Usage, with the control socket on descriptor 3:
//!
//!   passt-nsagent [--userns PATH] [--netns PATH] [--] [COMMAND [ARG]...]
//!
//! Without `--netns` it creates a new user and network namespace; with
//! it, joins them. Either way it brings `lo` up, then answers requests
//! until the engine closes the socket or, after `RUN`, the command exits;
//! it then exits with the command's status (128 + signal if killed).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};

use nix::poll::{poll, PollFd, PollFlags};

use crate::netns::{encode_err, encode_exited, encode_ok, Request, MAX_MSG};
use crate::sys::{fdpass, ns, process, socket, tun};

/// Descriptor the engine hands the agent its end of the control socket on.
pub const CONTROL_FD: i32 = 3;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub userns: Option<String>,
    pub netns: Option<String>,
    pub command: Vec<String>,
}

pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--userns" => o.userns = Some(it.next().ok_or("--userns needs a path")?.clone()),
            "--netns" => o.netns = Some(it.next().ok_or("--netns needs a path")?.clone()),
            "--" => break,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s => {
                o.command.push(s.to_owned());
                break;
            }
        }
    }
    o.command.extend(it.cloned());
    if o.userns.is_some() && o.netns.is_none() {
        return Err("--userns needs --netns".into());
    }
    Ok(o)
}

/// Runs the agent; returns the process exit status.
pub fn main(args: &[String]) -> i32 {
    let result = parse(args)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        .and_then(|o| run(&o));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("passt-nsagent: {e}");
            1
        }
    }
}

fn run(o: &Options) -> io::Result<i32> {
    let ctl = process::inherited(CONTROL_FD)?;
    match &o.netns {
        None => ns::unshare_user_net().map_err(|e| context(e, "creating namespaces"))?,
        Some(net) => {
            if let Some(user) = &o.userns {
                ns::join_user(user).map_err(|e| context(e, user))?;
            }
            ns::join_net(net).map_err(|e| context(e, net))?;
        }
    }
    tun::set_link_up("lo").map_err(|e| context(e, "bringing up lo"))?;
    serve(&ctl, &o.command)
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn serve(ctl: &OwnedFd, command: &[String]) -> io::Result<i32> {
    let mut child: Option<(Child, OwnedFd)> = None;
    loop {
        let mut fds = vec![PollFd::new(ctl.as_raw_fd(), PollFlags::POLLIN)];
        if let Some((_, pidfd)) = &child {
            fds.push(PollFd::new(pidfd.as_raw_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, -1) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        if ready(1) {
            if let Some((mut c, _)) = child.take() {
                let status = c.wait()?;
                let code = status
                    .code()
                    .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                // The engine may be gone already; the status is ours anyway.
                let _ = fdpass::send(ctl.as_fd(), &encode_exited(code), &[]);
                return Ok(code);
            }
        }
        if ready(0) {
            let mut buf = [0u8; MAX_MSG];
            let (n, _) = fdpass::recv(ctl.as_fd(), &mut buf)?;
            if n == 0 {
                return Ok(0);
            }
            match Request::decode(&buf[..n]) {
                Some(Request::Run) if child.is_none() => match spawn(command) {
                    Ok(c) => {
                        let pid = c.0.id();
                        child = Some(c);
                        fdpass::send(ctl.as_fd(), &encode_ok(pid, ""), &[])?;
                    }
                    Err(e) => fdpass::send(ctl.as_fd(), &encode_err(&e, "command"), &[])?,
                },
                Some(req) => answer(ctl, &req)?,
                None => {
                    let e = io::Error::from_raw_os_error(libc::EINVAL);
                    fdpass::send(ctl.as_fd(), &encode_err(&e, "request"), &[])?;
                }
            }
        }
    }
}

fn answer(ctl: &OwnedFd, req: &Request) -> io::Result<()> {
    let sent = match req {
        Request::Tap(name) => tun::open_tap(name).and_then(|(fd, actual)| {
            fdpass::send(ctl.as_fd(), &encode_ok(0, &actual), &[fd.as_fd()])
        }),
        Request::Socket(d, t, p) => socket::socket(*d, *t, *p)
            .and_then(|fd| fdpass::send(ctl.as_fd(), &encode_ok(0, ""), &[fd.as_fd()])),
        Request::Run => Err(io::Error::from_raw_os_error(libc::EBUSY)),
    };
    match sent {
        Ok(()) => Ok(()),
        Err(e) => fdpass::send(ctl.as_fd(), &encode_err(&e, "request"), &[]),
    }
}

fn spawn(command: &[String]) -> io::Result<(Child, OwnedFd)> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
    let (prog, args) = match command.split_first() {
        Some((p, a)) => (p.as_str(), a),
        None => (shell.as_str(), &[][..]),
    };
    let child = Command::new(prog)
        .args(args)
        .spawn()
        .map_err(|e| context(e, prog))?;
    let pidfd = process::pidfd_open(child.id())?;
    Ok((child, pidfd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_command_lines() {
        assert_eq!(parse(&args(&[])), Ok(Options::default()));
        let o = parse(&args(&["--netns", "/run/netns/x", "--", "ip", "-br", "a"])).unwrap();
        assert_eq!(o.netns.as_deref(), Some("/run/netns/x"));
        assert_eq!(o.command, args(&["ip", "-br", "a"]));
        let o = parse(&args(&["sh", "--netns", "y"])).unwrap();
        assert_eq!(o.command, args(&["sh", "--netns", "y"]));
        assert!(parse(&args(&["--userns", "u"])).is_err());
        assert!(parse(&args(&["--frob"])).is_err());
        assert!(parse(&args(&["--netns"])).is_err());
    }
}
