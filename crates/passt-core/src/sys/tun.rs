//! The tap device of pasta mode: `/dev/net/tun` with `IFF_TAP | IFF_NO_PI
//! | IFF_VNET_HDR`, so that one read is one Ethernet frame behind a
//! virtio-net header, and checksum offload on (`TUN_F_CSUM`): the
//! namespace's kernel hands over TCP and UDP without computing their
//! checksums, and takes ours the same way (see `backend::vnet`). The
//! device belongs to the network namespace the descriptor was opened in.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

const IFNAMSIZ: usize = 16;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUNSETOFFLOAD` flag: the peer may leave checksums to us.
const TUN_F_CSUM: libc::c_int = 0x01;
const IFF_UP: libc::c_short = 0x1;

#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

nix::ioctl_write_ptr_bad!(tun_set_iff, 0x400454ca, IfReq);
nix::ioctl_write_int_bad!(tun_set_offload, 0x400454d0);
nix::ioctl_read_bad!(get_if_flags, libc::SIOCGIFFLAGS, IfReq);
nix::ioctl_write_ptr_bad!(set_if_flags, libc::SIOCSIFFLAGS, IfReq);

fn ifreq(name: &str) -> io::Result<IfReq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name '{name}'"),
        ));
    }
    let mut req = IfReq {
        name: [0; IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    Ok(req)
}

/// Creates (or attaches to) tap interface `name`; returns the descriptor
/// and the name the kernel gave it.
pub fn open_tap(name: &str) -> io::Result<(OwnedFd, String)> {
    let raw = open(
        "/dev/net/tun",
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )?;
    // SAFETY: `open` returned a new descriptor.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
    let mut req = ifreq(name)?;
    req.flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    // SAFETY: `req` is a valid ifreq for TUNSETIFF.
    unsafe { tun_set_iff(fd.as_raw_fd(), &req) }?;
    set_checksum_offload(fd.as_fd(), true)?;
    let actual = CStr::from_bytes_until_nul(&req.name)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| name.to_owned());
    Ok((fd, actual))
}

/// Whether the namespace may leave TCP/UDP checksums of the frames it
/// sends us to us (`TUN_F_CSUM`); off, it completes them itself.
pub fn set_checksum_offload(fd: BorrowedFd, on: bool) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value.
    unsafe { tun_set_offload(fd.as_raw_fd(), if on { TUN_F_CSUM } else { 0 }) }?;
    Ok(())
}

/// Sets IFF_UP on interface `name` of the current network namespace.
pub fn set_link_up(name: &str) -> io::Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: `socket` returned a new descriptor.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock) };
    let mut req = ifreq(name)?;
    // SAFETY: `req` is a valid ifreq for SIOCGIFFLAGS / SIOCSIFFLAGS.
    unsafe { get_if_flags(sock.as_raw_fd(), &mut req) }?;
    req.flags |= IFF_UP;
    // SAFETY: as above.
    unsafe { set_if_flags(sock.as_raw_fd(), &req) }?;
    Ok(())
}
