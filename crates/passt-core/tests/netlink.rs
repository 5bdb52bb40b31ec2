//! rtnetlink against a real kernel: configure a tap in a fresh namespace
//! (through the namespace agent, as pasta's --config-net does) and read
//! the configuration back through discovery.

use std::net::IpAddr;
use std::path::Path;

use passt_core::netlink::Netlink;
use passt_core::netns::{spawn_agent, Request, Target};

#[test]
fn configure_a_namespace_then_discover_it() {
    let agent_bin = Path::new(env!("CARGO_BIN_EXE_passt-nsagent"));
    let mut agent = spawn_agent(agent_bin, &Target::New, &[]).unwrap();
    let tap = agent.request(&Request::Tap("eth0".into())).unwrap();
    let mut nl_sock = agent
        .request(&Request::Socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW,
            libc::NETLINK_ROUTE,
        ))
        .unwrap();
    let mut nl = Netlink::from_socket(nl_sock.fds.remove(0)).unwrap();

    let index = nl.link_index("eth0").unwrap();
    nl.set_link(index, Some(65520), Some([0x02, 0, 0, 0, 0, 0x42]))
        .unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    nl.add_address(index, ip("192.0.2.2"), 24).unwrap();
    nl.add_route(index, ip("0.0.0.0"), 0, Some(ip("192.0.2.1")))
        .unwrap();
    nl.add_address(index, ip("fd00::2"), 64).unwrap();
    nl.add_route(index, ip("::"), 0, Some(ip("fd00::1")))
        .unwrap();

    let duplicate = nl.add_address(index, ip("192.0.2.2"), 24).unwrap_err();
    assert_eq!(duplicate.raw_os_error(), Some(libc::EEXIST));

    let (v4, v6) = nl.discover(None, None).unwrap();
    let v4 = v4.expect("an IPv4 default route");
    assert_eq!(v4.ifname, "eth0");
    assert_eq!(v4.mtu, 65520);
    assert_eq!(v4.mac, Some([0x02, 0, 0, 0, 0, 0x42]));
    assert_eq!(v4.addrs, vec![(ip("192.0.2.2"), 24)]);
    assert_eq!(v4.gateway, Some(ip("192.0.2.1")));
    let v6 = v6.expect("an IPv6 default route");
    assert!(v6.addrs.contains(&(ip("fd00::2"), 64)));
    assert_eq!(v6.gateway, Some(ip("fd00::1")));

    drop(tap);
    assert_eq!(agent.finish().unwrap().and_then(|s| s.code()), Some(0));
}
