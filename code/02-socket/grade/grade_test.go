//go:build grade && linux

// The graders of chapter 2's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) and reads what
// it printed: its narration, its table, its /proc/self/fd listing and what
// the ls it starts prints. So it grades any copy of the program, whatever its
// code. Run them with
//
//	go run ./tools/grade 02
//	go run ./tools/grade -program DIR 02
//
// The program's //go:debug containermaxprocs=0 line makes its first socket
// 3 on every machine; the graders still read descriptor numbers from the
// narration rather than assume them (a student may have removed the line). Every run is bounded by booktest's own limits.
package grade

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// Exercise 1: a seventh socket, (AF_UNIX, SOCK_SEQPACKET), in the table
// with its type's name, and closed like the others.
func TestExercise1OneMoreKind(t *testing.T) {
	out := runOK(t)
	rows, start, end := table(t, out)
	if len(rows) != 7 {
		t.Fatalf("the table has %d rows, want 7: the six kinds and (AF_UNIX, SOCK_SEQPACKET); the table:\n%s", len(rows), out[start:end])
	}
	want := []string{"1 (AF_UNIX)", "5 (SOCK_SEQPACKET)", "0", "FD_CLOEXEC", "(unnamed)"}
	var row []string
	for _, r := range rows {
		if len(r) > 2 && (r[2] == "5" || strings.HasPrefix(r[2], "5 ")) {
			row = r
		}
	}
	switch {
	case row == nil:
		t.Fatalf("no row of the table has SO_TYPE 5 (SOCK_SEQPACKET): add (AF_UNIX, SOCK_SEQPACKET) to kinds; the table:\n%s", out[start:end])
	case row[2] == "5":
		t.Fatalf("the SOCK_SEQPACKET row shows SO_TYPE as %q, want %q: give the type its name (wrap narrate.go's typeName); the row:\n%s",
			row[2], want[1], strings.Join(row, "  "))
	case !slices.Equal(row[1:], want):
		t.Fatalf("the SOCK_SEQPACKET row is\n  %s\nwant\n  %s  %s",
			strings.Join(row, "  "), row[0], strings.Join(want, "  "))
	}
	// Every socket in the table is closed once the table is printed.
	after := out[end:]
	for _, r := range rows {
		if !hasLine(after, "close("+r[0]+") = 0") {
			t.Errorf("socket %s (%s) is never closed: no line %q after the table; the output after it:\n%s",
				r[0], r[2], "close("+r[0]+") = 0", after)
		}
	}
}

// Exercise 2: the program runs ls -l /proc/self/fd before it closes its
// sockets; with -leak (no SOCK_CLOEXEC) ls's table holds the sockets,
// without it only 0, 1, 2 and the directory ls reads.
func TestExercise2WatchALeak(t *testing.T) {
	leaky := runOK(t, "-leak")
	entries := lsEntries(leaky)
	if len(entries) == 0 {
		t.Fatalf("with -leak the program printed no ls -l /proc/self/fd listing (lines such as %q); its output:\n%s",
			"lrwx------ 1 user user 64 Jan 1 00:00 3 -> socket:[12345]", leaky)
	}
	var sockets []string
	for _, e := range entries {
		if strings.HasPrefix(e.target, "socket:[") {
			sockets = append(sockets, e.String())
		}
	}
	if len(sockets) < 6 {
		t.Errorf("with -leak ls lists %d sockets in its own table, want the program's six (created without SOCK_CLOEXEC, and run ls before closing them); ls printed:\n%s",
			len(sockets), lsText(entries))
	}

	clean := runOK(t)
	entries = lsEntries(clean)
	if len(entries) == 0 {
		t.Fatalf("without -leak the program printed no ls -l /proc/self/fd listing: run ls either way, so that the two can be compared; its output:\n%s", clean)
	}
	var extra []string
	dirs := 0
	for _, e := range entries {
		switch {
		case e.fd <= 2:
		case dirs == 0 && procFD.MatchString(e.target):
			dirs++ // the directory ls itself is reading
		default:
			extra = append(extra, e.String())
		}
	}
	if len(extra) > 0 {
		t.Errorf("without -leak ls's table should hold only 0, 1, 2 and the directory it reads, but it also has\n  %s\nsomething reached ls without close-on-exec: a socket made without SOCK_CLOEXEC, or a copy made by dup; ls printed:\n%s",
			strings.Join(extra, "\n  "), lsText(entries))
	}
}

