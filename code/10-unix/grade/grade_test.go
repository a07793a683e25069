//go:build grade && linux

// The graders of chapter 10's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on a socket
// file in a directory of its own, and plays its clients with Go's net
// package, as the user who runs the graders: any user, since students
// grade their own copies as themselves.
//
//	go run ./tools/grade 10
//	go run ./tools/grade -program DIR 10
//
// Every process the graders start then runs as that one user, so the
// graders judge what one user can see: exercise 2 by the socket file's
// mode (lstat) and the owner's connect, exercise 3 by a server told to
// serve the graders' own uid (it must echo) and one told to serve another
// uid (it must refuse, say whom, and go on serving).
//
// As root they also run a client as the user nobody (Python's socket
// module, which no one here wrote), so that the file's permissions and
// the peer's uid are really another user's: EACCES at mode 0660, an echo
// at 0666, a refusal with -uid 0. Root in a user namespace (where the
// grading sandbox puts anyone else) has no other user to become; there
// the log says that part was not run, and the checks above decide.
//
// Every wait is bounded: booktest's, the clients' deadlines, and Python's
// timeout.
//
// Exercise 1 asks for no change to the program, so it has no grader: it is
// checked by hand.
package grade

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own.
const waitLimit = 15 * time.Second

// socketPath is a path for the socket file, in a directory of the
// grader's own. The user nobody must be able to reach it, so that the
// file's own mode decides who may connect: t.TempDir makes its
// directories 0700, and a grading run's TMPDIR may be 0700 too, so each
// directory from it down gets search permission for others (x, not r: no
// one may list them).
func socketPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	top := filepath.Clean(os.TempDir())
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
		if d == top || d == filepath.Dir(d) {
			break
		}
	}
	return filepath.Join(dir, "ex.sock")
}

// requireFlags fails unless the program's -h lists every flag in names.
func requireFlags(t *testing.T, s *booktest.Session, what string, names ...string) {
	t.Helper()
	usage := s.Run("help", "-h").Output()
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(usage) {
			t.Fatalf("the program has no -%s flag yet (its -h does not list it): %s; it printed:\n%s", name, what, usage)
		}
	}
}

// talk connects to path as this process (the user running the graders)
// with Go's net package, sends line, and reads until the whole echo is
// back or the server closes. connected says whether connect succeeded;
// got is what came back; err is what stopped it, if anything did.
func talk(path, line string) (got string, connected bool, err error) {
	c, err := net.DialTimeout("unix", path, waitLimit)
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		return "", true, err
	}
	if _, err := io.WriteString(c, line); err != nil {
		return "", true, err // EPIPE or ECONNRESET: closed before we wrote
	}
	buf := make([]byte, len(line))
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), true, err
}

// closedUnserved reports whether a talk ended the way a refusal does: the
// connect succeeded (the kernel queues it before the server can ask who
// it is), then the server closed without echoing a byte. A Unix socket
// closed with the client's line unread reports ECONNRESET, as TCP does;
// closed after reading it, end of file.
func closedUnserved(got string, connected bool, err error) bool {
	return connected && got == "" &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}

// A nobodyClient runs clients as the user nobody (uid and gid 65534), or
// says why it cannot: it needs root, and root of the first user namespace,
// the one that holds every uid. Root in another (where the grading sandbox
// puts any other user) cannot become a uid its namespace does not map.
type nobodyClient struct{ why string }

func newNobodyClient(t *testing.T, path string) *nobodyClient {
	c := &nobodyClient{}
	if os.Geteuid() != 0 {
		c.why = "the graders are not root"
	} else if m, err := os.ReadFile("/proc/self/uid_map"); err != nil || strings.Join(strings.Fields(string(m)), " ") != "0 0 4294967295" {
		c.why = "root in a user namespace, where no other user exists"
	} else if _, err := os.Stat("/usr/bin/python3"); err != nil {
		c.why = "no /usr/bin/python3"
	} else if d := closedDir(path); d != "" {
		c.why = d + " is closed to other users"
	}
	if c.why != "" {
		// At the end, so that a failure, not this, is what the report
		// shows first.
		t.Cleanup(func() { t.Logf("not run: a client as the user nobody (%s); the checks as this user decided", c.why) })
	}
	return c
}

