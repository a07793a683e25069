//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// serverLimits are the program's own (main.go), with -maxbody 1024, as
// TestRefused runs it.
var serverLimits = limits{line: 8 << 10, header: 16 << 10, fields: 100, body: 1024}

// accepted are requests the parser must take, with what net/http makes of
// them too.
var accepted = []struct{ name, req string }{
	{"get", get("/")},
	{"head", "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"},
	{"post", post("/echo", "hello")},
	{"query", get("/a/b?c=d&e")},
	{"absolute form", "GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	{"http 1.0", "GET / HTTP/1.0\r\n\r\n"},
	{"http 1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n"},
	{"http 1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"},
	{"connection close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
	{"connection list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\n\r\n"},
	{"field whitespace", "GET / HTTP/1.1\r\nHost:x\r\nX-A: \t spaced \t\r\nx-a: again\r\n\r\n"},
	{"obs-text", "GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n"},
	{"empty value", "GET / HTTP/1.1\r\nHost: x\r\nX:\r\n\r\n"},
	{"chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{"chunked upper hex", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"},
	{"chunk extension", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n"},
	{"trailers", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 1\r\n\r\n"},
	{"zero length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
	{"leading zeros", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc"},
	{"body on get", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"},
	{"host with port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
	{"ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"},
	{"two requests", get("/") + get("/second")},
	{"a leading empty line", "\r\n" + get("/")},
	{"whitespace before a chunk extension", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1 ;a\r\nx\r\n0\r\n\r\n"},
}

// differs names the cases where net/http's ReadRequest and this parser
// disagree on purpose, and why. ReadRequest is the first step of Go's
// server, not all of it: the server adds some checks (Host, limits), and
// Go accepts some things RFC 9112 allows a recipient to accept, where
// this parser takes the stricter reading the RFC also allows.
var differs = map[string]string{
	// RFC 9112 2.2 lets a recipient take a bare LF as a line's end; Go
	// does. Accepting it is one way two parsers come to disagree on where
	// a line, and so a request, ends.
	"bare LF in the request line":       "Go accepts a bare LF",
	"bare LF in a field line":           "Go accepts a bare LF",
	"bare LF ending the header section": "Go accepts a bare LF",
	// RFC 9112 5.2 lets a server replace obs-fold with spaces; Go does.
	// Refusing it is the other choice the RFC gives, and the simpler.
	"obs-fold": "Go unfolds the line",
	// RFC 9112 5.1: a server MUST refuse whitespace between a field's
	// name and its colon; Go takes "Host " as a field of its own, so a
	// proxy that reads it as Host and Go disagree on the host.
	"space before the colon": "Go takes the space as part of the name",
	// RFC 9112 6.1: a server MUST take the framing of an HTTP/1.0 request
	// with Transfer-Encoding as faulty; Go reads it as chunked.
	"Transfer-Encoding in HTTP/1.0": "Go reads the chunked body",
	// RFC 9110 8.6 lets a recipient take identical Content-Lengths as one.
	"two Content-Lengths, equal": "Go takes identical values as one",
	// Go reads the chunked coding and drops Content-Length (RFC 7230
	// allowed that); RFC 9112 6.3 says the server ought to close, and a
	// proxy in front may have framed it by Content-Length: refuse.
	"Transfer-Encoding and Content-Length": "Go uses chunked and ignores Content-Length",
	// ReadRequest takes any method and version; Go's server answers
	// 505 for another major version, and lets handlers answer 405/501.
	"a method not implemented": "Go takes any method",
	"a method nobody knows":    "Go takes any method",
	"HTTP/2.0":                 "ReadRequest takes HTTP/2.0; Go's server checks versions itself",
	"HTTP/0.9":                 "ReadRequest takes HTTP/0.9",
	// RFC 9112 2.2: a server SHOULD ignore at least one empty line before
	// a request (some old clients send one after a POST's body); Go's
	// ReadRequest does not.
	"a leading empty line": "Go refuses the empty line",
	// RFC 9112 7.1.1 allows whitespace (BWS) before a chunk extension's
	// semicolon, and nowhere else on the size line; Go has it the other
	// way round.
	"whitespace before a chunk extension": "Go refuses the space",
	"whitespace after a chunk size":       "Go takes the space",
	// Go's server checks Host (and sets limits) after ReadRequest.
	"no Host in HTTP/1.1":          "Go's server checks Host, not ReadRequest",
	"an invalid Host":              "Go's server checks Host, not ReadRequest",
	"a body over -maxbody":         "ReadRequest has no body limit",
	"a chunked body over -maxbody": "ReadRequest has no body limit",
	"a request line over 8 KiB":    "ReadRequest has no line limit",
	"a header section over 16 KiB": "ReadRequest has no header limit (the server's is 1 MiB)",
	"101 header fields":            "ReadRequest has no limit on fields",
}

// outcome is what one parser made of some bytes: accepted, with the
// request and the bytes it took, or refused.
type outcome struct {
	ok                         bool
	used                       int
	method, target, host, body string
	header                     http.Header
	close                      bool
}

func (o outcome) String() string {
	if !o.ok {
		return "refused (or incomplete)"
	}
	return fmt.Sprintf("%s %s host %q close %v used %d header %v body %q", o.method, o.target, o.host, o.close, o.used, o.header, o.body)
}

func ours(in []byte) outcome {
	req, used, err := parse(in, serverLimits)
	if err != nil || req == nil {
		return outcome{}
	}
	h := http.Header{}
	for _, f := range req.fields {
		if k := textproto.CanonicalMIMEHeaderKey(f[0]); k != "Host" && k != "Transfer-Encoding" {
			h[k] = append(h[k], f[1])
		}
	}
	return outcome{true, used, req.method, req.target, req.host, string(req.body), h, req.close}
}

func theirs(in []byte) outcome {
	src := bytes.NewReader(in)
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		return outcome{}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return outcome{}
	}
	used := len(in) - br.Buffered() - src.Len()
	return outcome{true, used, req.Method, req.RequestURI, req.Host, string(body), req.Header, req.Close}
}

// TestAgainstNetHTTP: for every request of the tests and of the fuzzing
// corpus, net/http's ReadRequest and this parser agree on whether it is
// a request, and, where both take it, on its method, target, host, header
// fields, body, whether the connection closes, and where it ends; except
// for the cases in differs, which must differ, so that the list stays
// true.
func TestAgainstNetHTTP(t *testing.T) {
	booktest.CheckFDs(t)
	cases := map[string]string{}
	for _, c := range accepted {
		cases[c.name] = c.req
	}
	for _, c := range refused {
		cases[c.name] = c.req
	}
	seen := map[string]bool{}
	for name, req := range cases {
		seen[corpusName(name)] = true
		a, b := ours([]byte(req)), theirs([]byte(req))
		same := a.ok == b.ok && (!a.ok || a.String() == b.String())
		if why, ok := differs[name]; ok == same {
			t.Errorf("%s (%q):\n ours:   %v\n theirs: %v\nlisted as differing: %v (%s)", name, req, a, b, ok, why)
		}
	}
	for _, c := range accepted {
		if !ours([]byte(c.req)).ok {
			t.Errorf("%s: refused, want it accepted", c.name)
		}
	}
	// The corpus files that no table holds (inputs the fuzzer found) must
	// agree too.
	files, _ := filepath.Glob("testdata/fuzz/FuzzParse/*")
	for _, f := range files {
		if seen[filepath.Base(f)] {
			continue
		}
		in := readCorpus(t, f)
		if a, b := ours(in), theirs(in); a.ok != b.ok || a.ok && a.String() != b.String() {
			t.Errorf("%s (%q):\n ours:   %v\n theirs: %v", f, in, a, b)
		}
	}
}

var update = flag.Lookup("update")

// corpusName is a case's file name in the corpus.
func corpusName(name string) string {
	return regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-")
}

// TestSeedCorpus: testdata/fuzz/FuzzParse holds every request of the
// tests' tables, in Go's corpus format, so that go test runs FuzzParse on
// each and fuzzing starts from them. -update writes them.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	all := slices.Clone(accepted)
	for _, c := range refused {
		all = append(all, struct{ name, req string }{c.name, c.req})
	}
	for _, c := range all {
		path := filepath.Join(dir, corpusName(c.name))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", c.req)
		if update != nil && update.Value.String() == "true" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("%s is not the case %q (%v): run go test ./code/19-http -update", path, c.name, err)
		}
	}
}

// readCorpus reads a corpus file of one []byte value.
func readCorpus(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var s string
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a corpus file of one value", path)
	}
	if _, err := fmt.Sscanf(lines[1], "[]byte(%q)", &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// small limits make the fuzzer meet every limit with short inputs.
var small = limits{line: 40, header: 120, fields: 4, body: 16}

// FuzzParse: whatever the bytes, parse does not panic, takes no more than
// it is given, and says exactly one of three things: a request (and how
// many bytes it took), not all here yet, or refused with a status this
// server sends. A request is self-delimiting: it parses the same alone,
// and no shorter prefix of it is a whole request. What it took stays
// within the limits.
func FuzzParse(f *testing.F) {
	statuses := []int{400, 413, 414, 431, 501, 505}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, lim := range []limits{serverLimits, small} {
			req, used, err := parse(in, lim)
			var bad *badRequest
			switch {
			case err != nil:
				if !errors.As(err, &bad) || !slices.Contains(statuses, bad.status) || req != nil || used != 0 {
					t.Fatalf("refused with %v (%T), req %v, used %d", err, err, req, used)
				}
			case req == nil:
				if used != 0 {
					t.Fatalf("incomplete, but used %d", used)
				}
			default:
				if used <= 0 || used > len(in) {
					t.Fatalf("used %d of %d bytes", used, len(in))
				}
				again, n, err := parse(in[:used], lim)
				if again == nil || n != used || err != nil {
					t.Fatalf("the %d bytes it took, alone: %v, %d, %v", used, again, n, err)
				}
				if r, n, err := parse(in[:used-1], lim); r != nil || n != 0 || err != nil {
					t.Fatalf("a prefix of a request, one byte short: %v, %d, %v; want incomplete", r, n, err)
				}
				if len(req.body) > lim.body || len(req.fields) > lim.fields ||
					!slices.Contains([]string{"GET", "HEAD", "POST"}, req.method) || !strings.HasPrefix(req.path, "/") {
					t.Fatalf("outside the limits or the server's methods: %+v", req)
				}
			}
		}
	})
}
