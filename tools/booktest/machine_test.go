//go:build linux

package booktest

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A Machine's commands see only loopback, no socket at all (so port 8080 is
// free even while the test's own machine uses it), an empty /tmp of their
// own that lasts from one command to the next, the repository's root as
// working directory and no GODEBUG; Interrupt reaches every process of the
// command, as Ctrl-C does.
func TestMachine(t *testing.T) {
	t.Setenv("GODEBUG", "containermaxprocs=1")
	m := NewMachine(t)

	// Taken here, if nothing else has it; the machine's 8080 is its own.
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		defer ln.Close()
	}
	if out := m.Run("ip -o link show | cut -d: -f2"); out != " lo\n" {
		t.Errorf("links: %q, want only lo", out)
	}
	if out := m.Run("ss -Htan"); out != "" {
		t.Errorf("ss -tan printed\n%s\nwant no TCP socket at all", out)
	}

	// Empty, but for the way to the repository when it lives under /tmp
	// (as a CI checkout may): PrivateTmp binds it back at its own path.
	want := ""
	if wd, err := os.Getwd(); err == nil {
		if rest, ok := strings.CutPrefix(filepath.Dir(filepath.Dir(wd)), "/tmp/"); ok {
			want = strings.Split(rest, "/")[0] + "\n"
		}
	}
	if out := m.Run("ls -A /tmp"); out != want {
		t.Errorf("/tmp holds\n%s\nwant %q", out, want)
	}
	name := "/tmp/booktest-machine-" + strconv.Itoa(os.Getpid())
	m.Run("echo kept > " + name)
	if out := m.Run("cat " + name); out != "kept\n" {
		t.Errorf("the next command read %q from %s, want kept", out, name)
	}
	if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s reached the real /tmp (%v)", name, err)
	}

	wd, _ := os.Getwd()
	if out := m.Run("pwd"); out != filepath.Dir(filepath.Dir(wd))+"\n" {
		t.Errorf("pwd printed %q, want the repository's root", out)
	}
	if out := m.Run(`echo "${GODEBUG-unset}"`); out != "unset\n" {
		t.Errorf("GODEBUG=%q, want it unset", out)
	}
	if out, code := m.RunCode("echo no; exit 3"); out != "no\n" || code != 3 {
		t.Errorf("RunCode = %q, %d; want no, 3", out, code)
	}

	// bash, which traps SIGINT and goes on, and the sleep it waits for,
	// which dies of it (status 128+2).
	c := m.Start(`trap 'echo bash got SIGINT' INT; echo "bash $$"; sleep 600; echo "sleep: $?"`)
	c.WaitFor("\n")
	bash := strings.Fields(c.Output())[1]
	m.RunUntil("pgrep -P "+bash+" -x sleep || true", regexp.MustCompile(`^\d+\n$`))
	c.Interrupt()
	c.Wait()
	if want := "bash " + bash + "\nbash got SIGINT\nsleep: 130\n"; c.Output() != want || c.ExitCode() != 0 {
		t.Errorf("after Interrupt: status %d, output %q; want 0, %q", c.ExitCode(), c.Output(), want)
	}
}
