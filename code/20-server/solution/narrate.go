//go:build linux

// This file is the same in every chapter's program from chapter 2 on: the
// narrator that prints each system call the way strace shows it, and the
// names it gives to numbers. Nothing here is a chapter's subject.

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// narrator prints each system call the way strace shows it, unless quiet.
type narrator struct {
	w     io.Writer
	quiet bool
	mu    *sync.Mutex // one line at a time, from any goroutine
}

func newNarrator(w io.Writer, quiet bool) narrator {
	return narrator{w: w, quiet: quiet, mu: new(sync.Mutex)}
}

// call prints "call = result", or for a failure "call = -1 ENAME (Message)".
func (n narrator) call(call, result string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.print(call, result, err)
}

// print is call for a caller that already holds n.mu.
func (n narrator) print(call, result string, err error) {
	if n.quiet {
		return
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		result = fmt.Sprintf("-1 %s (%s%s)", unix.ErrnoName(errno), strings.ToUpper(msg[:1]), msg[1:])
	}
	fmt.Fprintf(n.w, "%s = %s\n", call, result)
}

// addrString shows a socket address the way this book writes them.
func addrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		// For a socket with no name the kernel returns only the family,
		// which x/sys shows as "@", the prefix of an abstract name.
		if a.Name == "" || a.Name == "@" {
			return "(unnamed)"
		}
		return a.Name
	}
	return "?" // no address, as when a call failed
}

func domainName(d int) string {
	return lookup(d, map[int]string{unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6"})
}

func typeName(t int) string {
	if t&unix.SOCK_NONBLOCK != 0 {
		return typeName(t&^unix.SOCK_NONBLOCK) + "|SOCK_NONBLOCK"
	}
	return lookup(t, map[int]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM"})
}

// protoName names the IP protocols. An AF_UNIX socket reports protocol 0:
// it has no protocols to choose between.
func protoName(p int) string {
	return lookup(p, map[int]string{unix.IPPROTO_TCP: "IPPROTO_TCP", unix.IPPROTO_UDP: "IPPROTO_UDP"})
}

// lookup is the C name of v, or v itself if this program does not know one.
func lookup(v int, names map[int]string) string {
	if name, ok := names[v]; ok {
		return name
	}
	return strconv.Itoa(v)
}
