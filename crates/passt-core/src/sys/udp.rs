//! UDP sockets for flows and `-u` forwards: batched receive (`recvmmsg`)
//! and send (`sendmmsg`), and ICMP errors read from the socket's error
//! queue (`IP_RECVERR`/`IPV6_RECVERR`, ip(7)/ipv6(7)).
//!
//! Every socket is non-blocking and close-on-exec; IPv6 sockets are
//! IPv6-only (IPv4 has sockets of its own). With `*_RECVERR` on, an ICMP
//! error also sets the socket's pending error, which the next send or
//! receive returns once (and consumes): callers treat such a failure as
//! "details on the error queue", not as the fate of that datagram, and
//! reading the error queue clears it.
//!
//! `RecvBatch` owns its buffers; the per-call `mmsghdr`/`iovec` arrays
//! live on the stack and point into them only for the duration of the
//! call, so the batch holds no raw pointers (it stays `Send`) and a call
//! allocates nothing.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{setsockopt, sockopt};

use super::socket::RawAddr;

/// Bytes per receive buffer: any UDP payload fits, so nothing is truncated.
pub const BUF_SIZE: usize = 65536;
/// Most datagrams one `recv_batch` returns.
pub const MAX_BATCH: usize = 64;
/// Entries per `sendmmsg` call. The kernel takes up to UIO_MAXIOV (1024);
/// this keeps the on-stack headers small (~27 KiB) at no real cost.
const SEND_CHUNK: usize = 256;
/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS is 64
/// on older kernels, 128 on newer).
const GSO_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO send: one IP packet's worth.
const GSO_BYTES: usize = 65535 - 40 - 8;
/// Socket buffer size asked for (capped by the kernel's rmem/wmem_max).
const SOCK_BUF: usize = 4 << 20;

/// Reusable receive buffers for `recv_batch`: `count` datagrams of up to
/// `BUF_SIZE` bytes, with their lengths and sources.
pub struct RecvBatch {
    data: Vec<u8>,
    names: Vec<RawAddr>,
    lens: Vec<usize>,
    srcs: Vec<SocketAddr>,
    filled: usize,
}

impl RecvBatch {
    /// Buffers for `count` datagrams (clamped to 1..=`MAX_BATCH`).
    pub fn new(count: usize) -> Self {
        let count = count.clamp(1, MAX_BATCH);
        RecvBatch {
            // Zeroed allocation: pages are only touched once used.
            data: vec![0; count * BUF_SIZE],
            names: vec![RawAddr::empty(); count],
            lens: vec![0; count],
            srcs: vec![SocketAddr::from(([0, 0, 0, 0], 0)); count],
            filled: 0,
        }
    }

    /// How many datagrams one receive can hold.
    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// How many datagrams the last receive returned.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Datagram `i` of the last receive: its source and payload.
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.filled {
            return None;
        }
        let start = i * BUF_SIZE;
        Some((self.srcs[i], &self.data[start..start + self.lens[i]]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        (0..self.filled).filter_map(move |i| self.get(i))
    }

    /// The first buffer, for one-off reads (the error queue). Invalidates
    /// the first datagram of the last receive.
    pub fn scratch(&mut self) -> &mut [u8] {
        &mut self.data[..BUF_SIZE]
    }
}

/// What a message on the error queue said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedError {
    /// An ICMP or ICMPv6 error came back for a datagram we sent.
    Icmp(IcmpError),
    /// Anything else (`SO_EE_ORIGIN_LOCAL`: a local error such as
    /// EMSGSIZE against the path MTU, with the MTU in `info`).
    Other { origin: u8, errno: i32, info: u32 },
}

/// An ICMP error for a datagram this socket sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpError {
    /// ICMPv6 (`SO_EE_ORIGIN_ICMP6`) rather than ICMP.
    pub v6: bool,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// `ee_info`: the next-hop MTU for "fragmentation needed" / "packet
    /// too big", else 0.
    pub info: u32,
    /// The errno the kernel maps the error to (ECONNREFUSED, ...).
    pub errno: i32,
    /// The host that sent the ICMP message.
    pub offender: Option<IpAddr>,
    /// Destination of the datagram that caused it.
    pub dst: Option<SocketAddr>,
    /// Bytes of that datagram's UDP payload (as much as the ICMP message
    /// quoted) copied to the start of the caller's buffer.
    pub len: usize,
}

