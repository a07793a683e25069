package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// live is the state of the site being served: a version that counts
// rebuilds, and the errors of the last build (empty when it succeeded).
// Pages wait on it to reload, or to show what is wrong.
type live struct {
	mu      sync.Mutex
	version int
	errText string
	changed chan struct{} // closed and replaced at each new version
}

func newLive() *live { return &live{changed: make(chan struct{})} }

func (l *live) set(errText string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.version++
	l.errText = errText
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *live) state() (int, string, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.version, l.errText, l.changed
}

// liveScript reloads the page when the site is rebuilt, and shows the
// build's errors over the page when it fails. It is added to pages as they
// are served, never to site/.
const liveScript = `<script>(function () {
  var seen = -1;
  function show(err) {
    var box = document.getElementById("book-build-error");
    if (!err) { if (box) box.remove(); return; }
    if (!box) {
      box = document.createElement("pre");
      box.id = "book-build-error";
      box.setAttribute("role", "alert");
      box.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:99;margin:0;max-height:50vh;overflow:auto;" +
        "background:#400;color:#fff;font:14px/1.4 monospace;padding:1rem;white-space:pre-wrap";
      document.body.appendChild(box);
    }
    box.textContent = "The last build failed; this is the previous site.\n\n" + err;
  }
  function poll() {
    fetch("/__book/wait?v=" + seen).then(function (r) { return r.json(); }).then(function (s) {
      if (seen >= 0 && s.v !== seen && !s.err) { location.reload(); return; }
      seen = s.v;
      show(s.err);
      poll();
    }, function () { setTimeout(poll, 1000); });
  }
  poll();
})();</script>`

// How long the preview waits for a client. A browser on the same machine
// sends its headers at once, and opens a new connection when it needs one:
// a connection that sends nothing for this long is closed, so an idle or
// stalled client cannot hold one open for ever. A long poll of /__book/wait
// is a request being answered, not an idle connection: it is not cut.
const (
	headerTimeout = 5 * time.Second
	idleTimeout   = 5 * time.Second
	longPoll      = 25 * time.Second
)

// liveHandler serves the site in dir, adds liveScript to each page, and
// answers /__book/wait?v=N when the version is no longer N (or after
// longPoll). It answers only requests that name it by its address, addr.
func liveHandler(dir string, l *live, addr net.Addr) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__book/wait", func(w http.ResponseWriter, r *http.Request) {
		seen, _ := strconv.Atoi(r.URL.Query().Get("v"))
		if v, _, ch := l.state(); v == seen {
			select {
			case <-ch:
			case <-time.After(longPoll):
			case <-r.Context().Done():
				return
			}
		}
		v, errText, _ := l.state()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"v": v, "err": errText})
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		serveSiteFile(w, r, dir)
	})
	return onlyHost(addr, mux)
}

// serveSiteFile answers with the file of the site in dir that the request
// names, and never with a file outside it. r.URL.Path is already decoded:
// "/..%2f..%2fetc%2fpasswd" arrives as "/../../etc/passwd". fs.ValidPath
// refuses every ".." and ".", and a leading or doubled slash; os.Root then
// refuses whatever would still leave dir, through a symlink in site/ that
// points out of it.
func serveSiteFile(w http.ResponseWriter, r *http.Request, dir string) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	if !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	// Opened for each request, not once: each build replaces site/ with a
	// new directory, and a root opened earlier stays on the old one.
	root, err := os.OpenRoot(dir)
	if err != nil {
		http.Error(w, "the site is not built", http.StatusServiceUnavailable)
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() { // no directory listings
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if path.Ext(name) != ".html" {
		http.ServeContent(w, r, name, info.ModTime(), f)
		return
	}
	data, err := io.ReadAll(f)
	if err != nil {
		http.Error(w, fmt.Sprintf("reading %s: %v", name, err), http.StatusInternalServerError)
		return
	}
	data = bytes.Replace(data, []byte("</body>"), []byte(liveScript+"\n</body>"), 1)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(data)
}

// onlyHost answers only requests whose Host is the preview's own loopback
// address, as 127.0.0.1, [::1] or localhost, with its port. A page of
// another site can have its name resolve to 127.0.0.1 (DNS rebinding) and
// then read what its scripts fetch from "its" server: the book, and the
// build's errors. The browser still sends that site's name as Host.
func onlyHost(addr net.Addr, h http.Handler) http.Handler {
	_, port, _ := net.SplitHostPort(addr.String()) // a TCP address has one
	allowed := map[string]bool{strings.ToLower(addr.String()): true}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		allowed[net.JoinHostPort(host, port)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[strings.ToLower(r.Host)] {
			http.Error(w, "this server answers only to http://"+net.JoinHostPort("127.0.0.1", port)+"/", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// snapshot describes the watched files: a change to any of them changes it.
func snapshot(root string, dirs ...string) string {
	var b strings.Builder
	for _, d := range dirs {
		filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			if info, err := e.Info(); err == nil {
				fmt.Fprintf(&b, "%s %d %d\n", p, info.Size(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return b.String()
}

// rebuild builds the site after a change. A change to the generator itself
// is built by the generator as it is now, in a new process; otherwise this
// process builds, which is faster.
func rebuild(ctx context.Context, root, site string, toolsChanged bool) error {
	if !toolsChanged {
		// Highlights are kept from one build to the next, so that a
		// rebuild highlights only the files that changed. keep starts a
		// build: what the build before used is at hand, anything older
		// (an edited file's earlier versions) is forgotten.
		keptHighlights.keep()
		return Build(root, site)
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./tools/book", "build")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(string(out)))
	}
	return nil
}

// serve builds the site, serves it on ln, and rebuilds it whenever
// chapters/, code/ or tools/ change, until ctx ends. It closes ln, also
// when the first build fails: a browser waiting on it is told at once.
func serve(ctx context.Context, root string, ln net.Listener) error {
	defer ln.Close()
	site := filepath.Join(root, "site")
	l := newLive()
	// Look at the sources before the first build, not after it: an edit
	// made while it runs, or before the loop below starts, is then seen
	// as a change, never taken for what was built.
	content, tools := snapshot(root, "chapters", "code"), snapshot(root, "tools")
	seen, seenTools := content, tools // the last snapshot taken, built or not
	if err := rebuild(ctx, root, site, false); err != nil {
		if _, statErr := os.Stat(site); statErr != nil {
			return buildFailed(err) // nothing to serve
		}
		fmt.Fprintln(os.Stderr, buildFailed(err))
		l.set(err.Error())
	}
	srv := &http.Server{
		Handler:           liveHandler(site, l, ln.Addr()),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleTimeout,
	}
	fmt.Printf("serving the book on http://%s/ (rebuilt when chapters/, code/ or tools/ change; Ctrl-C to stop)\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(shutdown) // long polls end with the server
			return nil
		case <-tick.C:
		}
		c, t := snapshot(root, "chapters", "code"), snapshot(root, "tools")
		if c == content && t == tools {
			continue
		}
		// An editor, or a test, may be half-way through writing a file:
		// build only once nothing has changed for a whole tick, so that a
		// file caught empty or half-written is never built.
		if c != seen || t != seenTools {
			seen, seenTools = c, t
			continue
		}
		start := time.Now()
		err := rebuild(ctx, root, site, t != tools)
		content, tools = c, t
		if err != nil {
			fmt.Fprintf(os.Stderr, "%v\nbuild failed; serving the previous site\n", err)
			l.set(err.Error())
			continue
		}
		fmt.Printf("rebuilt in %v\n", time.Since(start).Round(time.Millisecond))
		l.set("")
	}
}
