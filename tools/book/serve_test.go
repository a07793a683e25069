package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServe runs make serve's loop on the book in root, on a loopback
// port, until the test ends, and returns the site's address.
func startServe(t *testing.T, root string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, root, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// make serve rebuilds on a change, keeps the last good site when a build
// fails and tells open pages why, and tells them to reload once it is fixed.
func TestServeRebuilds(t *testing.T) {
	root := writeBook(t, fixture())
	base := startServe(t, root)
	client := &http.Client{Timeout: 40 * time.Second}
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	type state struct {
		V   int    `json:"v"`
		Err string `json:"err"`
	}
	wait := func(v int) state {
		t.Helper()
		var s state
		if err := json.Unmarshal([]byte(get("/__book/wait?v="+strconv.Itoa(v))), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	edit := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "chapters", "01-first.md"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	page := get("/01-first.html")
	if !strings.Contains(page, "Some prose.") || !strings.Contains(page, "/__book/wait") {
		t.Fatalf("served page lacks its prose or the reload script:\n%s", page)
	}
	if s := wait(-1); s.V != 0 || s.Err != "" {
		t.Fatalf("initial state %+v", s)
	}
	// The script is added as pages are served, never written to site/.
	if data, _ := os.ReadFile(filepath.Join(root, "site", "01-first.html")); strings.Contains(string(data), "__book") {
		t.Error("site/ holds the reload script")
	}

	chapter := fixture()["chapters/01-first.md"]
	edit(strings.Replace(chapter, "Some prose.", "Changed prose.", 1))
	if s := wait(0); s.V != 1 || s.Err != "" {
		t.Fatalf("after an edit: %+v", s)
	}
	if !strings.Contains(get("/01-first.html"), "Changed prose.") {
		t.Error("the edit is not served")
	}

	edit(strings.Replace(chapter, "region=hello", "region=nope", 1))
	s := wait(1)
	if want := `chapters/01-first.md:8: region "nope" not found in code/01-first/main.go`; s.V != 2 || !strings.Contains(s.Err, want) {
		t.Fatalf("after a bad edit: %+v, want the error %q", s, want)
	}
	if !strings.Contains(get("/01-first.html"), "Changed prose.") {
		t.Error("a failed build did not keep the previous site")
	}

	edit(chapter)
	if s := wait(2); s.V != 3 || s.Err != "" {
		t.Fatalf("after the fix: %+v", s)
	}
}

// rawGet sends one request for target, byte for byte as given, on a
// connection of its own: no client library cleans or encodes the path
// first. host is the Host header; "" sends none (HTTP/1.0 allows that). It
// returns the status and the body.
func rawGet(t *testing.T, addr, target, host string) (int, string) {
	t.Helper()
	status, body, err := rawRequest(addr, target, host, 10*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return status, body
}

// rawRequest is rawGet for a goroutine of a test, which must not call
// t.Fatal, and for a request that may take up to limit.
func rawRequest(addr, target, host string, limit time.Duration) (int, string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(limit))
	req := "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	if host == "" {
		req = "GET " + target + " HTTP/1.0\r\n\r\n"
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("reading the body: %w", err)
	}
	return resp.StatusCode, string(body), nil
}

// make serve serves the files of site/ and nothing else, however the path
// is spelled: encoded dots and slashes, backslashes, NUL, absolute paths,
// and symlinks in site/ that point out of it.
func TestServeStaysInSite(t *testing.T) {
	root := writeBook(t, fixture())
	const secret = "outside-the-site-7f3a" // in every file outside site/
	for _, name := range []string{"secret.html", "secret.txt"} {
		text := "<html><body>" + secret + "</body></html>\n"
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := strings.TrimPrefix(startServe(t, root), "http://")
	if status, _ := rawGet(t, addr, "/01-first.html", addr); status != http.StatusOK {
		t.Fatalf("GET /01-first.html: %d", status)
	}
	// The first build has made site/, and is served: plant links in it, as
	// a careless generator or a hostile contributor might.
	site := filepath.Join(root, "site")
	for link, target := range map[string]string{
		"leak.html":  "../secret.html",                  // relative, out
		"leak.txt":   filepath.Join(root, "secret.txt"), // absolute, out
		"out":        root,                              // a directory, out
		"alias.html": "01-first.html",                   // inside: fine
	} {
		if err := os.Symlink(target, filepath.Join(site, link)); err != nil {
			t.Fatal(err)
		}
	}

	// Each path a browser, curl --path-as-is or a script could send.
	abs := filepath.ToSlash(filepath.Join(root, "secret.html"))
	for _, target := range []string{
		"/../secret.html",
		"/code/../../secret.html",
		"/./../secret.html",
		"/..%2fsecret.html",
		"/..%2Fsecret.txt",
		"/%2e%2e/secret.html",
		"/%2e%2e%2fsecret.html",
		"/%2E%2E%2Fsecret.txt",
		"/.%2e/secret.html",
		"/%2e./secret.html",
		"/%c0%ae%c0%ae%c0%afsecret.html", // overlong UTF-8 for "../"
		"/code/..%2f..%2fsecret.html",
		"/code/%2e%2e%2f%2e%2e%2fsecret.txt",
		"/assets/..%2f..%2fsecret.txt",
		"/..%5csecret.html",
		"/%2e%2e%5csecret.html",
		"/..\\secret.html",
		"/%252e%252e%252fsecret.html",
		"/..%252fsecret.html",
		"/..%2fsecret.html%00",
		"/..%2fsecret.txt%00.html",
		"/leak.html",
		"/leak.txt",
		"/out/secret.html",
		"/out/secret.txt",
		"/" + abs,
		"/" + strings.ReplaceAll(abs, "/", "%2f"),
		"/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f" + strings.ReplaceAll(abs[1:], "/", "%2f"),
		"http://" + addr + "/..%2fsecret.html", // absolute-form request target
	} {
		status, body := rawGet(t, addr, target, addr)
		if status == http.StatusOK || strings.Contains(body, secret) {
			t.Errorf("GET %s: %d, body %.200q: a file outside site/ is served", target, status, body)
		}
	}
	// The same for a file of the machine's, when there is one to ask for.
	if passwd, err := os.ReadFile("/etc/passwd"); err == nil && len(passwd) > 0 {
		first, _, _ := strings.Cut(string(passwd), "\n")
		for _, target := range []string{
			"//etc/passwd",
			"/%2fetc%2fpasswd",
			"/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
			"/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		} {
			if status, body := rawGet(t, addr, target, addr); status == http.StatusOK || strings.Contains(body, first) {
				t.Errorf("GET %s: %d, body %.200q: /etc/passwd is served", target, status, body)
			}
		}
	}

	// What is in site/ is still served, pages with the reload script.
	for target, want := range map[string]string{
		"/":                 "<html",
		"/01-first.html":    "/__book/wait",
		"/alias.html":       "Some prose.",
		"/assets/style.css": "{",
	} {
		if status, body := rawGet(t, addr, target, addr); status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body %.200q, want 200 with %q", target, status, body, want)
		}
	}
}

// Only requests that name the preview by its loopback address get an
// answer: a page on another site that rebinds its name to 127.0.0.1 (DNS
// rebinding) must not read the book or its build errors.
func TestServeChecksHost(t *testing.T) {
	addr := strings.TrimPrefix(startServe(t, writeBook(t, fixture())), "http://")
	_, port, _ := net.SplitHostPort(addr)
	for host, ok := range map[string]bool{
		"127.0.0.1:" + port:              true,
		"localhost:" + port:              true,
		"LocalHost:" + port:              true,
		"[::1]:" + port:                  true,
		"evil.example":                   false,
		"evil.example:" + port:           false,
		"127.0.0.1.evil.example:" + port: false,
		"localhost.evil.example:" + port: false,
		"localhost":                      false,
		"127.0.0.1:1":                    false,
		"":                               false,
	} {
		for _, target := range []string{"/01-first.html", "/__book/wait?v=-1"} {
			status, body := rawGet(t, addr, target, host)
			served := status == http.StatusOK
			if served != ok {
				t.Errorf("GET %s with Host %q: %d, body %.100q; want served=%v", target, host, status, body, ok)
			}
			if !ok && status != http.StatusMisdirectedRequest && status != http.StatusForbidden {
				t.Errorf("GET %s with Host %q: %d, want 421 or 403", target, host, status)
			}
		}
	}
	// An absolute-form target names the host too, and wins over the header.
	if status, _ := rawGet(t, addr, "http://evil.example/01-first.html", addr); status == http.StatusOK {
		t.Errorf("GET http://evil.example/01-first.html: %d, want it refused", status)
	}
}

// An idle keep-alive connection is closed after a while, and so is one
// that never finishes its headers; but a page's long poll of /__book/wait,
// longer than both, still gets its answer.
func TestServeTimesOutIdleConnections(t *testing.T) {
	root := writeBook(t, fixture())
	addr := strings.TrimPrefix(startServe(t, root), "http://")

	// The long poll, started now, answered after the edit at the end.
	polled := make(chan string, 1)
	go func() {
		status, body, err := rawRequest(addr, "/__book/wait?v=0", addr, time.Minute)
		polled <- fmt.Sprint(status, " ", body, err)
	}()
	// A request that never ends its headers.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /01-first.html HTTP/1.1\r\n")
	slow.SetDeadline(time.Now().Add(headerTimeout + 3*time.Second))
	// A request answered, on a connection then left open and idle.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /01-first.html HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	idle.SetDeadline(time.Now().Add(idleTimeout + 3*time.Second))
	r := bufio.NewReader(idle)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	start := time.Now()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("an idle keep-alive connection is still open after %v (read: %v), want it closed", time.Since(start).Round(time.Second), err)
	}
	if _, err := io.ReadAll(slow); err != nil {
		t.Errorf("a connection that never ends its headers is still open: %v", err)
	}

	// The long poll has now waited longer than both limits.
	chapter := filepath.Join(root, "chapters", "01-first.md")
	if err := os.WriteFile(chapter, []byte(strings.Replace(fixture()["chapters/01-first.md"], "Some prose.", "New prose.", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-polled:
		if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"v":1`) || !strings.HasSuffix(got, "<nil>") {
			t.Errorf("the long poll got %q, want 200 with version 1", got)
		}
	case <-time.After(30 * time.Second):
		t.Error("the long poll got no answer 30 s after an edit")
	}
}

// highlightEntries is how many highlighted files the cache holds.
func highlightEntries() int {
	keptHighlights.mu.Lock()
	defer keptHighlights.mu.Unlock()
	return len(keptHighlights.m) + len(keptHighlights.last)
}

// make serve keeps highlighted files between rebuilds, but not every
// version of every file ever saved: after many edits of a program it holds
// no more than twice what one build needs.
func TestServeHighlightCacheBounded(t *testing.T) {
	root := writeBook(t, fixture())
	site := filepath.Join(root, "site")
	keptHighlights.keep() // as serve does when it starts
	if err := rebuild(context.Background(), root, site, false); err != nil {
		t.Fatal(err)
	}
	fresh := highlightEntries()
	if fresh == 0 {
		t.Fatal("the cache is empty after a build: nothing to bound")
	}
	main := filepath.Join(root, "code", "01-first", "main.go")
	for i := range 3*fresh + 3 {
		text := strings.Replace(fixture()["code/01-first/main.go"], `"hello"`, fmt.Sprintf(`"hello, %d"`, i), 1)
		if err := os.WriteFile(main, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := rebuild(context.Background(), root, site, false); err != nil {
			t.Fatal(err)
		}
		if n := highlightEntries(); n > 2*fresh {
			t.Fatalf("after %d edits of main.go the cache holds %d files; one build needs %d", i+1, n, fresh)
		}
	}
}

// make serve, stopped as a terminal stops it (Ctrl-C sends SIGINT to make,
// to what it runs and to the server, all in the foreground process group)
// or by SIGTERM to make alone, stops the server cleanly and prints no
// "make: ***" line. Make 4.3 itself then ends by the signal it got: its
// handler waits for its children and kills itself with that signal again,
// whatever they did, which the shell shows as nothing (status 130 for
// SIGINT). The server's own status is what make reports: anything but 0
// is a "***" line.
func TestMakeServeStops(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed: make serve's test skipped")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture book, with the repository's Makefile and generator: make
	// serve builds the fixture's site/, never the repository's. tools/ is
	// a directory of links, which serve does not follow when it watches
	// tools/ for changes: an edit of the generator made meanwhile does not
	// start a rebuild.
	root := writeBook(t, fixture())
	if err := os.Mkdir(filepath.Join(root, "tools"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Makefile", "go.mod", "go.sum", "tools/book", "tools/exercises"} {
		if err := os.Symlink(filepath.Join(repo, name), filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	book := filepath.Join(t.TempDir(), "book") // the program make serve builds and runs
	for _, tc := range []struct {
		name  string
		sig   syscall.Signal
		group bool // to the whole process group, as a terminal's Ctrl-C
	}{
		{"Ctrl-C", syscall.SIGINT, true},
		{"SIGTERM to make", syscall.SIGTERM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// env --default-signal: make starts with every signal at its
			// default, as a terminal's shell starts it, even when this test
			// runs with SIGINT ignored (in the background of a script).
			cmd := exec.Command("env", "--default-signal", "make", "serve", "ADDR=127.0.0.1:0", "BOOK="+book)
			cmd.Dir = root
			cmd.Env = withoutMake(os.Environ())
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			// A file, not a pipe: Wait returns when make ends, even if a
			// process it left behind still holds its output.
			out, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			output := func() string {
				data, _ := os.ReadFile(out.Name())
				return string(data)
			}
			pgid := cmd.Process.Pid
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			gone := false // the group has ended: its number may be reused
			t.Cleanup(func() {
				if !gone {
					syscall.Kill(-pgid, syscall.SIGKILL)
				}
			})

			// make serve builds tools/book first: on a loaded machine, slowly.
			deadline := time.Now().Add(3 * time.Minute)
			for !strings.Contains(output(), "serving the book on http://127.0.0.1:") {
				select {
				case err := <-done:
					t.Fatalf("make serve ended before serving (%v):\n%s", err, output())
				case <-time.After(100 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("make serve is not serving after 3 minutes:\n%s", output())
				}
			}
			target := pgid
			if tc.group {
				target = -pgid
			}
			if err := syscall.Kill(target, tc.sig); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			select {
			case waitErr = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("make serve still running 20 s after %v:\n%s", tc.sig, output())
			}
			if strings.Contains(output(), "***") {
				t.Errorf("make printed an error line after %v:\n%s", tc.sig, output())
			}
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != tc.sig {
				t.Errorf("make ended with %v, want it ended by %v as make does:\n%s", waitErr, tc.sig, output())
			}
			// Nothing make started is left: the server has stopped too.
			for end := time.Now().Add(5 * time.Second); syscall.Kill(-pgid, 0) == nil; time.Sleep(50 * time.Millisecond) {
				if time.Now().After(end) {
					ps, _ := exec.Command("pgrep", "-a", "-g", strconv.Itoa(pgid)).CombinedOutput()
					t.Fatalf("processes of make serve left 5 s after it ended:\n%s", ps)
				}
			}
			gone = true
		})
	}
}

// withoutMake drops what an enclosing make (make test) passes to the makes
// it runs: its flags and job server are not for this one.
func withoutMake(env []string) []string {
	var kept []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" && name != "MAKEOVERRIDES" {
			kept = append(kept, kv)
		}
	}
	return kept
}
