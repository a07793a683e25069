package main

import (
	"archive/zip"
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	xhtmltok "golang.org/x/net/html"
)

// The editions: the EPUB, written by the build, and the PDF, printed by
// the pdf command and committed in site/ (see editions.go).

// epubFiles reads an EPUB's entries, in the zip's order.
func epubFiles(t *testing.T, epub []byte) ([]*zip.File, map[string]string) {
	t.Helper()
	z, err := zip.NewReader(bytes.NewReader(epub), int64(len(epub)))
	if err != nil {
		t.Fatalf("the EPUB is not a zip: %v", err)
	}
	text := map[string]string{}
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		text[f.Name] = string(data)
	}
	return z.File, text
}

// The EPUB holds what a reader needs and is made as the OCF says: the
// mimetype first, stored, with no extra field; every document well-formed
// XML; the contents with the parts and chapters, in order; links between
// chapters within the book, to a program's file in the repository;
// listings highlighted, with colours for a dark reader theme too. The
// build makes the same bytes twice.
func TestEPUB(t *testing.T) {
	files := fixture()
	files["chapters/02-second.md"] += "\nSee [the first](01-first.html), and [its program](code/01-first.html).\n"
	root := writeBook(t, files)
	site, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	epub := site[epubFile]
	if !bytes.Equal(epub, again[epubFile]) {
		t.Error("two builds make different EPUBs")
	}
	entries, text := epubFiles(t, epub)
	if first := entries[0]; first.Name != "mimetype" || first.Method != zip.Store || len(first.Extra) != 0 || text["mimetype"] != "application/epub+zip" {
		t.Errorf("the first entry is %s (method %d, %d bytes of extra field), not mimetype stored with none", first.Name, first.Method, len(first.Extra))
	}
	for _, f := range entries {
		if !f.Modified.Equal(epubModified) {
			t.Errorf("%s is dated %v, not %v", f.Name, f.Modified, epubModified)
		}
		if strings.HasSuffix(f.Name, ".xhtml") || strings.HasSuffix(f.Name, ".opf") || strings.HasSuffix(f.Name, ".ncx") || strings.HasSuffix(f.Name, ".xml") {
			d := xml.NewDecoder(strings.NewReader(text[f.Name]))
			d.Strict = true
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Errorf("%s is not well-formed XML: %v", f.Name, err)
					break
				}
			}
		}
	}
	nav := text["EPUB/nav.xhtml"]
	if !regexp.MustCompile(`(?s)<a href="part-i.xhtml">Part I: The first steps</a>\s*<ol>\s*<li><a href="01-first.xhtml">1. First</a></li>\s*<li><a href="02-second.xhtml">2. Second</a></li>`).MatchString(nav) {
		t.Errorf("nav.xhtml does not list Part I and its chapters in order:\n%s", nav)
	}
	if strings.Contains(nav, "Part II") {
		t.Error("nav.xhtml lists Part II, which has no chapter yet")
	}
	opf := text["EPUB/package.opf"]
	for _, want := range []string{`<item id="c-01-first" href="01-first.xhtml" media-type="application/xhtml+xml" properties="svg"/>`, `<meta property="dcterms:modified">2026-12-07T00:00:00Z</meta>`, "<dc:identifier id=\"book-id\">" + bookUUID() + "</dc:identifier>"} {
		if !strings.Contains(opf, want) {
			t.Errorf("package.opf lacks %s", want)
		}
	}
	second := text["EPUB/02-second.xhtml"]
	for _, want := range []string{
		`<a href="01-first.xhtml">the first</a>`,
		`<a href="` + repository + `/tree/main/code/01-first">its program</a>`,
		// A diff's caption links the files in the repository; line
		// numbers are plain numbers.
		`<a href="` + repository + `/blob/main/code/01-first/main.go">code/01-first/main.go</a>`,
		`<span class="ln" aria-hidden="true">7</span>`,
	} {
		if !strings.Contains(second, want) {
			t.Errorf("02-second.xhtml lacks %s", want)
		}
	}
	first := text["EPUB/01-first.xhtml"]
	for _, want := range []string{`<span class="nf">Println</span>`, `<svg xmlns="http://www.w3.org/2000/svg"`, `<span class="prompt">$ </span>`} {
		if !strings.Contains(first, want) {
			t.Errorf("01-first.xhtml lacks %s", want)
		}
	}
	if strings.Contains(first, `class="anchor"`) || strings.Contains(first, "<script") {
		t.Error("01-first.xhtml has a heading's self-link or a script")
	}
	css := text["EPUB/style.css"]
	if !strings.Contains(css, "@media (prefers-color-scheme: dark)") || !strings.Contains(css, "html .chroma .kd {") {
		t.Error("the EPUB's stylesheet has no colours for a dark theme")
	}
}

