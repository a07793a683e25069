package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser tests build the book, serve it on loopback, and read it in
// headless Chromium (Debian's chromium package) as a reader would.

// browser starts Chromium for one test, or skips the test where Chromium
// is not installed. In CI it must be: .ci/run installs it, and a skip there
// would pass off an unrun check as done.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is not installed; CI must install it (apt-get install chromium)")
		}
		t.Skip("Chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	// On a loaded machine Chromium now and then dies while it starts
	// (its crash handler reports it before the first page): that is not
	// the book's fault, so it gets three tries, each with a profile of its
	// own. What goes wrong once it runs fails the test as always.
	var failures []string
	for range 3 {
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromiumOptions(path, t.TempDir())...)
		ctx, cancel := chromedp.NewContext(actx)
		// Start the browser now, with no deadline on this first run.
		err := chromedp.Do(ctx)
		if err == nil {
			t.Cleanup(func() { cancel(); cancelAlloc() })
			return ctx
		}
		cancel()
		cancelAlloc()
		failures = append(failures, err.Error())
		line, _, _ := strings.Cut(err.Error(), "\n")
		t.Logf("start Chromium: %s; trying again", line)
	}
	t.Fatalf("start Chromium, three times:\n%s", strings.Join(failures, "\n"))
	return nil
}

// builtBook is the real book, built once for all the browser tests, in a
// directory TestMain removes.
var builtBook struct {
	once  sync.Once
	dir   string
	pages []string
	err   error
}

// serveBook serves the real book on 127.0.0.1 for one test. It returns the
// site's URL and its pages.
func serveBook(t *testing.T) (string, []string) {
	t.Helper()
	site, pages := realSite(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(site)))
	t.Cleanup(srv.Close)
	return srv.URL + "/", pages
}

// realSite builds the real book once for all the tests that read it (the
// browser tests, TestSiteIsCurrent), and returns the directory of the
// site and its pages. A test must not change what is in it.
func realSite(t *testing.T) (string, []string) {
	t.Helper()
	b := &builtBook
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "book-browser-"); b.err != nil {
			return
		}
		site := filepath.Join(b.dir, "site")
		// The build links the PDF it finds, which only the pdf command
		// prints: site/'s, as make site builds it.
		if b.err = copyPDF(filepath.Join("..", "..", "site"), site); b.err != nil {
			return
		}
		if b.err = Build(filepath.Join("..", ".."), site); b.err != nil {
			return
		}
		var files map[string][]byte
		files, b.err = readTree(site)
		for name := range files {
			if strings.HasSuffix(name, ".html") {
				b.pages = append(b.pages, name)
			}
		}
		sort.Strings(b.pages)
	})
	if b.err != nil {
		t.Fatalf("the book does not build:\n%v", b.err)
	}
	return filepath.Join(b.dir, "site"), b.pages
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBook.dir != "" {
		os.RemoveAll(builtBook.dir)
	}
	os.Exit(code)
}

// openBook starts Chromium, serves the real book and opens a tab on it.
func openBook(t *testing.T) (*tab, string, []string) {
	t.Helper()
	ctx := browser(t)
	site, pages := serveBook(t)
	return newTab(t, ctx, site), site, pages
}

// tab opens a new tab and records what goes wrong in it: console errors,
// uncaught exceptions, failed requests and requests that leave the site.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T, browserCtx context.Context, site string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	tb := &tab{ctx: ctx}
	host := mustHost(t, site)
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				tb.problems = append(tb.problems, "console error: "+consoleText(ev))
			}
		case *runtime.EventExceptionThrown:
			tb.problems = append(tb.problems, "exception: "+ev.ExceptionDetails.Text+" "+exceptionText(ev))
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				tb.problems = append(tb.problems, "browser error: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, "data:") && mustHost(t, u) != host {
				tb.problems = append(tb.problems, "request outside the site: "+u)
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

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("bad URL %q: %v", raw, err)
		return ""
	}
	return u.Host
}

func consoleText(ev *runtime.EventConsoleAPICalled) string {
	var parts []string
	for _, a := range ev.Args {
		parts = append(parts, string(a.Value)+a.Description)
	}
	return strings.Join(parts, " ")
}

func exceptionText(ev *runtime.EventExceptionThrown) string {
	if ev.ExceptionDetails.Exception != nil {
		return ev.ExceptionDetails.Exception.Description
	}
	return ""
}

