//go:build linux

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEscapes asks for the secret next to the root in every spelling a
// client can send; not one answer holds it. Each form's status is the
// one the chapter gives: 400 for what clean refuses, 404 for what
// openat2 refuses (or what simply is not there).
func TestEscapes(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/../secret.txt", 400},
		{"/docs/../../secret.txt", 400},
		{"/%2e%2e/secret.txt", 400},
		{"/%2E%2E/secret.txt", 400},
		{"/..%2fsecret.txt", 400},
		{"/%2e%2e%2fsecret.txt", 400},
		{"/docs/..%2f..%2fsecret.txt", 400},
		{"/%252e%252e/secret.txt", 404}, // decoded once: a directory named %2e%2e, which is a file here
		{"/%252e%252e%252fsecret.txt", 404},
		{"/secret.txt%00.html", 400},
		{"/%00", 400},
		{"/%zz", 400},
		{"/%2", 400},
		{"/out-abs", 404},
		{"/out-rel", 404},
		{"/docs/up", 404},
		{"/proc/etc/passwd", 404},
		{"/out-abs/", 404},
		{"//secret.txt", 404},
		{"http://localhost/../secret.txt", 400},
	} {
		c := dial(t, srv.Addr())
		c.send(get(tc.path))
		resp, body := c.answer("GET")
		if resp.StatusCode != tc.status || strings.Contains(body, "secret") {
			t.Errorf("GET %s: %s %q, want %d and not the secret", tc.path, resp.Status, body, tc.status)
		}
	}
	// What stays in the root is served, links and odd names included.
	c := dial(t, srv.Addr())
	for path, want := range map[string]string{"/in-link": "body{}\n", "/%252e%252e": "a file named %2e%2e\n", "/docs/": "<h1>docs</h1>\n"} {
		c.send(get(path))
		if resp, body := c.answer("GET"); resp.StatusCode != 200 || body != want {
			t.Errorf("GET %s: %s %q, want 200 %q", path, resp.Status, body, want)
		}
	}
}

// TestFiles checks what a file's answer holds: the type by extension,
// index.html for a directory, the redirect to a directory's slash, HEAD,
// 404 and 405.
func TestFiles(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	c := dial(t, srv.Addr())
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
		header       [2]string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", "<h1>home</h1>\n", [2]string{"Accept-Ranges", "bytes"}},
		{"GET", "/style.css", 200, "text/css; charset=utf-8", "body{}\n", [2]string{}},
		{"GET", "/docs/", 200, "text/html; charset=utf-8", "<h1>docs</h1>\n", [2]string{}},
		{"GET", "/docs?x=1", 301, "text/plain; charset=utf-8", "moved\n", [2]string{"Location", "/docs/"}},
		{"GET", "/1k.bin", 200, "application/octet-stream", pattern(1 << 10), [2]string{"Content-Length", "1024"}},
		{"GET", "/big.bin", 200, "application/octet-stream", pattern(1 << 20), [2]string{"Content-Length", "1048576"}},
		{"HEAD", "/big.bin", 200, "application/octet-stream", "", [2]string{"Content-Length", "1048576"}},
		{"HEAD", "/", 200, "text/html; charset=utf-8", "", [2]string{"Content-Length", "14"}},
		{"GET", "/nowhere.html", 404, "text/plain; charset=utf-8", "not found\n", [2]string{}},
		{"POST", "/", 405, "text/plain; charset=utf-8", "GET or HEAD only\n", [2]string{"Allow", "GET, HEAD"}},
	} {
		c.send(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, body := c.answer(tc.method)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype || body != tc.body ||
			tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
			t.Errorf("%s %s: %s, %q, %d bytes; want %d, %q, %d bytes, %s: %s", tc.method, tc.path, resp.Status,
				resp.Header, len(body), tc.status, tc.ctype, len(tc.body), tc.header[0], tc.header[1])
		}
	}
}

// TestPipelined: requests sent in one write are answered in order; the
// short answers (here 404s and a 301) go out together, and those behind
// a file's body wait for it.
func TestPipelined(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	c := dial(t, srv.Addr())
	c.send(get("/a") + get("/b") + get("/style.css") + get("/docs") + get("/big.bin") + get("/1k.bin"))
	for _, want := range []struct {
		status int
		size   int
	}{{404, 10}, {404, 10}, {200, 7}, {301, 6}, {200, 1 << 20}, {200, 1 << 10}} {
		if resp, body := c.answer("GET"); resp.StatusCode != want.status || len(body) != want.size {
			t.Fatalf("pipelined: %s, %d bytes; want %d, %d bytes", resp.Status, len(body), want.status, want.size)
		}
	}
}

