//go:build grade && linux

// The graders of chapter 3's exercises. Each runs the program as real
// processes (the chapter's own, or the copy BOOK_PROGRAM names), several at
// once where the exercise is about two sockets and one address, and reads
// what they printed: the narration of each call, with its result, and the
// "bound to ADDR" line. So it grades any copy of the program, whatever its
// code. Run them with
//
//	go run ./tools/grade 03
//	go run ./tools/grade -program DIR 03
//
// Exercise 1 changes no code (it is about reading what the program already
// prints), so it is checked by hand. Every copy the graders start binds
// 127.0.0.1 port 0 or a port another copy holds, never a fixed one, and
// every wait is bounded by waitLimit.
package grade

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own. The program binds or
// fails within milliseconds; only a broken one comes near it. BOOK_WAIT
// shortens it, as it does booktest's, for the tests of the grader itself.
var waitLimit = 15 * time.Second

func init() {
	if d, err := time.ParseDuration(os.Getenv("BOOK_WAIT")); err == nil && d > 0 {
		waitLimit = d
	}
}

// Exercise 2: after bind the program reads SO_REUSEADDR back with
// getsockopt and narrates it: 1 by default, 0 with -reuseaddr=false.
func TestExercise2ShowTheOption(t *testing.T) {
	t.Parallel() // each copy binds its own port, or one a copy of its test holds
	s := booktest.NewGrader(t)
	// Two copies, each on a port of its own, both held until checked.
	withOpt := start(t, s, "-addr", "127.0.0.1:0")
	without := start(t, s, "-reuseaddr=false", "-addr", "127.0.0.1:0")
	for _, c := range []struct {
		run  *run
		want string
	}{{withOpt, "1"}, {without, "0"}} {
		r := c.run
		if r.bound == "" || r.ended {
			t.Fatalf("%s the program did not bind and hold its socket (%s), as it did before the exercise; its output:\n%s",
				r.with(), r.how(), r.out())
		}
		// The program goes on to hold the socket whatever it prints after
		// "bound to": Ctrl-C lets it finish, and then its output is whole.
		r.p.Interrupt()
		out := r.out()
		fd, bindAt := bound(out)
		if bindAt < 0 {
			t.Fatalf("%s the narration has no socket(...) = N line followed by bind(N, ...) = 0; its output:\n%s", r.with(), out)
		}
		want := fmt.Sprintf("getsockopt(%s, SOL_SOCKET, SO_REUSEADDR) = %s", fd, c.want)
		at, got := find(`getsockopt\((\d+), SOL_SOCKET, SO_REUSEADDR\) = (.*)`, out)
		switch {
		case at < 0:
			t.Fatalf("%s the program printed no line %q: after bind, read the option with unix.GetsockoptInt and narrate the call like the others; its output:\n%s",
				r.with(), want, out)
		case at < bindAt:
			t.Errorf("%s the program reads SO_REUSEADDR before bind, want after it; its output:\n%s", r.with(), out)
		case got[0] != fd:
			t.Errorf("%s the program printed\n  %s\nwant the option of the bound socket, %s:\n  %s", r.with(), line(out, at), fd, want)
		case got[1] != c.want:
			t.Errorf("%s the program printed\n  %s\nwant\n  %s\nprint what unix.GetsockoptInt returns: the kernel's answer, not the flag's; its output:\n%s",
				r.with(), line(out, at), want, out)
		}
	}
}

