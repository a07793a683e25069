//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// wait bounds every read and connect of the tests.
const wait = 10 * time.Second

// client is one connection of the test's, with a reader for the answers.
type client struct {
	t *testing.T
	c *net.TCPConn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(wait))
	return &client{t, c.(*net.TCPConn), bufio.NewReader(c)}
}

// send writes raw bytes, as they are: no client library fixes them.
func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads one response (net/http reads it) and its body.
func (c *client) answer(method string) (*http.Response, string) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading a response's body: %v", err)
	}
	return resp, string(body)
}

// get is a request with what HTTP/1.1 requires and nothing else.
func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n" }

// site makes a root to serve: a page, a stylesheet, a directory with an
// index, a 1 KiB and a 1 MiB file whose bytes say where they are, a link
// that stays in the root, and a secret next to the root, not in it,
// with links to it.
func site(t *testing.T) (root string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	files := map[string]string{
		"root/index.html":      "<h1>home</h1>\n",
		"root/style.css":       "body{}\n",
		"root/docs/index.html": "<h1>docs</h1>\n",
		"root/1k.bin":          pattern(1 << 10),
		"root/big.bin":         pattern(1 << 20),
		"root/%2e%2e":          "a file named %2e%2e\n",
		"secret.txt":           "the secret\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, to := range map[string]string{
		"out-abs": filepath.Join(dir, "secret.txt"), // absolute, out
		"out-rel": "../secret.txt",                  // relative, out
		"docs/up": "../../secret.txt",               // from deeper, out
		"proc":    "/proc/self/root",                // a magic link's way out
		"in-link": "style.css",                      // stays in: served
	} {
		if err := os.Symlink(to, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// pattern is n bytes in which every 8 say their own offset, so that a
// range's bytes can be told from any other's.
func pattern(n int) string {
	b := make([]byte, 0, n+8)
	for i := 0; len(b) < n; i += 8 {
		b = fmt.Appendf(b, "%07x\n", i)
	}
	return string(b[:n])
}

// start runs the server on root, quiet unless loud, with more flags.
func start(t *testing.T, root string, loud bool, flags ...string) *booktest.Proc {
	t.Helper()
	s := booktest.New(t)
	args := append([]string{"-addr", "127.0.0.1:0", "-root", root}, flags...)
	if !loud {
		args = append(args, "-q")
	}
	return s.Start("server", args...)
}