// check fails the test with every problem the tab recorded.
func (tb *tab) check(t *testing.T, page string) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		t.Errorf("%s: %s", page, p)
	}
	tb.problems = nil
}

// run runs actions with a generous limit, so a broken page fails rather
// than hangs.
func (tb *tab) run(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, stepLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, tb *tab, js string) T {
	t.Helper()
	return evalWithin[T](t, tb, stepLimit, js)
}

// stepLimit bounds one step in a tab. Generous: loading book.html, the
// whole book, takes seconds, and far longer on a machine that runs other
// test suites, each with browsers of its own, on the same two cores.
const stepLimit = 2 * time.Minute

// evalWithin is eval with another limit, for a script that takes long on
// a busy machine (axe on the whole book takes 20 to 35 s with 2 cores).
func evalWithin[T any](t *testing.T, tb *tab, limit time.Duration, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, limit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// Every page loads with no console error, no failed request, nothing from
// outside the site, and a favicon that loads; every link within the site
// leads to a page that loaded and to an element that is on it; on a
// phone-sized screen no page scrolls sideways. At both sizes, the
// transcripts pass TestBrowserTranscripts's check here, where the page is
// loaded anyway: a page load is most of what these tests cost.
func TestBrowserEveryPage(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	site, pages := serveBook(t)
	prog := firstProgram(t, pages)
	var mu sync.Mutex                   // the two maps, filled by two tabs
	ids := map[string]map[string]bool{} // page -> the ids its DOM has
	links := map[string][]string{}      // page -> the site's pages and anchors it links to
	// A page is seconds of waiting on one renderer: two tabs, each a
	// renderer of its own, take every other page, side by side.
	t.Run("pages", func(t *testing.T) {
		for i := range 2 {
			t.Run(fmt.Sprintf("tab%d", i+1), func(t *testing.T) {
				t.Parallel()
				tb := newTab(t, ctx, site)
				for j := i; j < len(pages); j += 2 {
					p := pages[j]
					// Program pages are one template around highlighted
					// Go, long lines scrolling inside their listing: the
					// first program's stand for all on a phone.
					phone := !strings.HasPrefix(p, "code/") || strings.HasPrefix(p, "code/"+prog+".") || p == "code/"+prog+"-tests.html"
					pageIDs, pageLinks := visitPage(t, tb, site, p, phone)
					mu.Lock()
					ids[p], links[p] = pageIDs, pageLinks
					mu.Unlock()
				}
			})
		}
	})
	for _, p := range pages {
		for _, l := range links[p] {
			target, frag, _ := strings.Cut(l, "#")
			if target == "" {
				target = "index.html"
			}
			switch got, ok := ids[target]; {
			case !ok && !strings.HasSuffix(target, ".html"):
				// A download (the EPUB, the PDF): a file of the site.
				dir, _ := realSite(t)
				if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(target))); err != nil {
					t.Errorf("%s links to %s, which is not a file of the site", p, l)
				}
			case !ok:
				t.Errorf("%s links to %s, which is not a page of the site", p, l)
			case frag != "" && !got[frag]:
				t.Errorf("%s links to %s, but %s has no element with id %q", p, l, target, frag)
			}
		}
	}
}

// visitPage loads page p in tb at a desktop's width, and a phone's if
// phone, checks its transcripts, favicon, sidebar and width at each, and
// returns the ids its DOM has and the links it has to the site's pages and
// anchors.
func visitPage(t *testing.T, tb *tab, site, p string, phone bool) (map[string]bool, []string) {
	t.Helper()
	transcripts := func(p string, width int) {
		t.Helper()
		if strings.HasPrefix(p, "code/") {
			return // a program's pages have no transcript
		}
		for _, problem := range eval[[]string](t, tb, transcriptCheck) {
			t.Errorf("%s at %d px: %s", p, width, problem)
		}
	}
	tb.run(t, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(site+p))
	transcripts(p, 1280)
	ids := map[string]bool{}
	for _, id := range eval[[]string](t, tb, `Array.from(document.querySelectorAll("[id]"), e => e.id)`) {
		ids[id] = true
	}
	links := eval[[]string](t, tb, `Array.from(document.querySelectorAll("a[href]"), a => a.href)
		.filter(h => h.startsWith(location.origin + "/")).map(h => h.slice(location.origin.length + 1))`)
	if status := eval[int](t, tb, `fetch(document.querySelector('link[rel="icon"]').href).then(r => r.status)`); status != 200 {
		t.Errorf("%s: favicon answered %d", p, status)
	}
	// The instructors' page is in the sidebar of every page, visible.
	if href := eval[string](t, tb, `(() => {
		const a = Array.from(document.querySelectorAll("nav.toc a")).find(a => a.textContent.trim() === "For instructors");
		return a && a.getBoundingClientRect().height > 0 ? a.href.slice(location.origin.length + 1) : "";
	})()`); href != "instructors.html" {
		t.Errorf("%s: the sidebar has no visible link For instructors to instructors.html (got %q)", p, href)
	}
	if !phone {
		tb.check(t, p)
		return ids, links
	}
	tb.run(t, chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile), chromedp.Reload())
	if wide := eval[bool](t, tb, `document.documentElement.scrollWidth > window.innerWidth + 1`); wide {
		w := eval[int](t, tb, `document.documentElement.scrollWidth`)
		t.Errorf("%s: on a 375 px screen the page is %d px wide", p, w)
	}
	transcripts(p, 375)
	tb.check(t, p)
	return ids, links
}

