//go:build linux

package main

import (
	"context"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowser has Chromium (headless, as the site's own tests start it)
// read the book through the server: the committed site/, served read-only
// as it is, every page of it, then the search. A console error, an
// exception, a request that fails or is answered 400 or more fails the
// test, at the page it happened on.
func TestBrowser(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("Chromium is not installed (apt-get install chromium); this test needs it")
	}
	site, err := filepath.Abs("../../site")
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	err = filepath.WalkDir(site, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".html") {
			pages = append(pages, strings.TrimPrefix(p, site+"/"))
		}
		return err
	})
	if err != nil || len(pages) < 20 {
		t.Fatalf("the committed site: %d pages, %v", len(pages), err)
	}
	srv := start(t, site, false)
	base := "http://" + srv.Addr() + "/"

	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(browser); err != nil { // start Chromium
		t.Fatal(err)
	}
	// Two tabs read half the pages each, at the same time.
	var wg sync.WaitGroup
	for i := range 2 {
		tb := newTab(t, browser)
		wg.Go(func() {
			for k := i; k < len(pages); k += 2 {
				if !tb.run(t, pages[k], chromedp.Navigate(base+pages[k])) {
					return
				}
				if title := tb.eval(t, "document.title"); title == "" {
					t.Errorf("%s: no title: the page did not load", pages[k])
				}
			}
		})
	}
	wg.Wait()
	tb := newTab(t, browser)
	// The search: its index is a script the page loads; a word of chapter
	// 4 finds chapter 4.
	tb.run(t, "search", chromedp.Navigate(base+"index.html"), chromedp.Click(chromedp.ID("search")),
		chromedp.SendKeys(chromedp.ID("search"), "backlog"), chromedp.WaitVisible(chromedp.CSS("#search-results li a")))
	first := tb.eval(t, `document.querySelector("#search-results li a").getAttribute("href")`)
	if !strings.HasPrefix(first, "04-listen.html") {
		t.Errorf(`search for "backlog": first result %q, want 04-listen.html`, first)
	}
}

// tab is one tab of the browser, with what went wrong in it.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

// newTab opens a tab that records console errors, exceptions, browser
// errors, failed requests, and answers of 400 or more.
func newTab(t *testing.T, browser context.Context) *tab {
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				tb.problems = append(tb.problems, "console error")
			}
		case *runtime.EventExceptionThrown:
			tb.problems = append(tb.problems, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				tb.problems = append(tb.problems, "browser error: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				tb.problems = append(tb.problems, "request failed: "+ev.ErrorText)
			}
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				tb.problems = append(tb.problems, "HTTP "+ev.Response.StatusText+": "+ev.Response.URL)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// run runs actions on the page with a bound of a minute, and fails the
// test with every problem the tab recorded. It reports whether the
// actions ran (t.Errorf, not t.Fatalf: it runs in goroutines).
func (tb *tab) run(t *testing.T, page string, actions ...chromedp.Action[chromedp.Void]) bool {
	ctx, stop := context.WithTimeout(tb.ctx, time.Minute)
	defer stop()
	err := chromedp.Do(ctx, actions...)
	if err != nil {
		t.Errorf("%s: %v", page, err)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		t.Errorf("%s: %s", page, p)
	}
	tb.problems = nil
	return err == nil
}

// eval evaluates js in the tab and returns its string value.
func (tb *tab) eval(t *testing.T, js string) string {
	ctx, stop := context.WithTimeout(tb.ctx, time.Minute)
	defer stop()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAsValue))
	if err != nil {
		t.Errorf("%s: %v", js, err)
	}
	return v
}
