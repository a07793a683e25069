package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// liveHandler serves the site, adds liveScript to each page, and answers
// /__book/wait?v=N when the version is no longer N (or after 25 s).
func liveHandler(dir string, l *live) http.Handler {
	files := http.FileServer(http.Dir(dir))
	mux := http.NewServeMux()
	mux.HandleFunc("/__book/wait", func(w http.ResponseWriter, r *http.Request) {
		v, ch := 0, (chan struct{})(nil)
		seen, _ := strconv.Atoi(r.URL.Query().Get("v"))
		if v, _, ch = l.state(); v == seen {
			select {
			case <-ch:
			case <-time.After(25 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		v, errText, _ := l.state()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"v": v, "err": errText})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if strings.HasSuffix(name, "/") {
			name += "index.html"
		}
		if !strings.HasSuffix(name, ".html") {
			w.Header().Set("Cache-Control", "no-store")
			files.ServeHTTP(w, r)
			return
		}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		data = bytes.Replace(data, []byte("</body>"), []byte(liveScript+"\n</body>"), 1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(data)
	})
	return mux
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
// chapters/, code/ or tools/ change, until ctx ends.
func serve(ctx context.Context, root string, ln net.Listener) error {
	site := filepath.Join(root, "site")
	keptHighlights.keep() // rebuilds highlight only the files that changed
	l := newLive()
	// Look at the sources before the first build, not after it: an edit
	// made while it runs, or before the loop below starts, is then seen
	// as a change, never taken for what was built.
	content, tools := snapshot(root, "chapters", "code"), snapshot(root, "tools")
	seen, seenTools := content, tools // the last snapshot taken, built or not
	if err := Build(root, site); err != nil {
		if _, statErr := os.Stat(site); statErr != nil {
			return buildFailed(err) // nothing to serve
		}
		fmt.Fprintln(os.Stderr, buildFailed(err))
		l.set(err.Error())
	}
	srv := &http.Server{Handler: liveHandler(site, l), ReadHeaderTimeout: 10 * time.Second}
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