// transcriptCheck lists what is wrong with the page's transcripts at the
// present window size (TestBrowserTranscripts says what it checks).
const transcriptCheck = `(() => {
	const out = [], wide = innerWidth > 832;
	const prose = document.querySelector("main p").getBoundingClientRect().width;
	const edge = document.documentElement.clientWidth;
	document.querySelectorAll(".transcript").forEach((tr, i) => {
		const n = "transcript " + (i + 1) + " (" + tr.querySelector(".recorded").textContent.split(";")[0] + ")";
		const r = tr.getBoundingClientRect();
		if (r.right > edge + 0.5) out.push(n + " reaches past the window: " + r.right + " > " + edge);
		if (wide && r.width < prose + 64) out.push(n + " is " + r.width + " px wide, no wider than the prose's " + prose);
		const panes = Array.from(tr.querySelectorAll(".pane"));
		for (const p of panes) {
			const pr = p.getBoundingClientRect();
			for (const l of p.querySelectorAll(".tl")) {
				if (l.scrollWidth > l.clientWidth + 1 || l.getBoundingClientRect().right > pr.right + 0.5)
					out.push(n + ": a line is cut off: " + l.textContent.trim());
			}
		}
		const rows = {};
		for (const p of panes) {
			const pr = p.getBoundingClientRect();
			const row = rows[Math.round(pr.top)] ||= {left: pr.left, right: pr.right, n: 0};
			row.left = Math.min(row.left, pr.left); row.right = Math.max(row.right, pr.right); row.n++;
		}
		for (const row of Object.values(rows)) {
			if (row.right - row.left < r.width - 1) out.push(n + ": a row of " + row.n + " pane(s) leaves " + Math.round(r.width - (row.right - row.left)) + " px empty");
		}
		if (wide && panes.length === 2 && Object.keys(rows).length !== 1) out.push(n + ": its two panes are not side by side");
	});
	return out;
})()`

// Transcripts use the room the window has. Beside the contents they are
// wider than the prose; no line is cut off (a long one wraps inside its
// pane); nothing reaches past the window; two panes sit side by side on a
// laptop's screen; and a row of panes fills the transcript's width, so no
// pane leaves an empty gap beside it.
func TestBrowserTranscripts(t *testing.T) {
	t.Parallel()
	tb, site, pages := openBook(t)
	// TestBrowserEveryPage, which loads every page at 1280 px and at
	// 375 px (a phone) anyway, runs the same check at those sizes; here,
	// at 1920 px.
	for _, p := range pages {
		if strings.HasPrefix(p, "code/") {
			continue
		}
		tb.run(t, chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(site+p))
		for _, problem := range eval[[]string](t, tb, transcriptCheck) {
			t.Errorf("%s at %d px: %s", p, 1920, problem)
		}
	}
	tb.check(t, "transcripts")
}