pub struct UdpSocket {
    fd: OwnedFd,
    v6: bool,
}

impl UdpSocket {
    /// A non-blocking UDP socket of either family, with ICMP errors
    /// queued for reading and large buffers (best effort).
    pub fn open(family_v6: bool) -> io::Result<Self> {
        let domain = if family_v6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let fd = super::socket::socket(domain, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0)?;
        Self::from_fd(fd, family_v6)
    }

    /// Adopts a non-blocking UDP socket made elsewhere (in pasta's
    /// namespace, by the agent) and configures it as `open` does.
    pub fn from_fd(fd: OwnedFd, family_v6: bool) -> io::Result<Self> {
        let raw = fd.as_raw_fd();
        if family_v6 {
            setsockopt(raw, sockopt::Ipv6V6Only, &true)?;
            setsockopt(raw, sockopt::Ipv6RecvErr, &true)?;
        } else {
            setsockopt(raw, sockopt::Ipv4RecvErr, &true)?;
        }
        // Bursts from a fast peer or guest should not be dropped for want
        // of buffer; the kernel caps the size, and a smaller one works.
        let _ = setsockopt(raw, sockopt::RcvBuf, &SOCK_BUF);
        let _ = setsockopt(raw, sockopt::SndBuf, &SOCK_BUF);
        Ok(UdpSocket { fd, v6: family_v6 })
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Binds to `addr`, sharing the port with other sockets that set
    /// SO_REUSEADDR too (flow sockets of the same guest source port).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        setsockopt(self.raw(), sockopt::ReuseAddr, &true)?;
        let (a, len) = RawAddr::new(addr);
        // SAFETY: `a` is a valid socket address of `len` bytes.
        if unsafe { libc::bind(self.raw(), a.as_ptr(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Only datagrams through interface `dev` (`SO_BINDTODEVICE`; allowed
    /// to ordinary users on a socket not bound to a device yet).
    pub fn bind_device(&self, dev: &str) -> io::Result<()> {
        setsockopt(self.raw(), sockopt::BindToDevice, &dev.into())?;
        Ok(())
    }

    /// Fixes the peer: `send` goes there, only its datagrams are received,
    /// and ICMP errors for it are queued.
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        let (a, len) = RawAddr::new(addr);
        // SAFETY: `a` is a valid socket address of `len` bytes.
        if unsafe { libc::connect(self.raw(), a.as_ptr(), len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let mut a = RawAddr::empty();
        let mut len = size_of::<RawAddr>() as libc::socklen_t;
        // SAFETY: `a` has room for `len` bytes; the kernel updates `len`.
        let r = unsafe { libc::getsockname(self.raw(), (&mut a as *mut RawAddr).cast(), &mut len) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        a.get(len)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EAFNOSUPPORT))
    }

    /// Sends one datagram on a connected socket.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: `data` is valid for its length.
        let r = unsafe {
            libc::send(
                self.raw(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Sends one datagram to `dst`.
    pub fn send_to(&self, data: &[u8], dst: SocketAddr) -> io::Result<usize> {
        let (a, len) = RawAddr::new(dst);
        // SAFETY: `data` is valid for its length, `a` for `len` bytes.
        let r = unsafe {
            libc::sendto(
                self.raw(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                a.as_ptr(),
                len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Reads up to `rounds` batches into `batch`, handing each to `each`,
    /// until the queue is empty (a batch comes back short). An error is a
    /// pending ICMP error reported once (the peer's port is closed, say):
    /// it costs a round and reading goes on.
    pub fn drain(&self, batch: &mut RecvBatch, rounds: usize, mut each: impl FnMut(&RecvBatch)) {
        for _ in 0..rounds {
            match self.recv_batch(batch) {
                Ok(0) => break,
                Ok(n) => {
                    each(batch);
                    if n < batch.capacity() {
                        break;
                    }
                }
                Err(_) => continue,
            }
        }
    }

    /// Receives what is queued, up to the batch's capacity, without
    /// waiting: the number of datagrams (0: none). A pending ICMP error
    /// may come out as an error here once (see the module comment).
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.filled = 0;
        let count = batch.capacity();
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        let mut hdrs = [libc::mmsghdr {
            msg_hdr: empty_msghdr(),
            msg_len: 0,
        }; MAX_BATCH];
        let names = batch.names.as_mut_ptr();
        for (i, buf) in batch.data.chunks_exact_mut(BUF_SIZE).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: BUF_SIZE,
            };
            let h = &mut hdrs[i].msg_hdr;
            // SAFETY: i < count = names.len().
            h.msg_name = unsafe { names.add(i) }.cast();
            h.msg_namelen = size_of::<RawAddr>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers point to buffers, names and
        // iovecs that outlive the call and hold what they claim.
        let r = unsafe {
            libc::recvmmsg(
                self.raw(),
                hdrs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        let n = r as usize;
        for (i, h) in hdrs.iter().enumerate().take(n) {
            batch.lens[i] = (h.msg_len as usize).min(BUF_SIZE);
            batch.srcs[i] = batch.names[i]
                .get(h.msg_hdr.msg_namelen)
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        }
        batch.filled = n;
        Ok(n)
    }

    /// Sends many datagrams: to the connected peer (`None`) or to each
    /// entry's address. Runs of equal-sized datagrams to one address go
    /// as one GSO send (`UDP_SEGMENT`: the kernel splits them, a fifth of
    /// the CPU of `sendmmsg` per datagram on loopback), the rest through
    /// `sendmmsg`. An entry the kernel refuses is retried once (the
    /// refusal may be a pending ICMP error, see the module comment), then
    /// skipped and counted; when the send buffer is full the rest are
    /// counted as failed. Returns (sent, failed).
    pub fn send_batch(&self, msgs: &[(&[u8], Option<SocketAddr>)]) -> (usize, usize) {
        let (mut sent, mut failed) = (0, 0);
        // msgs[from..i] wait for sendmmsg, sent before the next GSO run.
        let (mut from, mut i) = (0, 0);
        while i < msgs.len() {
            let n = gso_run(&msgs[i..]);
            if n < 2 {
                i += 1;
                continue;
            }
            for (range, gso) in [(from..i, false), (i..i + n, true)] {
                let part = &msgs[range.clone()];
                if part.is_empty() {
                    continue;
                }
                let (s, f, blocked) = match gso {
                    true => self
                        .send_segments(part)
                        .unwrap_or_else(|| self.send_mmsg(part)),
                    false => self.send_mmsg(part),
                };
                sent += s;
                failed += f;
                if blocked {
                    // The part counted its own rest; what follows it failed too.
                    return (sent, failed + msgs.len() - range.end);
                }
            }
            i += n;
            from = i;
        }
        let (s, f, _) = self.send_mmsg(&msgs[from..]);
        (sent + s, failed + f)
    }

    /// `msgs` (equal sizes but maybe the last, one address) in one send
    /// with `UDP_SEGMENT`: `Some` with all sent or, the buffer being full,
    /// all failed; `None` if this send was refused otherwise (a pending
    /// ICMP error, a size the path takes no GSO for): the caller sends
    /// them one by one.
    fn send_segments(&self, msgs: &[(&[u8], Option<SocketAddr>)]) -> Option<(usize, usize, bool)> {
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; GSO_SEGMENTS];
        for (v, (data, _)) in iovs.iter_mut().zip(msgs) {
            // The kernel only reads through this pointer.
            *v = libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            };
        }
        let (mut name, namelen) = match msgs[0].1 {
            Some(dst) => RawAddr::new(dst),
            None => (RawAddr::empty(), 0),
        };
        // u64s: cmsghdr alignment; a header and a u16.
        let mut control = [0u64; 4];
        let mut msg = empty_msghdr();
        if namelen > 0 {
            msg.msg_name = (&mut name as *mut RawAddr).cast();
            msg.msg_namelen = namelen;
        }
        msg.msg_iov = iovs.as_mut_ptr();
        msg.msg_iovlen = msgs.len().min(GSO_SEGMENTS);
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
        let seg = msgs[0].0.len() as u16;
        // SAFETY: `control` has room for one header with a u16 (checked by
        // CMSG_SPACE above), so the first header and its data are inside.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = libc::UDP_SEGMENT;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), seg);
        }
        loop {
            // SAFETY: `msg` points to a name, iovecs, payloads and control
            // data that outlive the call.
            let r =
                unsafe { libc::sendmsg(self.raw(), &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if r >= 0 {
                return Some((msgs.len(), 0, false));
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN | libc::ENOBUFS) => return Some((0, msgs.len(), true)),
                _ => return None,
            }
        }
    }

    /// `send_batch` by `sendmmsg`, a chunk at a time; `blocked`: the send
    /// buffer filled (the rest are counted as failed).
    fn send_mmsg(&self, msgs: &[(&[u8], Option<SocketAddr>)]) -> (usize, usize, bool) {
        let (mut sent, mut failed) = (0, 0);
        for (c, chunk) in msgs.chunks(SEND_CHUNK).enumerate() {
            let mut names = [RawAddr::empty(); SEND_CHUNK];
            let mut iovs = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; SEND_CHUNK];
            let mut hdrs = [libc::mmsghdr {
                msg_hdr: empty_msghdr(),
                msg_len: 0,
            }; SEND_CHUNK];
            for (i, (data, dst)) in chunk.iter().enumerate() {
                // The kernel only reads through this pointer.
                iovs[i] = libc::iovec {
                    iov_base: data.as_ptr() as *mut libc::c_void,
                    iov_len: data.len(),
                };
                let h = &mut hdrs[i].msg_hdr;
                if let Some(dst) = dst {
                    let (a, len) = RawAddr::new(*dst);
                    names[i] = a;
                    h.msg_name = (&mut names[i] as *mut RawAddr).cast();
                    h.msg_namelen = len;
                }
                h.msg_iov = &mut iovs[i];
                h.msg_iovlen = 1;
            }
            let mut i = 0;
            let mut retried = false;
            while i < chunk.len() {
                // SAFETY: headers i..len point to names, iovecs and
                // payloads that outlive the call.
                let r = unsafe {
                    libc::sendmmsg(
                        self.raw(),
                        hdrs[i..].as_mut_ptr(),
                        (chunk.len() - i) as libc::c_uint,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if r > 0 {
                    sent += r as usize;
                    i += r as usize;
                    retried = false;
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN | libc::ENOBUFS) => {
                        return (sent, failed + msgs.len() - (c * SEND_CHUNK + i), true);
                    }
                    _ if !retried => retried = true,
                    _ => {
                        failed += 1;
                        i += 1;
                        retried = false;
                    }
                }
            }
        }
        (sent, failed, false)
    }

    /// Reads one message from the error queue, its quoted payload into
    /// `buf`; `None` when the queue is empty. Reading clears the socket's
    /// pending error.
    pub fn take_error_queue(&self, buf: &mut [u8]) -> io::Result<Option<QueuedError>> {
        let mut name = RawAddr::empty();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // u64s: cmsghdr alignment. The extended error and its offender
        // need 64 bytes; room to spare for anything else queued with it.
        let mut control = [0u64; 32];
        let mut msg = empty_msghdr();
        msg.msg_name = (&mut name as *mut RawAddr).cast();
        msg.msg_namelen = size_of::<RawAddr>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points to buffers valid for the lengths it gives.
        let r = unsafe {
            libc::recvmsg(
                self.raw(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        let len = (r as usize).min(buf.len());
        let mut found = None;
        // SAFETY: the kernel filled `msg_controllen` bytes of `control`
        // with well-formed control messages; the CMSG_* walk stays inside.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: non-null headers from CMSG_FIRSTHDR/NXTHDR are valid.
            let c = unsafe { &*cmsg };
            let is_err = (c.cmsg_level == libc::SOL_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::SOL_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            // SAFETY: a pointer computation within the message.
            let header = unsafe { libc::CMSG_LEN(0) } as usize;
            let data_len = c.cmsg_len.saturating_sub(header);
            if is_err && data_len >= size_of::<libc::sock_extended_err>() {
                // SAFETY: CMSG_DATA points to `data_len` bytes we own.
                let data = unsafe { libc::CMSG_DATA(cmsg) };
                found = Some(parse_extended_err(data, data_len));
                break;
            }
            // SAFETY: `cmsg` is a valid header of `msg`.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        let Some((ee, offender)) = found else {
            return Ok(Some(QueuedError::Other {
                origin: libc::SO_EE_ORIGIN_NONE,
                errno: 0,
                info: 0,
            }));
        };
        let icmp =
            ee.ee_origin == libc::SO_EE_ORIGIN_ICMP || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6;
        if !icmp {
            return Ok(Some(QueuedError::Other {
                origin: ee.ee_origin,
                errno: ee.ee_errno as i32,
                info: ee.ee_info,
            }));
        }
        Ok(Some(QueuedError::Icmp(IcmpError {
            v6: ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6,
            icmp_type: ee.ee_type,
            icmp_code: ee.ee_code,
            info: ee.ee_info,
            errno: ee.ee_errno as i32,
            offender,
            dst: name.get(msg.msg_namelen),
            len,
        })))
    }
}

fn empty_msghdr() -> libc::msghdr {
    libc::msghdr {
        msg_name: std::ptr::null_mut(),
        msg_namelen: 0,
        msg_iov: std::ptr::null_mut(),
        msg_iovlen: 0,
        msg_control: std::ptr::null_mut(),
        msg_controllen: 0,
        msg_flags: 0,
    }
}

/// The `sock_extended_err` at `data` (`len` bytes) and the offender
/// address that follows it (`SO_EE_OFFENDER`; family AF_UNSPEC if none).
fn parse_extended_err(data: *const u8, len: usize) -> (libc::sock_extended_err, Option<IpAddr>) {
    let ee_size = size_of::<libc::sock_extended_err>();
    // SAFETY: the caller checked `len >= ee_size`; unaligned read since
    // control data need not be aligned for the struct.
    let ee: libc::sock_extended_err = unsafe { std::ptr::read_unaligned(data.cast()) };
    let mut offender = RawAddr::empty();
    let avail = (len - ee_size).min(size_of::<RawAddr>());
    // SAFETY: `avail` bytes follow the struct inside the control message
    // and fit in `offender`.
    unsafe {
        std::ptr::copy_nonoverlapping(
            data.add(ee_size),
            (&mut offender as *mut RawAddr).cast::<u8>(),
            avail,
        );
    }
    let offender = offender.get(avail as libc::socklen_t).map(|a| a.ip());
    (ee, offender)
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// How many datagrams from the front of `msgs` one GSO send can take:
/// the same address and size (the last may be shorter), within the
/// kernel's limits. Below 2, GSO is not worth a try.
fn gso_run(msgs: &[(&[u8], Option<SocketAddr>)]) -> usize {
    let Some(&(first, dst)) = msgs.first() else {
        return 0;
    };
    let size = first.len();
    if size == 0 || size > u16::MAX as usize {
        return 1;
    }
    let mut n = 0;
    let mut bytes = 0;
    for &(data, to) in msgs.iter().take(GSO_SEGMENTS) {
        if to != dst || data.is_empty() || data.len() > size || bytes + data.len() > GSO_BYTES {
            break;
        }
        bytes += data.len();
        n += 1;
        if data.len() < size {
            break; // a shorter one ends the run
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    fn pair(v6: bool) -> (UdpSocket, UdpSocket) {
        let lo: IpAddr = if v6 {
            Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        let a = UdpSocket::open(v6).unwrap();
        a.bind(SocketAddr::new(lo, 0)).unwrap();
        let b = UdpSocket::open(v6).unwrap();
        b.bind(SocketAddr::new(lo, 0)).unwrap();
        (a, b)
    }

    /// Receives until `want` datagrams arrived or a second passed.
    fn recv_all(s: &UdpSocket, batch: &mut RecvBatch, want: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(1);
        while got.len() < want && Instant::now() < deadline {
            if s.recv_batch(batch).unwrap() == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            got.extend(batch.iter().map(|(a, p)| (a, p.to_vec())));
        }
        got
    }

    fn batch_round_trip(v6: bool) {
        let (a, b) = pair(v6);
        let to_b = b.local_addr().unwrap();
        let from_a = a.local_addr().unwrap();
        let sizes = [0usize, 1, 7, 100, 1400, 1500, 9000, 40000, 65000];
        let payloads: Vec<Vec<u8>> = (0..150)
            .map(|i| {
                let n = sizes[i % sizes.len()];
                (0..n).map(|j| (i + j) as u8).collect()
            })
            .collect();
        let msgs: Vec<(&[u8], Option<SocketAddr>)> =
            payloads.iter().map(|p| (&p[..], Some(to_b))).collect();
        // Send in rounds the receive buffer can surely hold.
        let mut batch = RecvBatch::new(MAX_BATCH);
        let mut got = Vec::new();
        for round in msgs.chunks(30) {
            assert_eq!(a.send_batch(round), (round.len(), 0));
            got.extend(recv_all(&b, &mut batch, round.len()));
        }
        assert_eq!(got.len(), payloads.len());
        for ((src, p), want) in got.iter().zip(&payloads) {
            assert_eq!(*src, from_a);
            assert_eq!(p, want);
        }
    }

    #[test]
    fn batch_round_trip_v4() {
        batch_round_trip(false);
    }

    #[test]
    fn batch_round_trip_v6() {
        batch_round_trip(true);
    }

    #[test]
    fn connected_batch_and_single_sends() {
        let (a, b) = pair(false);
        a.connect(b.local_addr().unwrap()).unwrap();
        let msgs: Vec<(&[u8], Option<SocketAddr>)> =
            vec![(b"one", None), (b"two", None), (b"three", None)];
        assert_eq!(a.send_batch(&msgs), (3, 0));
        assert_eq!(a.send(b"four").unwrap(), 4);
        b.send_to(b"back", a.local_addr().unwrap()).unwrap();
        let mut batch = RecvBatch::new(8);
        let got = recv_all(&b, &mut batch, 4);
        let payloads: Vec<&[u8]> = got.iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(payloads, [&b"one"[..], b"two", b"three", b"four"]);
        let got = recv_all(&a, &mut batch, 1);
        assert_eq!(got[0].1, b"back");
    }

    #[test]
    fn one_bad_entry_does_not_stop_the_others() {
        let (a, b) = pair(false);
        let to_b = b.local_addr().unwrap();
        let bad: SocketAddr = "[::1]:9".parse().unwrap();
        let msgs: Vec<(&[u8], Option<SocketAddr>)> = vec![
            (b"a", Some(to_b)),
            (b"b", Some(bad)),
            (b"c", Some(to_b)),
            (b"d", Some(bad)),
        ];
        assert_eq!(a.send_batch(&msgs), (2, 2));
        let mut batch = RecvBatch::new(8);
        let got = recv_all(&b, &mut batch, 2);
        let payloads: Vec<&[u8]> = got.iter().map(|(_, p)| &p[..]).collect();
        assert_eq!(payloads, [b"a", b"c"]);
    }

    #[test]
    fn more_entries_than_one_sendmmsg_call() {
        let (a, b) = pair(false);
        let to_b = b.local_addr().unwrap();
        let n = SEND_CHUNK + 44;
        let msgs: Vec<(&[u8], Option<SocketAddr>)> =
            (0..n).map(|_| (&b"x"[..], Some(to_b))).collect();
        assert_eq!(a.send_batch(&msgs), (n, 0));
        let mut batch = RecvBatch::new(MAX_BATCH);
        assert_eq!(recv_all(&b, &mut batch, n).len(), n);
    }

    #[test]
    fn gso_runs_take_equal_sizes_to_one_address() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let (x, y): (&[u8], &[u8]) = (&[0u8; 100], &[0u8; 60]);
        let run = |m: &[(&[u8], Option<SocketAddr>)]| gso_run(m);
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[(x, None); 3]), 3);
        // A shorter one ends a run, and is in it.
        assert_eq!(run(&[(x, None), (y, None), (x, None)]), 2);
        // A longer one, another address or an empty one is not.
        assert_eq!(run(&[(y, None), (x, None)]), 1);
        assert_eq!(run(&[(x, Some(a)), (x, Some(b))]), 1);
        assert_eq!(run(&[(x, Some(a)), (&[], Some(a))]), 1);
        assert_eq!(run(&[(&[], None), (&[], None)]), 1);
        // The kernel's limits: segments, and one IP packet of payload.
        assert_eq!(run(&[(x, None); 100]), GSO_SEGMENTS);
        let big: &[u8] = &[0u8; 20000];
        assert_eq!(run(&[(big, None); 5]), 3);
    }

    /// Runs sent as one GSO send still arrive as the datagrams they were.
    fn gso_round_trip(v6: bool, connected: bool) {
        let (a, b) = pair(v6);
        let to_b = b.local_addr().unwrap();
        if connected {
            a.connect(to_b).unwrap();
        }
        let dst = (!connected).then_some(to_b);
        let sizes: Vec<usize> = std::iter::repeat_n(100, 70)
            .chain(std::iter::repeat_n(1400, 10))
            .chain([700, 5, 5, 9000, 9000, 1])
            .collect();
        let payloads: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 7 + j) as u8).collect())
            .collect();
        let msgs: Vec<(&[u8], Option<SocketAddr>)> =
            payloads.iter().map(|p| (&p[..], dst)).collect();
        assert_eq!(a.send_batch(&msgs), (msgs.len(), 0));
        let mut batch = RecvBatch::new(MAX_BATCH);
        let got = recv_all(&b, &mut batch, msgs.len());
        assert_eq!(got.len(), payloads.len());
        for ((src, p), want) in got.iter().zip(&payloads) {
            assert_eq!(*src, a.local_addr().unwrap());
            assert_eq!(p, want);
        }
    }

    #[test]
    fn gso_round_trip_v4() {
        gso_round_trip(false, false);
    }

    #[test]
    fn gso_round_trip_v6_connected() {
        gso_round_trip(true, true);
    }

    /// A loopback port nobody listens on (briefly bound, then released).
    fn closed_port(v6: bool) -> SocketAddr {
        let lo = if v6 { "[::1]:0" } else { "127.0.0.1:0" };
        std::net::UdpSocket::bind(lo).unwrap().local_addr().unwrap()
    }

    fn icmp_error_for_closed_port(v6: bool) -> IcmpError {
        let s = UdpSocket::open(v6).unwrap();
        let dst = closed_port(v6);
        s.connect(dst).unwrap();
        s.send(b"anyone?").unwrap();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match s.take_error_queue(&mut buf).unwrap() {
                Some(QueuedError::Icmp(e)) => {
                    assert_eq!(&buf[..e.len], b"anyone?");
                    assert_eq!(e.dst, Some(dst));
                    assert_eq!(e.offender, Some(dst.ip()));
                    assert_eq!(e.errno, libc::ECONNREFUSED);
                    // Reading the queue cleared the pending error.
                    assert_eq!(s.send(b"again").unwrap(), 5);
                    return e;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => {}
            }
            assert!(Instant::now() < deadline, "no ICMP error from {dst}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn port_unreachable_v4() {
        let e = icmp_error_for_closed_port(false);
        assert_eq!((e.v6, e.icmp_type, e.icmp_code), (false, 3, 3));
    }

    #[test]
    fn port_unreachable_v6() {
        let e = icmp_error_for_closed_port(true);
        assert_eq!((e.v6, e.icmp_type, e.icmp_code), (true, 1, 4));
    }

    #[test]
    fn empty_error_queue_and_receive_queue() {
        let (a, _b) = pair(true);
        let mut batch = RecvBatch::new(4);
        assert_eq!(a.recv_batch(&mut batch).unwrap(), 0);
        assert!(batch.is_empty());
        assert_eq!(a.take_error_queue(batch.scratch()).unwrap(), None);
    }

    #[test]
    fn reuseaddr_lets_flow_sockets_share_a_port() {
        let a = UdpSocket::open(false).unwrap();
        a.bind("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = UdpSocket::open(false).unwrap();
        b.bind(SocketAddr::from(([0, 0, 0, 0], port))).unwrap();
        assert_eq!(b.local_addr().unwrap().port(), port);
    }
}
