//go:build linux

// Chapter 12's names: resolving HOST:SERVICE and listening on every address
// it names, moved here unchanged from chapter 12's main.go, so that main.go
// holds this chapter's subject, the event loop.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// region resolve
// resolve turns HOST:SERVICE into the socket addresses it names, in the
// order the resolver gives them, which is the order to try them in. C calls
// getaddrinfo; x/sys has no such call, because getaddrinfo is not a system
// call but a library function that reads files (/etc/nsswitch.conf,
// /etc/hosts, /etc/services) and may ask a DNS server. Go's net.Resolver
// does the same work, in Go or, with GODEBUG=netdns=cgo, by calling the C
// library's getaddrinfo.
func resolve(ctx context.Context, n narrator, addr string, passive bool) ([]netip.AddrPort, error) {
	host, service, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: want HOST:SERVICE: %w", addr, err)
	}
	var r net.Resolver
	port, err := r.LookupPort(ctx, "tcp", service)
	n.call(fmt.Sprintf("LookupPort(tcp, %q)", service), strconv.Itoa(port), err)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: %w", addr, err)
	}
	var ips []netip.Addr
	switch {
	case host == "" && passive:
		// No host: every address of the machine, as getaddrinfo gives
		// for a NULL host with AI_PASSIVE: [::] and 0.0.0.0.
		ips = []netip.Addr{netip.IPv6Unspecified(), netip.IPv4Unspecified()}
	case host == "":
		return nil, fmt.Errorf("-addr %s: a client needs a host to connect to", addr)
	default:
		// An address needs no lookup (AI_NUMERICHOST, in C's terms).
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
			break
		}
		ips, err = r.LookupNetIP(ctx, "ip", host)
		n.call(fmt.Sprintf("LookupNetIP(ip, %q)", host), addrList(ips), err)
		if err != nil {
			return nil, fmt.Errorf("-addr %s: %w", addr, err)
		}
	}
	addrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		// Go's own resolver gives an IPv4 address in its IPv6 form,
		// ::ffff:127.0.0.1; Unmap makes it 127.0.0.1, an AF_INET address.
		addrs[i] = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return addrs, nil
}

// endregion resolve

// region listenAll
// listenAll makes one listening socket for each address, in order: each
// socket has one family and one address. It prints "listening on ADDR"
// for each. With port 0 the kernel picks the first socket's port, and the
// others take the same one, so that one port serves every address.
// CS:APP's open_listenfd stops at the first address that works; a client
// that tries another (::1 where the server took 127.0.0.1) is refused.
func listenAll(n narrator, w io.Writer, addrs []netip.AddrPort, cfg config) ([]int, error) {
	var fds []int
	var port uint16 // the port the first socket got
	for _, a := range addrs {
		if a.Port() == 0 && port != 0 {
			a = netip.AddrPortFrom(a.Addr(), port)
		}
		fd, bound, err := listenOn(n, w, a, cfg)
		if err != nil {
			return fds, err
		}
		fds, port = append(fds, fd), bound.Port()
	}
	return fds, nil
}

// endregion listenAll
