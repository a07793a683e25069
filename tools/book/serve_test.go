package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