// Printed, a listing is black on white whatever theme the reader chose.
// A chapter's page has the single-page edition's stylesheet and listings,
// at a tenth of its weight (the PDF's own tests print the whole book).
func TestBrowserPrint(t *testing.T) {
	t.Parallel()
	tb, site, pages := openBook(t)
	tb.run(t, chromedp.Navigate(site+secondChapter(t, pages)))
	eval[bool](t, tb, `localStorage.setItem("theme", "dark"); document.documentElement.setAttribute("data-theme", "dark"); true`)
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"}); err != nil {
		t.Fatal(err)
	}
	colours := eval[[]string](t, tb, `(() => {
		const kw = document.querySelector("figure.listing .cl .kd, figure.listing .cl .k");
		const pre = kw.closest("pre");
		return [getComputedStyle(kw).color, getComputedStyle(pre).backgroundColor, getComputedStyle(document.body).backgroundColor];
	})()`)
	if want := []string{"rgb(0, 0, 0)", "rgb(255, 255, 255)", "rgb(255, 255, 255)"}; strings.Join(colours, ";") != strings.Join(want, ";") {
		t.Errorf("printed in the dark theme: keyword, listing background, page background = %q, want %q", colours, want)
	}
	if eval[bool](t, tb, `getComputedStyle(document.querySelector("nav.toc")).display !== "none"`) {
		t.Error("the contents sidebar is printed")
	}
	tb.check(t, "print")
}