// closedDir is the first directory on the way to path that other users
// may not search, or "".
func closedDir(path string) string {
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// talk runs Python's socket module, which no one here wrote, as nobody.
// It sends "from nobody\n" and returns what it printed after its pid: what
// came back (an empty bytes object if the server closed without a word),
// or the errno name of what failed (a connect the file's mode refused, or
// a send or receive on a connection the server closed at once). ran is
// false where no client can run as nobody.
func (c *nobodyClient) talk(t *testing.T, path string) (got string, ran bool) {
	t.Helper()
	if c.why != "" {
		return "", false
	}
	const script = `
import errno, os, socket, sys
print("pid", os.getpid(), flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(errno.errorcode.get(e.errno, e))
    sys.exit(0)
try:
    s.sendall(b"from nobody\n")
    print(s.recv(100))
except OSError as e:
    print(errno.errorcode.get(e.errno, e))
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.WaitDelay = waitLimit
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the client running as nobody failed: %v\n%s", err, out)
	}
	_, rest, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(rest), true
}

// Exercise 2: -mode sets the socket file's permissions, in octal. With
// -mode 0660 the file is srw-rw----, with -mode 0666 srw-rw-rw-, and its
// owner is served either way. As root, a client running as nobody also
// gets EACCES at 0660 and its echo at 0666.
func TestExercise2WhoMayConnect(t *testing.T) {
	path := socketPath(t)
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -mode, the socket file's permissions in octal", "mode")
	nobody := newNobodyClient(t, path)

	for _, mode := range []os.FileMode{0o660, 0o666} {
		arg := "0" + strconv.FormatUint(uint64(mode), 8)
		srv := s.Start("server", "-mode", arg, "-addr", path)
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatalf("the server printed %q, but there is no socket file: %v; its output:\n%s", "listening on", err, srv.Output())
		}
		if got := fi.Mode(); got.Type() != os.ModeSocket || got.Perm() != mode || got&(os.ModeSticky|os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Fatalf("with -mode %s the socket file is %v, want %v (a socket, mode %s): read the mode in octal (%s is %d, not %s), and change the file, which fchmod on the socket does not; its output:\n%s",
				arg, got, os.ModeSocket|mode, arg, arg, mode, arg[1:], srv.Output())
		}
		if got, _, err := talk(path, "owner\n"); got != "owner\n" {
			t.Fatalf("with -mode %s the file's owner got %q (%v), want its echo; the server's output:\n%s", arg, got, err, srv.Output())
		}
		want := "EACCES" // no write permission for others
		if mode&0o002 != 0 {
			want = `b'from nobody\n'`
		}
		if got, ran := nobody.talk(t, path); ran && got != want {
			t.Fatalf("with -mode %s a client running as nobody got %q, want %s; the server's output:\n%s", arg, got, want, srv.Output())
		}
		srv.Interrupt()
	}
}

// Exercise 3: -uid N serves only clients whose SO_PEERCRED uid is N. Told
// the graders' own uid, the server echoes their clients. Told another uid,
// it closes each of their connections without an echo, says on stderr
// which pid and uid it refused, and goes on to the next client; Ctrl-C
// still ends it with status 0. As root, a client running as nobody is also
// refused by a server told -uid 0, and root's next client is served.
func TestExercise3OnlyOneUser(t *testing.T) {
	path := socketPath(t)
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -uid, the only uid the server serves", "uid")
	nobody := newNobodyClient(t, path)
	me := os.Getuid()

	srv := s.Start("server", "-uid", strconv.Itoa(me), "-addr", path)
	// The file open to all, so that only -uid can keep nobody out.
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	if got, _, err := talk(path, "mine\n"); got != "mine\n" {
		t.Fatalf("with -uid %d, the uid of the graders' own client, it got %q (%v), want its echo; the server's output:\n%s", me, got, err, srv.Output())
	}
	if got, ran := nobody.talk(t, path); ran {
		if got != "b''" && got != "ECONNRESET" && got != "EPIPE" {
			t.Fatalf("with -uid %d a client running as nobody (uid 65534) got %q, want the connection closed without an echo (b'', ECONNRESET or EPIPE): ask SO_PEERCRED of the accepted connection, before you echo anything, and compare its uid, not the server's own; the server's output:\n%s",
				me, got, srv.Output())
		}
		if got, _, err := talk(path, "mine again\n"); got != "mine again\n" {
			t.Fatalf("after it refused nobody, the server did not serve the next client of uid %d: got %q (%v); its output:\n%s", me, got, err, srv.Output())
		}
	}
	srv.Interrupt()

	// Another uid than the graders': every client of theirs is someone else.
	other := me + 1000
	srv = s.Start("server", "-uid", strconv.Itoa(other), "-addr", path)
	for i, line := range []string{"first\n", "second\n"} {
		got, connected, err := talk(path, line)
		switch {
		case !connected && i > 0:
			t.Fatalf("after it refused one client, the server no longer takes connections (%v): refuse that connection, do not stop; its output:\n%s", err, srv.Output())
		case !closedUnserved(got, connected, err):
			t.Fatalf("with -uid %d, a client of uid %d got %q (connect succeeded: %v; then %v), want its connection closed without an echo: ask SO_PEERCRED before you echo anything; the server's output:\n%s",
				other, me, got, connected, err, srv.Output())
		}
	}
	srv.Interrupt()
	if !saysRefused(srv.Output(), os.Getpid(), me) {
		t.Errorf("the server did not say which client it refused: want a line with its pid (%d) and uid (%d), besides the narration; its output:\n%s", os.Getpid(), me, srv.Output())
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("the server's exit status after Ctrl-C is %d, want 0; its output:\n%s", code, srv.Output())
	}
}

// saysRefused reports whether out has a line, other than a narrated call
// ("getsockopt(...) = 0") or the "peer:" line every connection gets, that
// names both pid and uid.
func saysRefused(out string, pid, uid int) bool {
	hasPID := regexp.MustCompile(`\b` + strconv.Itoa(pid) + `\b`)
	hasUID := regexp.MustCompile(`\b` + strconv.Itoa(uid) + `\b`)
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "peer:") || strings.Contains(line, ") = ") {
			continue
		}
		if hasPID.MatchString(line) && hasUID.MatchString(line) {
			return true
		}
	}
	return false
}