// Every page's header, and the index, link the EPUB and the PDF with their
// sizes; the build keeps the PDF it finds, which it does not make.
func TestEditionLinks(t *testing.T) {
	root := writeBook(t, fixture())
	site := filepath.Join(root, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	pdf := bytes.Repeat([]byte("%PDF"), 600_000) // 2.4 MB
	if err := os.WriteFile(filepath.Join(site, pdfFile), pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Build(root, site); err != nil {
		t.Fatal(err)
	}
	built, err := readTree(site)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(built[pdfFile], pdf) {
		t.Error("the build did not keep the PDF")
	}
	epubSize := humanSize(int64(len(built[epubFile])))
	for name, data := range built {
		if !strings.HasSuffix(name, ".html") {
			continue
		}
		up := strings.Repeat("../", strings.Count(name, "/"))
		want := fmt.Sprintf(`<span class="downloads"><a href="%s%s">EPUB, %s</a><a href="%s%s">PDF, 2.4 MB</a></span>`, up, epubFile, epubSize, up, pdfFile)
		if !strings.Contains(string(data), want) {
			t.Errorf("%s's header does not link both editions: want %s", name, want)
		}
	}
	if want := `the PDF</a> (2.4 MB)`; !strings.Contains(string(built["index.html"]), want) {
		t.Errorf("index.html lacks %s", want)
	}
	// With no PDF, no link to one.
	files, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(files["index.html"], []byte(pdfFile)) {
		t.Error("index.html links a PDF the site does not have")
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "1 KB", 499: "1 KB", 840_300: "840 KB", 999_999: "1000 KB", 1_000_000: "1.0 MB", 2_149_000: "2.1 MB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// need finds a command the editions' tests run, or skips the test where it
// is not installed (but fails in CI, where it must be: make deps installs it).
func need(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed; CI must install it (apt-get install %s)", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s): test skipped", name, pkg)
	return ""
}

// The real book's EPUB passes epubcheck with no error and no warning. One
// run, on the EPUB built for the browser tests: about 9 s of CPU on 2 cores.
func TestEPUBCheck(t *testing.T) {
	t.Parallel()
	// Debian's /usr/bin/epubcheck is the jar itself, run through
	// binfmt_misc where that is set up; java -jar runs it everywhere. A
	// short run: the quick compiler alone and one GC thread halve its CPU
	// time (20 s to 9 s), most of which would go to compiling.
	cmd := []string{need(t, "epubcheck", "epubcheck")}
	if jar := "/usr/share/java/epubcheck.jar"; fileExists(jar) {
		cmd = []string{need(t, "java", "default-jre-headless"), "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", jar}
	}
	dir, _ := realSite(t)
	run := exec.Command(cmd[0], append(cmd[1:], filepath.Join(dir, epubFile))...)
	out, err := run.CombinedOutput()
	t.Logf("epubcheck: %.1f s of CPU", (run.ProcessState.UserTime() + run.ProcessState.SystemTime()).Seconds())
	if err != nil || !strings.Contains(string(out), "No errors or warnings detected.") {
		t.Errorf("epubcheck %s: %v\n%s", epubFile, err, out)
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// committedPDF is site/'s PDF, or the test fails: make site prints it.
// BOOK_PDF names another, to check a PDF before it is committed (go run
// ./tools/book pdf -out DIR prints one into DIR).
func committedPDF(t *testing.T) (string, []byte) {
	t.Helper()
	name := filepath.Join("..", "..", "site", pdfFile)
	if env := os.Getenv("BOOK_PDF"); env != "" {
		name = env
	}
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("the PDF is missing: %v\nrun: make site (Chromium prints it)", err)
	}
	return name, data
}

// The committed PDF was printed from what the sources build now: its
// edition, on its cover and in its title, is the digest of this build's
// single-page edition, stylesheets and print settings. Its bytes are not
// compared (Chromium dates every PDF), so this is what keeps it from
// drifting.
func TestPDFIsCurrent(t *testing.T) {
	name, pdf := committedPDF(t)
	dir, _ := realSite(t)
	files, err := readTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := editionDigest(files)
	got := pdfEdition(pdf)
	if got == "" {
		t.Fatalf("%s names no edition in its Title\nrun: make site", name)
	}
	if got != want {
		t.Fatalf("%s is edition %s; the sources make edition %s\nrun: make site", name, got, want)
	}
}

// pdfWord is a word of a PDF page and its box, in points from the top left.
type pdfWord struct {
	x0, y0, x1, y1 float64
	text           string
}

// pdfPage is a page's size and words, in the order the PDF draws them.
type pdfPage struct {
	width, height float64
	words         []pdfWord
}

var pdfText struct {
	once  sync.Once
	pages []pdfPage
	err   error
}

var (
	pageRE = regexp.MustCompile(`<page width="([\d.]+)" height="([\d.]+)">`)
	wordRE = regexp.MustCompile(`<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>`)
)

// readPDF reads the committed PDF's words (pdftotext -bbox, from
// poppler-utils), once for all the tests.
func readPDF(t *testing.T) []pdfPage {
	t.Helper()
	name, _ := committedPDF(t)
	tool := need(t, "pdftotext", "poppler-utils")
	p := &pdfText
	p.once.Do(func() {
		var out []byte
		if out, p.err = exec.Command(tool, "-bbox", name, "-").Output(); p.err != nil {
			return
		}
		for _, page := range strings.Split(string(out), "<page ")[1:] {
			m := pageRE.FindStringSubmatch("<page " + page)
			if m == nil {
				p.err = fmt.Errorf("pdftotext -bbox: a page without its size")
				return
			}
			pg := pdfPage{width: number(m[1]), height: number(m[2])}
			for _, w := range wordRE.FindAllStringSubmatch(page, -1) {
				pg.words = append(pg.words, pdfWord{number(w[1]), number(w[2]), number(w[3]), number(w[4]), html.UnescapeString(w[5])})
			}
			p.pages = append(p.pages, pg)
		}
	})
	if p.err != nil {
		t.Fatalf("pdftotext -bbox %s: %v", name, p.err)
	}
	return p.pages
}

func number(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// body is the page's words within its margins: not the running head or
// the page number.
func (pg pdfPage) body() []pdfWord {
	var ws []pdfWord
	for _, w := range pg.words {
		if w.y0 >= pdfMarginY*72 && w.y1 <= pg.height-pdfMarginY*72 {
			ws = append(ws, w)
		}
	}
	return ws
}

// lines is the page's body as lines of words, from the top, each line's
// words from the left: words whose baselines are within 3 points are on
// one line (a bold word's box differs from a plain one's).
func (pg pdfPage) lines() [][]pdfWord {
	ws := slices.Clone(pg.body())
	slices.SortStableFunc(ws, func(a, b pdfWord) int { return cmp.Compare(a.y1, b.y1) })
	var lines [][]pdfWord
	for i, w := range ws {
		if i == 0 || w.y1-lines[len(lines)-1][0].y1 > 3 {
			lines = append(lines, nil)
		}
		lines[len(lines)-1] = append(lines[len(lines)-1], w)
	}
	for _, l := range lines {
		slices.SortStableFunc(l, func(a, b pdfWord) int { return cmp.Compare(a.x0, b.x0) })
	}
	return lines
}

func (pg pdfPage) text() string {
	var b strings.Builder
	for _, w := range pg.body() {
		b.WriteString(w.text + " ")
	}
	return b.String()
}

// The PDF's structure: a cover with the edition, the contents, one start
// per chapter (in order, with its title, at the top of a page), the book's
// title over every page and the page's number under it; links within the
// PDF and its outline (the reader's bookmarks); and no picture: the
// diagrams are drawn, in vectors.
func TestPDFStructure(t *testing.T) {
	pages := readPDF(t)
	_, raw := committedPDF(t)
	b, err := Load(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if cover := pages[0].text(); !strings.Contains(cover, b.Title) || !regexp.MustCompile(`Edition [0-9a-f]{12}`).MatchString(cover) {
		t.Errorf("the first page is not the cover with the edition: %s", cover)
	}
	if !strings.HasPrefix(pages[1].text(), "Contents ") {
		t.Errorf("the second page is not the contents: %.200s", pages[1].text())
	}
	var starts []string
	for i, pg := range pages {
		ws := pg.body()
		if len(ws) >= 2 && ws[0].text == "CHAPTER" {
			starts = append(starts, ws[1].text)
			n, _ := strconv.Atoi(ws[1].text)
			if n < 1 || n > len(b.Chapters) {
				t.Errorf("page %d starts chapter %q, which the book does not have", i+1, ws[1].text)
				continue
			}
			if title := strings.Join(strings.Fields(b.Chapters[n-1].Title), " "); !strings.Contains(pg.text(), " "+title+" ") {
				t.Errorf("page %d starts chapter %d without its title %q: %.200s", i+1, n, title, pg.text())
			}
		}
	}
	var want []string
	for _, ch := range b.Chapters {
		want = append(want, strconv.Itoa(ch.Num))
	}
	if strings.Join(starts, " ") != strings.Join(want, " ") {
		t.Errorf("the chapters start, in the PDF's order: %v; want one start each: %v", starts, want)
	}
	// Every page has the running head and, in its footer, its number.
	for i, pg := range pages {
		var head, foot []string
		for _, w := range pg.words {
			switch {
			case w.y1 < pdfMarginY*72:
				head = append(head, w.text)
			case w.y0 > pg.height-pdfMarginY*72:
				foot = append(foot, w.text)
			}
		}
		if h, f := strings.Join(head, " "), strings.Join(foot, " "); !strings.HasPrefix(h, b.Title) || f != fmt.Sprintf("%d / %d", i+1, len(pages)) {
			t.Errorf("page %d: head %q, foot %q; want %q and its number", i+1, h, f, b.Title)
		}
	}
	if !bytes.Contains(raw, []byte("/Outlines ")) {
		t.Error("the PDF has no outline")
	}
	// Each entry of the contents is a link within the PDF.
	if n, min := bytes.Count(raw, []byte("/Dest ")), len(b.Chapters)+len(b.Parts); n < min {
		t.Errorf("the PDF has %d links within itself; the contents alone have %d", n, min)
	}
	name, _ := committedPDF(t)
	if out, err := exec.Command(need(t, "pdfimages", "poppler-utils"), "-list", name).Output(); err != nil {
		t.Errorf("pdfimages -list: %v", err)
	} else if lines := strings.Count(string(out), "\n"); lines > 2 {
		t.Errorf("the PDF has %d pictures: a diagram was printed as pixels, not vectors\n%s", lines-2, out)
	}
}

// No text in the PDF is cut at the right margin, nor runs past it: no word
// ends beyond it (a word clipped by its box keeps the glyph that the clip
// cuts through, so it ends beyond the box too), and every long line of a
// listing or a terminal, as book.html shows it, is in the PDF whole,
// wrapped or not.
func TestPDFNothingCut(t *testing.T) {
	pages := readPDF(t)
	// pdftotext's boxes are a glyph's advance: 2 points of slack.
	const slack = 2
	for i, pg := range pages {
		left, right := pdfMarginX*72-slack, pg.width-pdfMarginX*72+slack
		for _, w := range pg.words {
			if w.x0 < left || w.x1 > right {
				t.Errorf("page %d: %q reaches past the margin (%.1f to %.1f pt; the text is within %.1f to %.1f)", i+1, w.text, w.x0, w.x1, left+slack, right-slack)
			}
		}
	}
	// Chromium draws text in the order it likes (a table of figures, column
	// by column): read each page as a reader does, line by line from the
	// top, each line from the left.
	var all strings.Builder
	for _, pg := range pages {
		for _, line := range pg.lines() {
			for _, w := range line {
				all.WriteString(w.text)
			}
		}
	}
	text := all.String()
	dir, _ := realSite(t)
	page, err := os.ReadFile(filepath.Join(dir, "book.html"))
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	// A listing's lines, not a terminal's: terminals may stand side by
	// side, and their lines read across the two. They wrap as listings
	// do, and the margin test above sees one that runs off the page.
	for _, line := range shownLines(page, "cl") {
		if len([]rune(line)) < 72 {
			continue // fits on a line of the page: the margin test sees it
		}
		long++
		if !strings.Contains(text, strings.Join(strings.Fields(line), "")) {
			t.Errorf("a line is not in the PDF whole (cut, or the PDF is stale: make site):\n%s", line)
		}
	}
	if long == 0 {
		t.Error("no listing line of 72 characters or more: the test checks nothing")
	}
	t.Logf("%d pages within the margins; %d listing lines of 72 characters or more, each whole", len(pages), long)
}

// shownLines is the text of each span of class class on a page: for
// "cl", each line of a listing, less its number.
func shownLines(page []byte, class string) []string {
	var lines []string
	var cur strings.Builder
	depth := 0 // of spans, within a line
	z := xhtmltok.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case xhtmltok.ErrorToken:
			return lines
		case xhtmltok.StartTagToken:
			tok := z.Token()
			if tok.Data != "span" {
				continue
			}
			if depth > 0 {
				depth++
			} else if attr(tok, "class") == class {
				depth = 1
				cur.Reset()
			}
		case xhtmltok.EndTagToken:
			if name, _ := z.TagName(); string(name) == "span" && depth > 0 {
				depth--
				if depth == 0 {
					lines = append(lines, strings.TrimRight(cur.String(), "\n"))
				}
			}
		case xhtmltok.TextToken:
			if depth > 0 {
				cur.Write(z.Text()) // unescaped by the tokenizer
			}
		}
	}
}
