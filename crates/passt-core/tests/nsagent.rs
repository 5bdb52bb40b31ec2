//! The namespace agent against the real kernel: it creates a user and
//! network namespace, opens a tap and sockets inside it for us, and runs a
//! command there whose exit status comes back.

use std::os::fd::AsRawFd;
use std::path::Path;

use passt_core::netns::{spawn_agent, Request, Target};

fn agent() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_passt-nsagent"))
}

#[test]
fn tap_sockets_and_command_live_in_the_new_namespace() {
    let name = format!("pt{}", std::process::id() % 100000);
    let script = format!("ip -o link show {name} && ip -o link show lo | grep -q ',UP' && exit 7");
    let command: Vec<String> = ["sh", "-c", &script]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut agent = spawn_agent(agent(), &Target::New, &command).unwrap();

    let tap = agent.request(&Request::Tap(name.clone())).unwrap();
    assert_eq!(tap.text, name);
    assert_eq!(tap.fds.len(), 1);
    assert!(
        !Path::new("/sys/class/net").join(&name).exists(),
        "the tap must not appear in our own namespace"
    );

    let sock = agent
        .request(&Request::Socket(libc::AF_INET, libc::SOCK_STREAM, 0))
        .unwrap();
    assert_eq!(sock.fds.len(), 1);
    assert!(sock.fds[0].as_raw_fd() >= 0);

    let bad = agent.request(&Request::Socket(-1, libc::SOCK_STREAM, 0));
    assert!(bad.is_err(), "a failing request is an error reply");

    let pid = agent.request(&Request::Run).unwrap().value;
    assert!(pid > 0);
    let mut status = None;
    for _ in 0..100 {
        // poll_exit blocks on the socket until the agent reports.
        status = agent.poll_exit().unwrap();
        if status.is_some() {
            break;
        }
    }
    assert_eq!(
        status,
        Some(7),
        "the command ran where the tap is, with lo up"
    );
    assert_eq!(agent.finish().unwrap().and_then(|s| s.code()), Some(7));
}

#[test]
fn closing_the_control_socket_ends_the_agent() {
    let mut agent = spawn_agent(agent(), &Target::New, &[]).unwrap();
    assert_eq!(agent.finish().unwrap().and_then(|s| s.code()), Some(0));
}

#[test]
fn joining_a_missing_namespace_fails_clearly() {
    let target = Target::Join {
        netns: "/nonexistent/netns".into(),
        userns: None,
    };
    let mut agent = spawn_agent(agent(), &target, &[]).unwrap();
    assert!(agent.request(&Request::Run).is_err());
    assert_eq!(agent.finish().unwrap().and_then(|s| s.code()), Some(1));
}
