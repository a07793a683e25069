//go:build grade && linux

// The graders of chapter 20's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// on a root of its own, and reads the answers with net/http's reader over
// raw connections. Every wait is bounded (5 s for an answer).
//
//	go run ./tools/grade 20
//	go run ./tools/grade -program DIR 20
package grade

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// wait bounds every read and connect of the graders.
const wait = 5 * time.Second

// page is the text file every grader's root holds.
const page = "From socket() to Server: the access log and gzip exercises.\n"

// root makes a directory to serve: page.txt, its gzip form page.txt.gz,
// and index.html.
func root(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write([]byte(page))
	w.Close()
	for name, data := range map[string][]byte{"page.txt": []byte(page), "page.txt.gz": z.Bytes(), "index.html": []byte("<h1>index</h1>\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ask sends one request on a connection of its own and reads the answer.
func ask(t *testing.T, srv *booktest.Proc, method, path string, fields ...string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), wait)
	if err != nil {
		t.Fatalf("could not connect to %s: %v", srv.Addr(), err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	req := method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	for _, f := range fields {
		req += f + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: no answer within %v (%v); the server printed:\n%s", method, path, wait, err, srv.Output())
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, body
}

// TestExercise1AccessLog: with -q -log, one line per answer on stdout, in
// order: the client's address, the request line in quotes, the status,
// the bytes of body sent.
func TestExercise1AccessLog(t *testing.T) {
	s := booktest.NewGrader(t)
	s.Start("server").Interrupt() // does it start at all, as the chapter runs it
	srv := s.Start("server", "-addr", "127.0.0.1:0", "-root", root(t), "-q", "-log", "-loops", "1")
	ask(t, srv, "GET", "/page.txt")
	ask(t, srv, "HEAD", "/page.txt")
	ask(t, srv, "GET", "/nowhere")
	ask(t, srv, "GET", "/page.txt", "Range: bytes=0-9")
	want := []string{
		`"GET /page.txt HTTP/1.1" 200 60`,
		`"HEAD /page.txt HTTP/1.1" 200 0`,
		`"GET /nowhere HTTP/1.1" 404 10`,
		`"GET /page.txt HTTP/1.1" 206 10`,
	}
	srv.WaitFor(want[3] + "\n")
	var got []string
	for l := range strings.SplitSeq(srv.Output(), "\n") {
		if strings.Contains(l, `"`) {
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("with -q -log: %d lines with a request, want %d (one per answer, nothing else); the server printed:\n%s", len(got), len(want), srv.Output())
	}
	for i, l := range got {
		if !strings.HasPrefix(l, "127.0.0.1:") || !strings.HasSuffix(l, " "+want[i]) {
			t.Errorf("access log line %d: %q, want \"127.0.0.1:PORT %s\"", i+1, l, want[i])
		}
	}
	if strings.Contains(srv.Output(), "epoll_wait") {
		t.Errorf("with -q, the server still narrates its calls:\n%s", srv.Output())
	}
}

// TestExercise2Gzip: a client that takes gzip gets page.txt.gz as
// page.txt in that coding; one that does not, the plain file; both
// answers say Vary: Accept-Encoding; a file with no .gz is sent plain.
func TestExercise2Gzip(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-addr", "127.0.0.1:0", "-root", root(t), "-q")
	resp, body := ask(t, srv, "GET", "/page.txt", "Accept-Encoding: gzip, deflate")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
		resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("GET /page.txt with Accept-Encoding: gzip: Content-Encoding %q, Content-Type %q, Vary %q; want gzip, text/plain; charset=utf-8, Accept-Encoding",
			resp.Header.Get("Content-Encoding"), resp.Header.Get("Content-Type"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	var plain []byte
	if err == nil {
		plain, err = io.ReadAll(zr)
	}
	if err != nil || string(plain) != page {
		t.Fatalf("GET /page.txt with Accept-Encoding: gzip: the body does not gunzip to the page (%v): %q", err, plain)
	}
	resp, body = ask(t, srv, "GET", "/page.txt")
	if resp.Header.Get("Content-Encoding") != "" || string(body) != page || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("GET /page.txt with no Accept-Encoding: Content-Encoding %q, Vary %q, body %q; want none, Accept-Encoding, the plain page",
			resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"), body)
	}
	resp, body = ask(t, srv, "GET", "/index.html", "Accept-Encoding: gzip")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" || string(body) != "<h1>index</h1>\n" {
		t.Fatalf("GET /index.html (no .gz) with Accept-Encoding: gzip: %s, Content-Encoding %q, body %q; want 200, none, the file",
			resp.Status, resp.Header.Get("Content-Encoding"), body)
	}
}
