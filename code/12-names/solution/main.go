//go:build linux

//go:debug containermaxprocs=0

// Command 12-names is chapter 7's echo server and client, made independent
// of the protocol: -addr is HOST:SERVICE, a name and a service as people
// write them (localhost:http-alt), not an IP address and a port. The program
// resolves them with Go's net.Resolver, the counterpart of C's getaddrinfo.
// The server listens on every address the name has, one socket each, and
// serves them all from one poll; the client tries each address in turn
// until one connects.
//
//	go run ./code/12-names                                  # serve on every address of localhost:8080
//	go run ./code/12-names -addr localhost:http-alt         # a service name, from /etc/services
//	go run ./code/12-names -client -msg hi                  # try localhost's addresses until one connects
//	go run ./code/12-names -lookup -addr localhost:http-alt # resolve, print, and exit
//	go run ./code/12-names -addr '[::]:8080' -v6only=false  # one socket for IPv6 and IPv4 (dual stack)
//	go run ./code/12-names -q                               # without the narration
//
// This file holds what the chapter is about: resolving a name and a service,
// listening on every address, and serving them all. The rest of the server
// is in server.go, the client in client.go, chapter 7's reads and writes in
// rw.go, Ctrl-C in wake.go, the calls of earlier chapters in socket.go, and
// the narrator in narrate.go.
//
// It needs Linux: it uses accept4 and SOCK_CLOEXEC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr    string // HOST:SERVICE to listen on or connect to
	quiet   bool   // do not narrate system calls
	backlog int    // the backlog argument of listen
	bufsize int    // how many bytes each of the server's reads asks for
	v6only  bool   // set IPV6_V6ONLY on IPv6 listening sockets

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	lookup bool     // only resolve addr and print its addresses

	network string        // "ip", or with -4 "ip4", with -6 "ip6": the families to use
	timeout time.Duration // client: how long each connect may take (0: as long as the kernel tries)
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on (or, with -client, to connect to); the host is a name or an address ([::1] for IPv6), empty for every address; the service is a port number or a name from /etc/services")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.lookup, "lookup", false, "resolve -addr, print its addresses, and exit")
	cfg.network = "ip"
	flag.BoolFunc("4", "use IPv4 addresses only", func(string) error { cfg.network = "ip4"; return nil })
	flag.BoolFunc("6", "use IPv6 addresses only", func(string) error { cfg.network = "ip6"; return nil })
	flag.DurationVar(&cfg.timeout, "timeout", 0, "client: give up on an address after this long and try the next (0: wait for the kernel)")
	flag.Parse()
	if len(cfg.msgs) == 0 {
		cfg.msgs = []string{"hello"}
	}
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its sockets on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the client with -client, the resolver alone with -lookup, else the
// server, which reports to stderr the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	addrs, err := resolve(ctx, n, cfg.addr, cfg.network, !cfg.client)
	switch {
	case err != nil:
		return err
	case cfg.lookup:
		for _, a := range addrs {
			fmt.Fprintf(w, "%s %s\n", domainName(family(a)), a)
		}
		return nil
	case cfg.client:
		return runClient(ctx, cfg, n, w, addrs)
	case cfg.bufsize < 1: // a read into no room at all would return 0, like end of file
		return fmt.Errorf("-bufsize %d: a read needs room for at least 1 byte", cfg.bufsize)
	}
	fds, err := listenAll(n, w, addrs, cfg)
	// Close every listening socket on the way out, the ones made before a
	// failure too.
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	if err != nil {
		return err
	}
	return serveAll(ctx, n, w, stderr, fds, cfg.bufsize)
}

// region resolve
// resolve turns HOST:SERVICE into the socket addresses it names, in the
// order the resolver gives them, which is the order to try them in. C calls
// getaddrinfo; x/sys has no such call, because getaddrinfo is not a system
// call but a library function that reads files (/etc/nsswitch.conf,
// /etc/hosts, /etc/services) and may ask a DNS server. Go's net.Resolver
// does the same work, in Go or, with GODEBUG=netdns=cgo, by calling the C
// library's getaddrinfo.
func resolve(ctx context.Context, n narrator, addr, network string, passive bool) ([]netip.AddrPort, error) {
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
		ips, err = r.LookupNetIP(ctx, network, host)
		n.call(fmt.Sprintf("LookupNetIP(%s, %q)", network, host), addrList(ips), err)
		if err != nil {
			return nil, fmt.Errorf("-addr %s: %w", addr, err)
		}
	}
	var addrs []netip.AddrPort
	for _, ip := range ips {
		// Go's own resolver gives an IPv4 address in its IPv6 form,
		// ::ffff:127.0.0.1; Unmap makes it 127.0.0.1, an AF_INET address.
		ip = ip.Unmap()
		// -4 and -6 hold for addresses given as such, and for the
		// wildcards, as well as for what a lookup found.
		if network == "ip" || (network == "ip4") == ip.Is4() {
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("-addr %s: no %s address", addr, map[string]string{"ip4": "IPv4", "ip6": "IPv6"}[network])
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

// region serveAll
// serveAll serves the clients of every listening socket, one client at a
// time as before. accept4 on one socket would wait there while clients of
// the others queue up, so it first asks poll which sockets have a
// connection waiting: one call that waits on many descriptors, chapter
// 16's subject.
func serveAll(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, bufsize int) error {
	// Ctrl-C shuts down the first listening socket, which wakes poll;
	// the others are closed on the way out.
	stop := wakeOnCancel(ctx, n, fds[0])
	defer stop()
	pfds := make([]unix.PollFd, len(fds))
	for {
		for i, fd := range fds {
			pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		if err := pollAll(n, pfds); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // shutdown woke poll: we are stopping, not failing
		}
		for _, p := range pfds {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			// A connection is waiting, so accept4 returns at once.
			cfd, err := acceptConn(n, int(p.Fd))
			if err != nil {
				return err
			}
			// One client's failure is not the server's: report it and go on.
			if err := serve(ctx, n, w, cfd, bufsize); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
	}
}

// endregion serveAll
