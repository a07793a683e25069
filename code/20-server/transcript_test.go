//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestTranscript records the server on one loop, serving a small site: a
// client asks for / (the directory's index.html, read once and cached),
// then asks again with the tag it got (304), then for 100,000 bytes of a
// large file (206, sent with sendfile), then for a path that climbs out
// of the root (400); it leaves, and Ctrl-C ends the server.
func TestTranscript(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "site")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"index.html": "<h1>From socket() to Server</h1>\n", "big.bin": pattern(1 << 20)} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := booktest.New(t)
	s.Replace(quoteMeta(root), "site")
	srv := s.Start("server", "-addr", "127.0.0.1:0", "-root", root, "-loops", "1")
	s.Replace(`LookupPort\(tcp, "0"\) = 0`, `LookupPort(tcp, "8080") = 8080`)
	s.Replace(`127\.0\.0\.1:0\b`, "127.0.0.1:8080")
	// A signal (Go's preemption, or the Ctrl-C itself) now and then ends a
	// wait with EINTR, and the program waits again: a line some runs print
	// and others do not, which the book does not show.
	s.Replace(`(?m)^(?:epoll_wait|poll)\(.*\) = -1 EINTR \(Interrupted system call\)\n`, "")
	s.Replace(`\\r\\nDate: [^"]+"`, `\r\nDate: Mon, 07 D"`)
	s.Replace(`(epoll_wait\(.*\], 256, )\d+\)`, "${1}60000)") // the time left to the next deadline

	a := dial(t, srv.Addr())
	a.send(get("/"))
	resp, body := a.answer("GET")
	if resp.StatusCode != 200 || body != "<h1>From socket() to Server</h1>\n" {
		t.Fatalf("GET /: %s %q", resp.Status, body)
	}
	a.send("GET / HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: " + resp.Header.Get("ETag") + "\r\n\r\n")
	if resp, _ := a.answer("GET"); resp.StatusCode != 304 {
		t.Fatalf("GET / with its tag: %s, want 304", resp.Status)
	}
	a.send("GET /big.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-99999\r\n\r\n")
	if resp, body := a.answer("GET"); resp.StatusCode != 206 || body != pattern(1 << 20)[:100000] {
		t.Fatalf("a range of big.bin: %s, %d bytes", resp.Status, len(body))
	}
	a.send(get("/%2e%2e/etc/passwd"))
	if resp, _ := a.answer("GET"); resp.StatusCode != 400 {
		t.Fatalf("GET /%%2e%%2e/etc/passwd: %s, want 400", resp.Status)
	}
	a.c.Close()
	srv.WaitFor("close(7) = 0")
	srv.Interrupt()
	s.Check("run")
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
	out := srv.Output()
	for _, want := range []string{
		"GET / HTTP/1.1 -> 200, 33 bytes\nwritev(7, [\"HTTP/1.1 200 OK\\r\\nDate: ", // head and body, one call
		"16384) = 73\nGET / HTTP/1.1 -> 304, 0 bytes\n",                             // cached: no file system call
		"sendfile(7, 8, [0], 100000) = 100000\nclose(8) = 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the narration:\n%s", want, out)
		}
	}
}

// quoteMeta quotes s for Session.Replace.
func quoteMeta(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