// Exercise 3: -limit N lowers the soft RLIMIT_NOFILE to N; the program
// creates sockets until EMFILE, prints the last number it got, closes them
// all and exits with status 0. With -q that line is all it adds.
func TestExercise3HitTheLimit(t *testing.T) {
	out := runOK(t, "-limit", "20")
	checkLimitLine(t, out, 20, "-limit 20")
	// Every socket the narration shows opening, it shows closing.
	open := map[string]bool{}
	for _, m := range narrationRE.FindAllStringSubmatch(out, -1) {
		switch {
		case m[1] == "socket" && isDescriptor(m[3]):
			open[m[3]] = true
		case m[1] == "close" && m[3] == "0":
			delete(open, m[2])
		}
	}
	if len(open) > 0 {
		var fds []int
		for fd := range open {
			n, _ := strconv.Atoi(fd)
			fds = append(fds, n)
		}
		slices.Sort(fds)
		_, _, end := table(t, out)
		t.Errorf("with -limit 20 the program never closes sockets %v (no close(N) = 0 after their socket(...) = N): close them all; its output after the table:\n%s", fds, out[end:])
	}

	// Another limit, so that the answer is computed, not printed; and -q.
	out = runOK(t, "-q", "-limit", "32")
	checkLimitLine(t, out, 32, "-q -limit 32")
	if m := narrationRE.FindString(out); m != "" {
		t.Errorf("with -q -limit 32 the program narrates system calls (%q): -q must keep its output short; its output:\n%s", m, out)
	}
}

// Exercise 4: dup and F_DUPFD_CLOEXEC make two more descriptors for the
// first socket; the listing shows all three as the same socket; F_GETFD is
// 0 for the dup copy and FD_CLOEXEC for the other; after the original is
// closed, SO_PROTOCOL through a copy is still 6.
func TestExercise4TwoNumbersOneSocket(t *testing.T) {
	out := runOK(t)
	m := regexp.MustCompile(`(?m)^socket\(.*\) = (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the narration has no socket(...) = N line; the output:\n%s", out)
	}
	first := m[1]

	_, _, end := table(t, out)
	dupAt, dupArgs := find(`dup\((\d+)\) = (\d+)`, out)
	if dupAt < 0 {
		t.Fatalf("no line dup(%s) = N: after the table, unix.Dup the first socket and narrate the call; the output after the table:\n%s", first, out[end:])
	}
	fdupAt, fdupArgs := find(`fcntl\((\d+), F_DUPFD_CLOEXEC(?:, \d+)?\) = (\d+)`, out)
	if fdupAt < 0 {
		t.Fatalf("no line fcntl(%s, F_DUPFD_CLOEXEC, 0) = N: copy the first socket with F_DUPFD_CLOEXEC too and narrate the call; the output after the table:\n%s", first, out[end:])
	}
	for _, c := range []struct{ call, arg string }{{"dup", dupArgs[0]}, {"F_DUPFD_CLOEXEC", fdupArgs[0]}} {
		if c.arg != first {
			t.Fatalf("%s copied descriptor %s, want the first socket, %s; the output:\n%s", c.call, c.arg, first, out)
		}
	}
	dup, dupCloexec := dupArgs[1], fdupArgs[1]
	if dupAt < end || fdupAt < end {
		t.Errorf("the copies are made before the table is printed, want after it; the output:\n%s", out)
	}

	// Close-on-exec belongs to the descriptor: dup does not copy it.
	for _, c := range []struct{ fd, want string }{{dup, "0"}, {dupCloexec, "FD_CLOEXEC"}} {
		at, got := find(`fcntl\(`+c.fd+`, F_GETFD\) = (.*)`, out)
		if at < 0 {
			t.Errorf("no line fcntl(%s, F_GETFD) = ...: query (and narrate) the flags of both copies; the output:\n%s", c.fd, out)
		} else if got[0] != c.want {
			t.Errorf("fcntl(%s, F_GETFD) = %s, want %s", c.fd, got[0], c.want)
		}
	}

	// One socket, three descriptors, in the listing.
	listing := ownListing(out)
	if listing == nil {
		t.Fatalf("no /proc/self/fd: listing in the output:\n%s", out)
	}
	socket, ok := listing[first]
	if !ok {
		t.Fatalf("the /proc/self/fd listing has no descriptor %s, the first socket: list the descriptors before closing it; the output after the table:\n%s", first, out[end:])
	}
	if !strings.HasPrefix(socket, "socket:[") {
		t.Fatalf("the listing shows %s -> %s, want socket:[INODE]; the output after the table:\n%s", first, socket, out[end:])
	}
	for _, fd := range []string{dup, dupCloexec} {
		if got, ok := listing[fd]; !ok {
			t.Errorf("the /proc/self/fd listing has no descriptor %s: make the copies before listing; the output after the table:\n%s", fd, out[end:])
		} else if got != socket {
			t.Errorf("the listing shows %s -> %s and %s -> %s, want the same socket", first, socket, fd, got)
		}
	}

	// After the original is closed, a copy still reaches the socket.
	closeAt := strings.Index(out[dupAt:], "\nclose("+first+") = 0\n")
	if closeAt < 0 {
		t.Fatalf("the first socket, %s, is never closed after the copies are made: close the original, then query SO_PROTOCOL through a copy; the output after the table:\n%s", first, out[end:])
	}
	afterClose := out[dupAt+closeAt:]
	at, got := find(`getsockopt\((`+dup+`|`+dupCloexec+`), SOL_SOCKET, SO_PROTOCOL\) = (.*)`, afterClose)
	if at < 0 {
		t.Fatalf("no line getsockopt(%s, SOL_SOCKET, SO_PROTOCOL) = ... after close(%s) = 0: query SO_PROTOCOL through a copy once the original is closed; the output after the table:\n%s",
			dup, first, out[end:])
	}
	if got[1] != "6 (IPPROTO_TCP)" {
		t.Errorf("after close(%s), getsockopt(%s, SOL_SOCKET, SO_PROTOCOL) = %s, want 6 (IPPROTO_TCP): the socket lives while any descriptor for it is open",
			first, got[0], got[1])
	}
}

// runOK runs the program to its end with args and returns what it printed;
// it fails the test if the program does not know a flag or does not exit
// with status 0.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	p := booktest.NewGrader(t).Run("terminal", args...)
	out := p.Output()
	with := "with no flags"
	if len(args) > 0 {
		with = "with " + strings.Join(args, " ")
	}
	if m := regexp.MustCompile(`flag provided but not defined: (\S+)`).FindStringSubmatch(out); m != nil {
		t.Fatalf("the program has no %s flag yet: %s it printed %q", m[1], with, m[0])
	}
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("%s the program exited with status %d, want 0; its output:\n%s", with, code, out)
	}
	return out
}

// narrationRE matches a narrated call: its name, first argument and result.
var narrationRE = regexp.MustCompile(`(?m)^([a-z][a-z0-9_]*)\(([^,)]*)[^\n]*\) = (\S+)`)

// table returns the rows of the program's table (the lines after its
// "fd  SO_DOMAIN ..." header, up to the first empty line), each split into
// its columns, and where in out the table starts and ends.
func table(t *testing.T, out string) (rows [][]string, start, end int) {
	t.Helper()
	head := regexp.MustCompile(`(?m)^fd +SO_DOMAIN +SO_TYPE.*\n`).FindStringIndex(out)
	if head == nil {
		t.Fatalf("the output has no table (its header line starts %q):\n%s", "fd  SO_DOMAIN  SO_TYPE", out)
	}
	start, end = head[0], head[1]
	columns := regexp.MustCompile(` {2,}`)
	for _, line := range strings.SplitAfter(out[end:], "\n") {
		if strings.TrimSpace(line) == "" {
			break
		}
		end += len(line)
		rows = append(rows, columns.Split(strings.TrimSpace(line), -1))
	}
	return rows, start, end
}

// An lsEntry is one line of ls -l /proc/self/fd: a descriptor of ls's own
// and what it refers to.
type lsEntry struct {
	fd     int
	target string
	line   string
}

func (e lsEntry) String() string { return fmt.Sprintf("%d -> %s", e.fd, e.target) }

// lsRE matches the lines ls -l prints for the links in /proc/self/fd; the
// program's own listing indents its lines instead.
var lsRE = regexp.MustCompile(`(?m)^l[-rwxsStT]{9}\S*\s.*\s(\d+) -> (.*)$`)

// procFD is the directory ls lists, /proc/self/fd as ls's own links show it.
var procFD = regexp.MustCompile(`^/proc/\d+/fd/?$`)

func lsEntries(out string) []lsEntry {
	var entries []lsEntry
	for _, m := range lsRE.FindAllStringSubmatch(out, -1) {
		fd, _ := strconv.Atoi(m[1])
		entries = append(entries, lsEntry{fd, m[2], m[0]})
	}
	return entries
}

func lsText(entries []lsEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.line + "\n")
	}
	return b.String()
}

// ownListing returns the program's own /proc/self/fd listing: descriptor
// number to target, or nil if there is none.
func ownListing(out string) map[string]string {
	_, rest, ok := strings.Cut(out, "/proc/self/fd:\n")
	if !ok {
		return nil
	}
	fds := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  (\d+) -> (.*)$`).FindAllStringSubmatch(strings.Join(lines(rest), "\n"), -1) {
		fds[m[1]] = m[2]
	}
	return fds
}

