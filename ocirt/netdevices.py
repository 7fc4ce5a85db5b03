"""linux.netDevices: move host network devices into the container's network
namespace over rtnetlink (config-linux.md, Network Devices).

`create` calls move() at the hooks step: the container's init then exists in
its network namespace and waits, and the prestart and createRuntime hooks
run after, with the devices in place. Every device is checked first (on the
host, its new name free in the container), so a refused config moves none.

There is no move back, on delete or on a failed create: the spec says the
runtime MUST NOT move a device out before deletion, and when the namespace
is freed the kernel itself returns physical devices to the host and
destroys virtual ones. Imported only when a config has netDevices."""
import os
import socket
import struct

from ocirt.errors import OcirtError, jpath

NETLINK_ROUTE, SOL_NETLINK, NETLINK_EXT_ACK = 0, 270, 11
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x300, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # flags of an error message
NLMSGERR_ATTR_MSG = 1
NLA_TYPE_MASK = 0x3FFF  # without the nested / byte-order bits
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_PROP_LIST, IFLA_ALT_IFNAME = 3, 28, 52, 53
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS, IFA_RT_PRIORITY, IFA_PROTO = 1, 2, 4, 8, 9, 11
# An address's attributes copied as they are. Not IFA_LABEL: it starts with the
# device's host name; the kernel labels a new address with the device's name.
ADDR_COPY = (IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_RT_PRIORITY, IFA_PROTO)
IFA_F_PERMANENT = 0x80
# nodad, homeaddress, mngtmpaddr, noprefixroute, autojoin: the flags one may ask
# for; the others are the kernel's (secondary, tentative, permanent...).
IFA_F_SETTABLE = 0x02 | 0x10 | 0x100 | 0x200 | 0x400
RT_SCOPE_UNIVERSE = 0
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000

NLMSGHDR = struct.Struct("=IHHII")   # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")   # family, prefixlen, flags, scope, index
RTATTR = struct.Struct("=HH")        # len, type
U32 = struct.Struct("=I")


# ---- messages (pure)

def message(kind, flags, seq, body):
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body


def messages(buf):
    """(type, flags, seq, payload) of each netlink message in a datagram."""
    off = 0
    while off + NLMSGHDR.size <= len(buf):
        n, kind, flags, seq, _ = NLMSGHDR.unpack_from(buf, off)
        if n < NLMSGHDR.size:
            return
        yield kind, flags, seq, buf[off + NLMSGHDR.size:off + n]
        off += (n + 3) & ~3


def attr(kind, payload):
    n = RTATTR.size + len(payload)
    return RTATTR.pack(n, kind) + payload + b"\0" * (-n % 4)


def attrs(buf):
    """(type, payload) of each attribute in a run of rtattrs."""
    off = 0
    while off + RTATTR.size <= len(buf):
        n, kind = RTATTR.unpack_from(buf, off)
        if n < RTATTR.size:
            return
        yield kind & NLA_TYPE_MASK, buf[off + RTATTR.size:off + n]
        off += (n + 3) & ~3


def error_of(flags, payload):
    """(errno, the kernel's extended-ack text) of an NLMSG_ERROR; errno 0 is an ack."""
    err = -struct.unpack_from("=i", payload)[0]
    text = ""
    if err and flags & NLM_F_ACK_TLVS:
        # the request comes back after the errno: its header only when capped
        off = 4 + (NLMSGHDR.size if flags & NLM_F_CAPPED else NLMSGHDR.unpack_from(payload, 4)[0])
        for kind, value in attrs(payload[off:]):
            if kind == NLMSGERR_ATTR_MSG:
                text = _cstr(value)
    return err, text


def links(payloads):
    """{index: [name, altnames...]} of RTM_NEWLINK payloads."""
    out = {}
    for p in payloads:
        names = []
        for kind, value in attrs(p[IFINFOMSG.size:]):
            if kind == IFLA_IFNAME:
                names.insert(0, _cstr(value))
            elif kind == IFLA_PROP_LIST:
                names += [_cstr(v) for k, v in attrs(value) if k == IFLA_ALT_IFNAME]
        out[IFINFOMSG.unpack_from(p)[2]] = names
    return out


def permanent_addresses(payloads, index):
    """What the spec says moves with device `index`: its permanent addresses of
    global scope, of any family, from RTM_NEWADDR payloads, as
    (family, prefixlen, flags, [(attribute type, payload)])."""
    found = []
    for p in payloads:
        family, prefixlen, flags, scope, ifindex = IFADDRMSG.unpack_from(p)
        if ifindex != index or scope != RT_SCOPE_UNIVERSE:
            continue
        at = list(attrs(p[IFADDRMSG.size:]))
        flags = next((U32.unpack(v)[0] for k, v in at if k == IFA_FLAGS), flags)  # all 32 bits
        if flags & IFA_F_PERMANENT:
            found.append((family, prefixlen, flags, [(k, v) for k, v in at if k in ADDR_COPY]))
    return found


def newaddr_body(addr, index):
    """RTM_NEWADDR body re-creating `addr` on device `index`."""
    family, prefixlen, flags, at = addr
    flags &= IFA_F_SETTABLE
    return (IFADDRMSG.pack(family, prefixlen, flags & 0xFF, RT_SCOPE_UNIVERSE, index)
            + b"".join(attr(k, v) for k, v in at) + attr(IFA_FLAGS, U32.pack(flags)))