// Exercise 3: a zoned link-local address, [fe80::1%lo]:0, reaches bind
// with the zone's interface index in ZoneId. Without root fe80::1 is on no
// interface, so bind fails with EADDRNOTAVAIL: the kernel checked the
// interface and the address, which it does only once the zone is there
// (without one it says EINVAL first). Where another interface has a
// link-local address, the program must bind it with that interface's name
// as the zone, and be refused it with lo's.
func TestExercise3Zones(t *testing.T) {
	t.Parallel() // each copy binds its own port, or one a copy of its test holds
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Fatalf("this machine has no IPv6 (%v), so exercise 3 cannot be graded here: check it by hand", err)
	} else {
		l.Close()
	}
	s := booktest.NewGrader(t)

	// Without a zone, as before the exercise: EINVAL.
	r := start(t, s, "-addr", "[fe80::1]:0")
	if errno, ok := bindResult(t, r); !ok || errno != "EINVAL" {
		t.Errorf("%s bind should fail with EINVAL, as it did before the exercise: a link-local address needs a zone; %s; its output:\n%s",
			r.with(), r.bindText(), r.out())
	}

	// The chapter's own example: the zone must reach the kernel.
	r = start(t, s, "-addr", "[fe80::1%lo]:0")
	errno, ok := bindResult(t, r)
	switch {
	case !ok:
		t.Fatalf("%s the program never calls bind (no bind(N, ...) line), want it to: make sockaddr accept the zone instead of refusing it; its output:\n%s",
			r.with(), r.out())
	case errno == "EINVAL":
		t.Fatalf("%s bind fails with EINVAL, the error of a link-local address without a zone: look the zone up with net.InterfaceByName and put its Index in the SockaddrInet6's ZoneId; its output:\n%s",
			r.with(), r.out())
	case errno == "ENODEV":
		t.Fatalf("%s bind fails with ENODEV: the ZoneId is no interface's index; use the Index of the net.InterfaceByName(\"lo\") result; its output:\n%s",
			r.with(), r.out())
	case errno != "" && errno != "EADDRNOTAVAIL":
		t.Fatalf("%s bind fails with %s, want success where fe80::1 is on lo or else EADDRNOTAVAIL (the zone was accepted, the address is not there); its output:\n%s",
			r.with(), errno, r.out())
	case errno == "" && (r.bound == "" || r.ended):
		t.Fatalf("%s bind succeeded but the program did not print \"bound to ADDR\" and hold the socket (%s); its output:\n%s", r.with(), r.how(), r.out())
	}

	// A link-local address this machine has, on an interface other than lo.
	addr, iface := linkLocal()
	if addr == "" {
		t.Log("this machine has no link-local address outside lo, so only [fe80::1%lo] was tried")
		return
	}
	zoned := netip.AddrPortFrom(netip.MustParseAddr(addr).WithZone(iface), 0).String()
	r = start(t, s, "-addr", zoned)
	if errno, ok := bindResult(t, r); !ok || errno != "" || r.bound == "" || r.ended {
		t.Errorf("%s (an address of %s here) the program should bind and hold the socket, %s: the zone %q names the interface that has the address, so ZoneId must be its index; its output:\n%s",
			r.with(), iface, r.bindText(), iface, r.out())
	}
	wrong := netip.AddrPortFrom(netip.MustParseAddr(addr).WithZone("lo"), 0).String()
	r = start(t, s, "-addr", wrong)
	if errno, ok := bindResult(t, r); !ok || errno != "EADDRNOTAVAIL" {
		t.Errorf("%s bind should fail with EADDRNOTAVAIL: %s is %s's address, not lo's, and the zone decides the interface; %s; its output:\n%s",
			r.with(), addr, iface, r.bindText(), r.out())
	}
}

// Exercise 4: -reuseport sets SO_REUSEPORT before bind. Two copies with
// -reuseport -reuseaddr=false bind the same port; a copy without it is
// refused that port (EADDRINUSE), and so is a copy with it when the first
// had none.
func TestExercise4APortOfOnesOwn(t *testing.T) {
	t.Parallel() // each copy binds its own port, or one a copy of its test holds
	s := booktest.NewGrader(t)
	first := start(t, s, "-reuseport", "-reuseaddr=false", "-addr", "127.0.0.1:0")
	if first.bound == "" || first.ended {
		t.Fatalf("%s the program did not bind and hold its socket (%s); its output:\n%s", first.with(), first.how(), first.out())
	}
	out := first.out()
	fd, bindAt := bound(out)
	if at, got := find(`setsockopt\((\d+), SOL_SOCKET, SO_REUSEPORT, 1\) = 0`, out); at < 0 || at > bindAt || got[0] != fd {
		t.Errorf("%s the narration has no line %q before bind: set SO_REUSEPORT before bind, and narrate it like SO_REUSEADDR; its output:\n%s",
			first.with(), fmt.Sprintf("setsockopt(%s, SOL_SOCKET, SO_REUSEPORT, 1) = 0", fd), out)
	}

	second := start(t, s, "-reuseport", "-reuseaddr=false", "-addr", first.bound)
	if second.bound == "" || second.ended {
		t.Errorf("a second copy %s, while the first holds the port, should bind it too, as both set SO_REUSEPORT; %s; its output:\n%s",
			second.with(), second.bindText(), second.out())
	}

	// One with the option and one without: whichever binds second is refused.
	without := start(t, s, "-reuseaddr=false", "-addr", first.bound)
	if errno, _ := bindResult(t, without); errno != "EADDRINUSE" {
		t.Errorf("a copy %s, without -reuseport, should be refused the port the -reuseport copies hold (EADDRINUSE): SO_REUSEPORT must be set only with -reuseport; %s; its output:\n%s",
			without.with(), without.bindText(), without.out())
	}
	plain := start(t, s, "-reuseaddr=false", "-addr", "127.0.0.1:0")
	if plain.bound == "" || plain.ended {
		t.Fatalf("%s the program did not bind and hold its socket (%s); its output:\n%s", plain.with(), plain.how(), plain.out())
	}
	late := start(t, s, "-reuseport", "-reuseaddr=false", "-addr", plain.bound)
	if errno, _ := bindResult(t, late); errno != "EADDRINUSE" {
		t.Errorf("a copy %s should be refused a port a copy without -reuseport holds (EADDRINUSE): every socket on the port must have set SO_REUSEPORT; %s; its output:\n%s",
			late.with(), late.bindText(), late.out())
	}
}