// TestConditional: the tag and the time of a GET, sent back, make 304s
// with no body; a tag or a time that no longer holds, a 200.
func TestConditional(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	c := dial(t, srv.Addr())
	c.send(get("/style.css"))
	resp, _ := c.answer("GET")
	etag, mod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || mod == "" {
		t.Fatalf("GET: no ETag or Last-Modified: %q", resp.Header)
	}
	earlier := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		field  string
		status int
	}{
		{"If-None-Match: " + etag, 304},
		{"If-None-Match: \"other\", W/" + etag, 304},
		{"If-None-Match: *", 304},
		{"If-None-Match: \"other\"", 200},
		{"If-Modified-Since: " + mod, 304},
		{"If-Modified-Since: " + earlier, 200},
		{"If-None-Match: \"other\"\r\nIf-Modified-Since: " + mod, 200}, // the tag decides
		{"If-Modified-Since: yesterday", 200},
	} {
		c.send("GET /style.css HTTP/1.1\r\nHost: localhost\r\n" + tc.field + "\r\n\r\n")
		resp, body := c.answer("GET")
		if resp.StatusCode != tc.status || tc.status == 304 && (body != "" || resp.Header.Get("ETag") != etag) {
			t.Errorf("%s: %s, ETag %q, body %q; want %d", tc.field, resp.Status, resp.Header.Get("ETag"), body, tc.status)
		}
	}
}

// TestRange: one span of a small file (writev) and of a large one
// (sendfile from an offset), the forms of a span, and the ones that are
// refused (416) or ignored (200).
func TestRange(t *testing.T) {
	t.Parallel()
	srv := start(t, site(t), false)
	c := dial(t, srv.Addr())
	small, big := pattern(1<<10), pattern(1<<20)
	for _, tc := range []struct {
		path, rng string
		status    int
		crange    string
		body      string
	}{
		{"/1k.bin", "bytes=0-9", 206, "bytes 0-9/1024", small[:10]},
		{"/1k.bin", "bytes=1000-", 206, "bytes 1000-1023/1024", small[1000:]},
		{"/1k.bin", "bytes=-5", 206, "bytes 1019-1023/1024", small[1019:]},
		{"/1k.bin", "bytes=1000-5000", 206, "bytes 1000-1023/1024", small[1000:]},
		{"/1k.bin", "bytes=-5000", 206, "bytes 0-1023/1024", small},
		{"/big.bin", "bytes=500000-500099", 206, "bytes 500000-500099/1048576", big[500000:500100]},
		{"/big.bin", "bytes=1048000-", 206, "bytes 1048000-1048575/1048576", big[1048000:]},
		{"/1k.bin", "bytes=1024-", 416, "bytes */1024", ""},
		{"/1k.bin", "bytes=-0", 416, "bytes */1024", ""},
		{"/big.bin", "bytes=2000000-2000001", 416, "bytes */1048576", ""},
		{"/1k.bin", "bytes=0-1,5-6", 200, "", small}, // several spans: ignored
		{"/1k.bin", "bytes=9-1", 200, "", small},     // malformed: ignored
		{"/1k.bin", "lines=0-1", 200, "", small},     // another unit: ignored
	} {
		c.send("GET " + tc.path + " HTTP/1.1\r\nHost: localhost\r\nRange: " + tc.rng + "\r\n\r\n")
		resp, body := c.answer("GET")
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.crange || body != tc.body {
			t.Errorf("Range: %s on %s: %s, Content-Range %q, %d bytes; want %d, %q, %d bytes",
				tc.rng, tc.path, resp.Status, resp.Header.Get("Content-Range"), len(body), tc.status, tc.crange, len(tc.body))
		}
	}
	// If-Range with a tag that is not the file's: the whole file.
	c.send("GET /1k.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\nIf-Range: \"old\"\r\n\r\n")
	if resp, body := c.answer("GET"); resp.StatusCode != 200 || body != small {
		t.Errorf("If-Range with another tag: %s, %d bytes; want 200 and the whole file", resp.Status, len(body))
	}
}

// TestChanged: a cached file that changes on disk is served anew, once
// the server looks again (at most a second later).
func TestChanged(t *testing.T) {
	t.Parallel()
	root := site(t)
	srv := start(t, root, false)
	c := dial(t, srv.Addr())
	c.send(get("/style.css"))
	if _, body := c.answer("GET"); body != "body{}\n" {
		t.Fatalf("first GET: %q", body)
	}
	p := filepath.Join(root, "style.css")
	if err := os.WriteFile(p, []byte("body{color:red}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		c.send(get("/style.css"))
		_, body := c.answer("GET")
		if body == "body{color:red}\n" {
			break
		}
		if i == 100 {
			t.Fatalf("after 100 tries, 50 ms apart: still %q", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