def address_text(addr):
    family, prefixlen, _, at = addr
    value = dict(at)
    return f"{socket.inet_ntop(family, value.get(IFA_LOCAL, value.get(IFA_ADDRESS)))}/{prefixlen}"


def move_body(index, nsfd, name):
    """RTM_NEWLINK body moving device `index` to the netns of `nsfd`, named `name`
    there (a %d template: the kernel picks a free name)."""
    return IFINFOMSG.pack(0, 0, index, 0, 0) + attr(IFLA_NET_NS_FD, U32.pack(nsfd)) \
        + attr(IFLA_IFNAME, name.encode() + b"\0")


def up_body(index):
    return IFINFOMSG.pack(0, 0, index, IFF_UP, IFF_UP)


def named(name, target):
    """Is `name` what the kernel makes of `target` (a name, or a %d template)?"""
    if "%d" not in target:
        return name == target
    head, tail = target.split("%d")
    middle = name[len(head):len(name) - len(tail)]
    return name.startswith(head) and name.endswith(tail) and middle.isdigit()


def _cstr(value):
    return value.split(b"\0", 1)[0].decode(errors="replace")


# ---- sockets

class NetlinkError(Exception):
    def __init__(self, errno, text):
        super().__init__(os.strerror(errno).lower() + (f" ({text})" if text else ""))


class Rtnl:
    """A NETLINK_ROUTE socket, bound to the network namespace it was made in."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.seq = 0

    def ask(self, kind, body, flags=NLM_F_ACK):
        """One request; the payloads answering it. NetlinkError if refused."""
        self.seq += 1
        self.sock.send(message(kind, flags, self.seq, body))
        out = []
        while True:
            for mkind, mflags, seq, payload in messages(self.sock.recv(1 << 16)):
                if seq != self.seq:
                    continue
                if mkind == NLMSG_DONE:
                    return out
                if mkind == NLMSG_ERROR:
                    err, text = error_of(mflags, payload)
                    if err:
                        raise NetlinkError(err, text)
                    return out
                out.append(payload)

    def links(self):
        return links(self.ask(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0), NLM_F_DUMP))

    def close(self):
        self.sock.close()


def _rtnl_in(nsfd):
    """A socket of the container's network namespace: made there, it stays
    bound to it once this (only) thread is back in the runtime's own."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(nsfd)
        try:
            return Rtnl()
        finally:
            _setns(own)
    finally:
        os.close(own)


def _setns(fd):
    import ctypes  # os.setns is Python 3.12+
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        err = os.strerror(ctypes.get_errno()).lower()
        raise OcirtError(f"cannot enter a network namespace: {err}", "linux.netDevices")


# ---- the move

def move(devices, pid):
    """Move linux.netDevices ({host name: {"name": new name}}) into the network
    namespace of process `pid` (the container's init)."""
    try:
        nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise OcirtError(f"cannot open the container's network namespace: {e.strerror.lower()}",
                         "linux.netDevices") from None
    host = ctr = None
    try:
        st, own = os.fstat(nsfd), os.stat("/proc/thread-self/ns/net")
        if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
            # joined by path: the kernel would not move the devices, only rename them on the host
            raise OcirtError("the container's network namespace is the host's: there is nowhere to "
                             "move devices to", "linux.netDevices")
        host, ctr = Rtnl(), _rtnl_in(nsfd)
        known = ctr.links()
        addrs = host.ask(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0), NLM_F_DUMP)
        # Fixed names first: a %d template then cannot take one asked for later.
        order = sorted(devices.items(), key=lambda kv: "%d" in (kv[1].get("name") or ""))
        todo = [_check(name, dev, known, addrs) for name, dev in order]
        for where, index, target, device_addrs in todo:
            known = _move(host, ctr, nsfd, known, where, index, target, device_addrs)
    finally:
        for s in (host, ctr):
            if s is not None:
                s.close()
        os.close(nsfd)


def _check(name, dev, known, addrs):
    """Can device `name` move? (where, its host index, its name in the container,
    its addresses)."""
    where = jpath("linux.netDevices", name)
    try:
        index = socket.if_nametoindex(name)
    except OSError:
        raise OcirtError("no network device of this name on the host", where) from None
    target = dev.get("name") or name
    if "%d" not in target and any(target in names for names in known.values()):
        raise OcirtError(f'a network device named "{target}" already exists in the container\'s '
                         "network namespace", jpath(where, "name") if dev.get("name") else where)
    return where, index, target, permanent_addresses(addrs, index)


def _move(host, ctr, nsfd, known, where, index, target, addrs):
    """Move, rename, re-add the addresses (moving flushes them), set up. The
    container's links after the move."""
    _ask(host, where, "cannot move it into the container's network namespace",
         RTM_NEWLINK, move_body(index, nsfd, target))
    now = ctr.links()
    new = [i for i, names in now.items() if i not in known and names and named(names[0], target)]
    if len(new) != 1:
        raise OcirtError(f'moved, but no new device named "{target}" in the container', where)
    for a in addrs:
        _ask(ctr, where, f"cannot add address {address_text(a)}", RTM_NEWADDR,
             newaddr_body(a, new[0]), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    _ask(ctr, where, "cannot set it up", RTM_NEWLINK, up_body(new[0]))
    return now


def _ask(rtnl, where, what, kind, body, flags=NLM_F_ACK):
    try:
        return rtnl.ask(kind, body, flags)
    except NetlinkError as e:
        raise OcirtError(f"{what}: {e}", where) from None