// A run is one copy of the program, once it has bound (and holds its
// socket) or ended.
type run struct {
	p     *booktest.Proc
	args  []string
	bound string // the address of its "bound to ADDR" line, if any
	ended bool   // it exited (and p.ExitCode is its status)
}

var (
	boundRE = regexp.MustCompile(`(?m)^bound to (\S+)$`)
	flagRE  = regexp.MustCompile(`flag provided but not defined: (\S+)`)
	bindRE  = regexp.MustCompile(`(?m)^bind\((\d+), .*\) = (0|-1 (E[A-Z0-9]+).*)$`)
)

// start starts the program with args and waits until it prints "bound to
// ADDR" (it then holds its socket until the test ends) or until it ends.
// A flag the program does not know yet fails the test at once.
func start(t *testing.T, s *booktest.Session, args ...string) *run {
	t.Helper()
	r := &run{p: s.Spawn("terminal", args...), args: args}
	deadline := time.Now().Add(waitLimit)
	for {
		if m := boundRE.FindStringSubmatch(r.out()); m != nil {
			r.bound = m[1]
			return r
		}
		if exited(r.p) {
			r.p.Wait() // at once: it has exited; and now its output is whole
			r.ended = true
			if m := flagRE.FindStringSubmatch(r.out()); m != nil {
				t.Fatalf("the program has no %s flag yet: %s it printed %q", m[1], r.with(), m[0])
			}
			if m := boundRE.FindStringSubmatch(r.out()); m != nil {
				r.bound = m[1]
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s the program has neither printed \"bound to ADDR\" nor ended after %v; its output:\n%s", r.with(), waitLimit, r.out())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exited reports whether the process has exited: it is a zombie not yet
// reaped, or already gone. booktest reaps it at once, so Wait then
// returns at once.
func exited(p *booktest.Proc) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return true
	}
	// "PID (COMMAND) STATE ...": the command may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func (r *run) out() string { return r.p.Output() }

// with says how the copy was run, to start a message.
func (r *run) with() string { return "with " + strings.Join(r.args, " ") }

// how says whether the copy still runs or how it ended.
func (r *run) how() string {
	if !r.ended {
		return "it still runs"
	}
	return fmt.Sprintf("it exited with status %d", r.p.ExitCode())
}

// bindText says what became of the copy's bind, for a message.
func (r *run) bindText() string {
	m := bindRE.FindStringSubmatch(r.out())
	switch {
	case m == nil:
		return "it never called bind (no bind(N, ...) line), and " + r.how()
	case m[2] == "0" && r.bound != "" && !r.ended:
		return "it bound " + r.bound + " and holds it"
	default:
		return fmt.Sprintf("it printed %q, and %s", m[0], r.how())
	}
}

// bindResult returns the errno name of the copy's first narrated bind, ""
// if it succeeded, and false if there is no bind line. A failed bind must
// end the program.
func bindResult(t *testing.T, r *run) (errno string, ok bool) {
	t.Helper()
	m := bindRE.FindStringSubmatch(r.out())
	if m == nil {
		return "", false
	}
	if m[3] != "" && !r.ended {
		t.Fatalf("%s bind failed (%s) but the program goes on running, want it to exit with status 1; its output:\n%s", r.with(), m[3], r.out())
	}
	return m[3], true
}

// bound returns the descriptor of the socket the narration shows created
// and bound, and where its bind line starts in out; -1 if there is none.
func bound(out string) (fd string, at int) {
	_, sock := find(`socket\(.*\) = (\d+)`, out)
	if sock == nil {
		return "", -1
	}
	at, _ = find(`bind\(`+sock[0]+`, .*\) = 0`, out)
	return sock[0], at
}

// linkLocal returns a link-local IPv6 address of an interface other than
// lo, and the interface's name, if this machine has one that a socket can
// bind (the grader tries it first); else "", "".
func linkLocal() (addr, iface string) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", ""
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.To4() != nil || !n.IP.IsLinkLocalUnicast() {
				continue
			}
			l, err := net.Listen("tcp6", net.JoinHostPort(n.IP.String()+"%"+ifi.Name, "0"))
			if err != nil {
				continue // still tentative, say
			}
			l.Close()
			return n.IP.String(), ifi.Name
		}
	}
	return "", ""
}

// find returns where the first whole line matching pattern starts in out,
// and its groups; -1 if there is none.
func find(pattern, out string) (int, []string) {
	m := regexp.MustCompile(`(?m)^` + pattern + `$`).FindStringSubmatchIndex(out)
	if m == nil {
		return -1, nil
	}
	var groups []string
	for i := 2; i < len(m); i += 2 {
		groups = append(groups, out[m[i]:m[i+1]])
	}
	return m[0], groups
}

// line returns the line of out that starts at i.
func line(out string, i int) string {
	l, _, _ := strings.Cut(out[i:], "\n")
	return l
}