// lines returns the lines of s up to the first empty one.
func lines(s string) []string {
	var ls []string
	for _, l := range strings.Split(s, "\n") {
		if l == "" {
			break
		}
		ls = append(ls, l)
	}
	return ls
}

// checkLimitLine checks the line -limit prints: the last socket is one
// below the limit, and the next one failed with EMFILE.
func checkLimitLine(t *testing.T, out string, limit int, with string) {
	t.Helper()
	want := fmt.Sprintf("limit %d: last socket %d, then EMFILE (Too many open files)", limit, limit-1)
	m := regexp.MustCompile(`(?m)^limit (\d+): last socket (\S+), then (.*)$`).FindStringSubmatch(out)
	switch {
	case m == nil:
		t.Fatalf("with %s the program printed no line like %q; its output:\n%s", with, want, out)
	case m[0] != want:
		t.Fatalf("with %s the program printed\n  %s\nwant\n  %s\n(the descriptors are 0 to %d; the one after the last fails with EMFILE); its output:\n%s",
			with, m[0], want, limit-1, out)
	}
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

// hasLine reports whether out has line as a whole line.
func hasLine(out, line string) bool {
	return strings.Contains("\n"+out, "\n"+line+"\n")
}

// isDescriptor reports whether a call's result is a descriptor, not -1.
func isDescriptor(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}
