//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperimentNames runs the chapter's commands as written, in the
// tests' namespaces (TestMain), so /etc/hosts and /etc/services are the
// tests' own: the port range and the service's line, getent's answer and
// the program's for localhost, with each resolver, and ss showing the
// server's two listening sockets.
func TestExperimentNames(t *testing.T) {
	needNS(t)
	m := booktest.NewMachine(t)
	for name, want := range map[string][]string{
		"ports":  {"32768\t60999\n", "http-alt\t8080/tcp\twebcache\t# WWW caching service\n"},
		"getent": {"::1             STREAM localhost\n", "127.0.0.1       STREAM \n"},
		"lookup": {"AF_INET6 [::1]:8080\nAF_INET 127.0.0.1:8080\n"},
		"netdns": {"hostLookupOrder(localhost) = cgo\n", "AF_INET6 [::1]:8080\nAF_INET 127.0.0.1:8080\n"},
	} {
		out := m.Run(booktest.Experiment(t, name))
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("experiment %s: want %q in:\n%s", name, w, out)
			}
		}
	}
	srv := m.Start(booktest.Experiment(t, "server"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	out := m.Run(booktest.Experiment(t, "ss"))
	for _, re := range []string{`(?m)^LISTEN +0 +2 +127\.0\.0\.1:8080 `, `(?m)^LISTEN +0 +2 +\[::1\]:8080 `} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ss -ltn: no line like %s:\n%s", re, out)
		}
	}
	// Ctrl-C; TestTranscript checks the program's exit status after it.
	srv.Interrupt()
	srv.Wait()
	if !strings.Contains(srv.Output(), "close(6) = 0\n") {
		t.Errorf("after Ctrl-C the server did not close its sockets:\n%s", srv.Output())
	}
}