// Searching finds a section by a word of its prose and links to it.
func TestBrowserSearch(t *testing.T) {
	t.Parallel()
	tb, site, _ := openBook(t)
	tb.run(t, chromedp.Navigate(site+"01-client-server.html"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.SendKeys(chromedp.ID("search"), "descriptor table"),
		chromedp.WaitVisible(chromedp.CSS("#search-results li a")))
	hrefs := eval[[]string](t, tb, `Array.from(document.querySelectorAll("#search-results li a")).map(a => a.getAttribute("href"))`)
	found := false
	for _, h := range hrefs {
		if strings.HasPrefix(h, "02-socket.html#") {
			found = true
		}
	}
	if !found {
		t.Errorf(`search for "descriptor table" gave %q; want a section of 02-socket.html`, hrefs)
	}
	// Enter follows the first result to its section.
	tb.run(t, chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS("article.chapter")))
	if loc := eval[string](t, tb, `location.pathname + location.hash`); loc != "/"+hrefs[0] {
		t.Errorf("Enter went to %s, want /%s", loc, hrefs[0])
	}
	// The book's own example: searching "backlog" finds the listen chapter,
	// at a section rather than at the top of the page.
	tb.run(t, chromedp.Navigate(site+"index.html"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.SendKeys(chromedp.ID("search"), "backlog"),
		chromedp.WaitVisible(chromedp.CSS("#search-results li a")))
	first := eval[string](t, tb, `document.querySelector("#search-results li a").getAttribute("href")`)
	if !strings.HasPrefix(first, "04-listen.html#") {
		t.Errorf(`search for "backlog": first result %q, want a section of 04-listen.html`, first)
	}
	tb.check(t, "search")
}

// A reader who types before the search index has arrived gets results when
// it does: here the index is held back until every key has been typed.
func TestBrowserSearchBeforeIndex(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	site, _ := serveBook(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "search-index.js") {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		resp, err := http.Get(site + strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(slow.Close)
	tb := newTab(t, ctx, slow.URL+"/")
	tb.run(t, chromedp.Navigate(slow.URL+"/index.html"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.SendKeys(chromedp.ID("search"), "backlog"))
	close(release)
	tb.run(t, chromedp.WaitVisible(chromedp.CSS("#search-results li a")))
	if first := eval[string](t, tb, `document.querySelector("#search-results li a").getAttribute("href")`); !strings.HasPrefix(first, "04-listen.html#") {
		t.Errorf(`search for "backlog" typed before the index came: first result %q, want a section of 04-listen.html`, first)
	}
	tb.check(t, "search before the index")
}

// The arrow keys move between chapters.
func TestBrowserArrowKeys(t *testing.T) {
	t.Parallel()
	tb, site, _ := openBook(t)
	tb.run(t, chromedp.Navigate(site+"01-client-server.html"), chromedp.KeyEvent(kb.ArrowRight),
		chromedp.WaitVisible(chromedp.CSS(`a[rel="prev"]`)))
	if p := eval[string](t, tb, `location.pathname`); p != "/02-socket.html" {
		t.Fatalf("right arrow went to %s, want /02-socket.html", p)
	}
	tb.run(t, chromedp.KeyEvent(kb.ArrowLeft), chromedp.WaitVisible(chromedp.CSS(`a[rel="next"]`)))
	if p := eval[string](t, tb, `location.pathname`); p != "/01-client-server.html" {
		t.Errorf("left arrow went to %s, want /01-client-server.html", p)
	}
	tb.check(t, "arrow keys")
}

// The theme toggle switches light and dark, and the choice survives a reload.
func TestBrowserThemeToggle(t *testing.T) {
	t.Parallel()
	tb, site, _ := openBook(t)
	background := `getComputedStyle(document.body).backgroundColor`
	tb.run(t, chromedp.Navigate(site+"02-socket.html"))
	before := eval[string](t, tb, background)
	tb.run(t, chromedp.Click(chromedp.ID("theme")))
	after := eval[string](t, tb, background)
	theme := eval[string](t, tb, `document.documentElement.getAttribute("data-theme")`)
	if after == before || (theme != "dark" && theme != "light") {
		t.Fatalf("toggle: background %s -> %s, data-theme %q", before, after, theme)
	}
	tb.run(t, chromedp.Reload())
	if again := eval[string](t, tb, background); again != after {
		t.Errorf("after reload the background is %s, want %s: the choice was not remembered", again, after)
	}
	tb.check(t, "theme")
}

// The copy button copies a listing's code without its line numbers.
func TestBrowserCopy(t *testing.T) {
	t.Parallel()
	tb, site, _ := openBook(t)
	tb.run(t, chromedp.Navigate(site+"02-socket.html"))
	// Catch what would go to the clipboard: headless Chromium has none.
	eval[bool](t, tb, `window.copied = null; navigator.clipboard.writeText = t => { window.copied = t; return Promise.resolve(); }; true`)
	tb.run(t, chromedp.Click(chromedp.CSS("figure.listing button.copy")))
	copied := eval[string](t, tb, `window.copied`)
	first := eval[string](t, tb, `document.querySelector("figure.listing .line .cl").textContent`)
	if !strings.HasPrefix(copied, first+"\n") {
		t.Errorf("copied %q, want it to start with the listing's first line %q", copied, first)
	}
	if n := eval[string](t, tb, `document.querySelector("figure.listing .ln").textContent`); strings.HasPrefix(copied, n) {
		t.Errorf("copied text starts with the line number %s", n)
	}
	tb.check(t, "copy")
}

// On a phone the contents are behind a menu button.
func TestBrowserPhoneMenu(t *testing.T) {
	t.Parallel()
	tb, site, _ := openBook(t)
	tb.run(t, chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile), chromedp.Navigate(site+"02-socket.html"))
	visible := `getComputedStyle(document.getElementById("toc")).display !== "none"`
	if eval[bool](t, tb, visible) {
		t.Error("on a phone the contents show before the menu is opened")
	}
	tb.run(t, chromedp.Click(chromedp.ID("menu")))
	if !eval[bool](t, tb, visible) {
		t.Error("the menu button did not show the contents")
	}
	tb.check(t, "phone menu")
}

// No page has a serious or critical accessibility violation by axe-core
// (vendored in testdata/axe, run inside the page), and no text lacks
// contrast in either theme.
func TestBrowserAccessibility(t *testing.T) {
	t.Parallel()
	axe, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	site, pages := serveBook(t)
	// The themes differ only in colours: every rule in the light theme,
	// colour contrast again in the dark one.
	const audit = `axe.run(document, OPTIONS).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.id + " (" + v.impact + "): " + v.help + "; " + v.nodes.length + " element(s), e.g. " +
			v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))`
	// In the dark theme, colour contrast on pages that hold every kind of
	// text the book has: a chapter's (prose, listings, a diff, a
	// transcript, figures: every chapter has them all), the index, and a
	// program's pages, which share one palette. book.html is every chapter
	// again, each audited on its own page: there, only what is book.html's
	// own, its structure (bookRules), which costs a minute less than every
	// rule on the whole book.
	prog := firstProgram(t, pages)
	dark := []string{"index.html", secondChapter(t, pages), "code/" + prog + ".html", "code/" + prog + "-tests.html"}
	type job struct{ page, theme string }
	var jobs []job
	for _, p := range pages {
		// Program pages are one template around highlighted Go, the same
		// for every program: the first program's two pages stand for all
		// (the rest are the heaviest pages, and an audit costs seconds).
		if strings.HasPrefix(p, "code/") && !slices.Contains(dark, p) {
			continue
		}
		jobs = append(jobs, job{p, "light"})
	}
	for _, p := range dark {
		jobs = append(jobs, job{p, "dark"})
	}
	// An audit takes seconds a page (book.html, tens of seconds): share
	// them among browsers that run side by side, one per core or so,
	// book.html's first, so that the others fill in beside it.
	heavy := func(j job) int {
		if j.page == "book.html" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(heavy(a), heavy(b)) })
	const browsers = 3
	for i := range browsers {
		t.Run(fmt.Sprintf("browser%d", i+1), func(t *testing.T) {
			t.Parallel()
			tb := newTab(t, browser(t), site)
			for j := i; j < len(jobs); j += browsers {
				p, theme := jobs[j].page, jobs[j].theme
				tb.run(t, chromedp.Navigate(site+p))
				eval[bool](t, tb, `localStorage.setItem("theme", "`+theme+`"); document.documentElement.setAttribute("data-theme", "`+theme+`"); true`)
				eval[bool](t, tb, string(axe)+"\n;true")
				options := `{resultTypes: ["violations"]}`
				if p == "book.html" {
					options = `{resultTypes: ["violations"], runOnly: {type: "rule", values: ` + bookRules + `}}`
				}
				if theme == "dark" {
					options = `{resultTypes: ["violations"], runOnly: {type: "rule", values: ["color-contrast"]}}`
				}
				for _, v := range evalWithin[[]string](t, tb, 3*time.Minute, strings.Replace(audit, "OPTIONS", options, 1)) {
					t.Errorf("%s (%s theme): %s", p, theme, v)
				}
			}
			tb.check(t, "accessibility")
		})
	}
}

// firstProgram is the slug of the first program page ("01-client-server"
// for code/01-client-server.html).
func firstProgram(t *testing.T, pages []string) string {
	t.Helper()
	for _, p := range pages {
		if strings.HasPrefix(p, "code/") && !strings.HasSuffix(p, "-tests.html") {
			return strings.TrimSuffix(strings.TrimPrefix(p, "code/"), ".html")
		}
	}
	t.Fatal("no program page")
	return ""
}

// bookRules are the axe rules run on book.html: those about the page as a
// whole (ids unique across chapters, landmarks, headings, its title and
// language, a way past the contents) rather than about a chapter's text.
const bookRules = `["duplicate-id", "duplicate-id-aria", "landmark-unique", "landmark-one-main",
	"landmark-no-duplicate-banner", "page-has-heading-one", "heading-order", "document-title",
	"html-has-lang", "bypass", "region"]`

// secondChapter is the page of the book's second chapter: the first with
// a diff from the chapter before.
func secondChapter(t *testing.T, pages []string) string {
	t.Helper()
	var chapters []string
	for _, p := range pages {
		if !strings.Contains(p, "/") && len(p) > 3 && p[0] >= '0' && p[0] <= '9' && p[2] == '-' {
			chapters = append(chapters, p)
		}
	}
	if len(chapters) < 2 {
		t.Fatal("the book has fewer than two chapters")
	}
	return chapters[1] // pages are sorted: 01-..., 02-...
}

// waitTrue waits, within a generous limit, until js is true in the page.
func waitTrue(t *testing.T, tb *tab, js string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !eval[bool](t, tb, js) {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after 30 s: %s", js)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A page served by make serve reloads itself after an edit, and shows the
// build's error over the previous page after a bad one.
func TestBrowserLiveReload(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	root := writeBook(t, fixture())
	site := startServe(t, root) + "/"
	tb := newTab(t, ctx, site)
	chapter := filepath.Join(root, "chapters", "01-first.md")
	text := fixture()["chapters/01-first.md"]

	tb.run(t, chromedp.Navigate(site+"01-first.html"))
	if err := os.WriteFile(chapter, []byte(strings.Replace(text, "Some prose.", "Fresh prose.", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, tb, `!!document.body && document.body.textContent.includes("Fresh prose.")`)

	if err := os.WriteFile(chapter, []byte(strings.Replace(text, "region=hello", "region=gone", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	tb.run(t, chromedp.WaitVisible(chromedp.ID("book-build-error")))
	shown := eval[string](t, tb, `document.getElementById("book-build-error").textContent`)
	if want := `chapters/01-first.md:8: region "gone" not found`; !strings.Contains(shown, want) {
		t.Errorf("error shown: %q, want it to contain %q", shown, want)
	}
	if !eval[bool](t, tb, `document.body.textContent.includes("Fresh prose.")`) {
		t.Error("the previous page is gone")
	}
	tb.check(t, "live reload")
}
