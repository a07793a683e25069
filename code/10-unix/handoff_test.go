//go:build linux

package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestHandoffClosesCopy: a TCP client of the acceptor is served by the
// worker, while the acceptor, which accepted it, holds no socket for it any
// more: its only sockets are its listener and its line to the worker.
func TestHandoffClosesCopy(t *testing.T) {
	s := booktest.New(t)
	path := sockPath(t, nil)
	worker := s.Start("worker", "-worker", "-addr", path)
	acceptor := s.Start("acceptor", "-handoff", path)
	c, err := net.DialTimeout("tcp", acceptor.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptor.WaitFor("close(5) = 0")
	worker.WaitFor("connection: TCP")
	if got := sockets(t, acceptor.Pid()); got != 2 {
		t.Errorf("the acceptor holds %d sockets after the hand-off, want 2 (its listener and its line to the worker)", got)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("served by the worker\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 21)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "served by the worker\n" {
		t.Errorf("echo through the passed connection: %q, %v", buf, err)
	}
	c.Close()
	worker.WaitFor("close(5) = 0")
	if strings.Contains(acceptor.Output(), "read(") {
		t.Errorf("the acceptor read from a connection it passed on:\n%s", acceptor.Output())
	}
	acceptor.Interrupt()
	worker.Interrupt()
}

// TestHandoff records the hand-off with the program's own client: the
// acceptor accepts it and passes it on; the worker serves it. When the
// acceptor stops, the worker's recvmsg returns 0 and it waits for the next.
func TestHandoff(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	path := sockPath(t, s)
	worker := s.Start("worker", "-worker", "-addr", path)
	acceptor := s.Start("acceptor", "-handoff", path)
	s.Run("client", "-client", "-addr", acceptor.Addr(), "-msg", "hello", "-msg", "served by the worker")
	worker.WaitFor("close(5) = 0")
	acceptor.Interrupt()
	worker.WaitFor("close(4) = 0") // the acceptor's line ended
	worker.Interrupt()
	s.Check("handoff")
	if got := peerPID(t, worker.Output(), 1); got != acceptor.Pid() {
		t.Errorf("the worker's peer is pid %d, want the acceptor's, %d", got, acceptor.Pid())
	}
	if worker.ExitCode() != 0 || acceptor.ExitCode() != 0 {
		t.Errorf("exit status: worker %d, acceptor %d; want 0", worker.ExitCode(), acceptor.ExitCode())
	}
}

// sockets counts the sockets among process pid's descriptors.
func sockets(t *testing.T, pid int) int {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}
