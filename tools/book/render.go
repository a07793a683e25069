package main

import (
	"bytes"
	"fmt"
	"html/template"
	"path"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/socket-to-server/book/tools/exercises"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// renderer turns a loaded Book into the site's files. One renderer serves a
// whole build, so the Markdown parser, the lexers and the templates are
// made once.
type siteRenderer struct {
	book    *Book
	md      goldmark.Markdown
	hl      highlighter
	pages   *template.Template
	pdfSize int64 // the PDF's size, 0 when the site has none (editions.go)
}

func newRenderer(b *Book) (*siteRenderer, error) {
	r := &siteRenderer{book: b}
	r.md = goldmark.New(
		goldmark.WithExtensions(extension.GFM, extension.Footnote),
		goldmark.WithParserOptions(parser.WithAutoHeadingID()),
		goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(markdownCode{r}, 100))),
	)
	t, err := template.New("").Funcs(template.FuncMap{"chapterLink": chapterLink, "programLink": programLink, "testsLink": testsLink, "partLabel": partLabel, "repository": func() string { return repository }}).ParseFS(theme, "theme/*.html")
	if err != nil {
		return nil, err
	}
	r.pages = t
	return r, nil
}

func chapterLink(ch *Chapter) string { return ch.Slug + ".html" }

// page is what the templates see.
type page struct {
	Book    *Book
	Title   string
	Root    string // "" or "../": the way back to the site's top
	Current *Chapter
	Chapter *Chapter
	Content template.HTML
	Files   []programFile
	Tests   bool // a program's tests page
	Whole   []partContent
	// Editions are the downloads every page's header links, with their
	// sizes.
	Editions []edition
}

// partContent is a part as the single-page edition shows it: the chapters
// of it that are written.
type partContent struct {
	Part     *Part
	Chapters []chapterContent
}

// chapterContent is a chapter as the single-page edition shows it.
type chapterContent struct {
	Chapter *Chapter
	Content template.HTML
}

type programFile struct {
	Name string
	Code template.HTML
}

// render returns every file of the site, by path.
func (r *siteRenderer) render() (map[string][]byte, error) {
	files := map[string][]byte{
		"assets/style.css":   mustRead("theme/style.css"),
		"assets/book.js":     mustRead("theme/book.js"),
		"assets/favicon.svg": mustRead("theme/favicon.svg"),
		"assets/code.css":    codeCSS(),
	}
	var errs Errors
	var index []searchEntry
	whole := map[*Chapter]template.HTML{}
	r.highlightAll()
	// Every chapter's and page's HTML first: the EPUB is made of them, and
	// every page links the EPUB with its size.
	contents := map[*Chapter]template.HTML{}
	for _, ch := range append(append([]*Chapter{}, r.book.Chapters...), r.book.Pages...) {
		content, err := r.chapterHTML(ch)
		errs = append(errs, err...)
		if err == nil {
			contents[ch] = content
		}
	}
	if len(errs) == 0 {
		epub, err := r.epub(contents)
		errs = append(errs, err...)
		files[epubFile] = epub
	}
	downloads := editions(int64(len(files[epubFile])), r.pdfSize)
	exec := func(name, tmpl string, p page) {
		var buf bytes.Buffer
		p.Editions = downloads
		if err := r.pages.ExecuteTemplate(&buf, tmpl, p); err != nil {
			errs.add(Pos{File: "tools/book/theme/" + tmpl}, "%v", err)
			return
		}
		files[name] = buf.Bytes()
	}
	exec("index.html", "index.html", page{Book: r.book, Title: r.book.Title})
	for _, ch := range r.book.Chapters {
		content, ok := contents[ch]
		if !ok {
			continue
		}
		exec(chapterLink(ch), "chapter.html", page{Book: r.book, Title: ch.Title, Current: ch, Chapter: ch, Content: content})
		whole[ch] = onePage(ch, r.book.Chapters, content)
		index = append(index, sections(ch, string(content))...)
		// The program on one page, its tests on another: test files are long,
		// and the program is what the chapter's listings link to.
		prog := page{Book: r.book, Title: ch.Program, Root: "../", Current: ch, Chapter: ch}
		tests := page{Book: r.book, Title: ch.Program + " tests", Root: "../", Current: ch, Chapter: ch, Tests: true}
		for _, f := range ch.Files {
			src, _, err := r.book.sources.get(ch.Program + "/" + f)
			if err != nil {
				errs.add(Pos{File: ch.Program + "/" + f}, "%v", err)
				continue
			}
			pf := programFile{f, r.codeBlock(src, src.all(), f+"-", "#")}
			if strings.HasSuffix(f, "_test.go") {
				tests.Files = append(tests.Files, pf)
			} else {
				prog.Files = append(prog.Files, pf)
			}
		}
		exec(programLink(ch, ""), "program.html", prog)
		exec(testsLink(ch, ""), "program.html", tests)
	}
	for _, pg := range r.book.Pages {
		content, ok := contents[pg]
		if !ok {
			continue
		}
		exec(chapterLink(pg), "page.html", page{Book: r.book, Title: pg.Title, Current: pg, Chapter: pg, Content: content})
		index = append(index, sections(pg, string(content))...)
	}
	index = append(index, partEntries(r.book.Parts)...)
	files["assets/search-index.js"] = searchIndex(index)
	// The single-page edition is the book as written: a part with no
	// chapter yet has nothing to show there.
	var parts []partContent
	for _, p := range r.book.Parts {
		pc := partContent{Part: p}
		for _, ch := range p.Chapters {
			if content, ok := whole[ch]; ok {
				pc.Chapters = append(pc.Chapters, chapterContent{ch, content})
			}
		}
		if len(pc.Chapters) > 0 {
			parts = append(parts, pc)
		}
	}
	exec("book.html", "book.html", page{Book: r.book, Title: r.book.Title + ": the whole book", Whole: parts})
	if len(errs) == 0 {
		errs = checkLinks(files, r.sourceOf, func(name string) bool { return name == pdfFile && r.pdfSize > 0 })
	}
	// The single-page edition repeats the chapters: report its problems
	// only when the chapters themselves have none.
	bookErrs, others := Errors{}, Errors{}
	for _, e := range errs {
		if e.Pos.File == r.sourceOf("book.html") {
			bookErrs = append(bookErrs, e)
		} else {
			others = append(others, e)
		}
	}
	if len(others) > 0 {
		errs = others
	} else {
		errs = bookErrs
	}
	return files, errs.err()
}

// sourceOf names the file a page is made from, for error messages.
func (r *siteRenderer) sourceOf(page string) string {
	for _, ch := range r.book.Chapters {
		switch page {
		case chapterLink(ch):
			return ch.File
		case programLink(ch, ""), testsLink(ch, ""):
			return ch.Program
		}
	}
	return "tools/book/theme/" + path.Base(page)
}

// fileLink is the page (and anchor) showing one of a program's files: the
// tests page for a test file, the program's page for the rest.
func fileLink(ch *Chapter, name, fragment string) string {
	if strings.HasSuffix(name, "_test.go") {
		return testsLink(ch, fragment)
	}
	return programLink(ch, fragment)
}

// testsLink is the path of the page of a chapter program's tests.
func testsLink(ch *Chapter, fragment string) string {
	link := "code/" + ch.Slug + "-tests.html"
	if fragment != "" {
		link += "#" + fragment
	}
	return link
}

// highlightAll highlights every program file the site shows, one file per
// core at a time: lexing is most of a build's work, and files are
// independent.
func (r *siteRenderer) highlightAll() {
	var srcs []*source
	for _, ch := range r.book.Chapters {
		for _, f := range ch.Files {
			if src, _, err := r.book.sources.get(ch.Program + "/" + f); err == nil {
				srcs = append(srcs, src)
			}
		}
	}
	var wg sync.WaitGroup
	work := make(chan *source)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for src := range work {
				src.highlighted(&r.hl, 1)
			}
		})
	}
	for _, src := range srcs {
		work <- src
	}
	close(work)
	wg.Wait()
}

// programLink is the path of a chapter program's page, relative to the
// site's top, with an optional #fragment.
func programLink(ch *Chapter, fragment string) string {
	link := "code/" + ch.Slug + ".html"
	if fragment != "" {
		link += "#" + fragment
	}
	return link
}

// chapterHTML renders a chapter's Markdown and puts each directive's block
// where its placeholder paragraph is.
func (r *siteRenderer) chapterHTML(ch *Chapter) (template.HTML, Errors) {
	body := []byte(ch.Body)
	doc := r.md.Parser().Parse(text.NewReader(body))
	errs := checkMarkdown(ch, body, doc)
	var buf bytes.Buffer
	if err := r.md.Renderer().Render(&buf, body, doc); err != nil {
		return "", Errors{{Pos{File: ch.File}, err.Error()}}
	}
	html := buf.String()
	figures := 0
	for i, blk := range ch.Blocks {
		var out string
		switch blk.Kind {
		case "listing":
			out = r.listing(ch, i, blk)
		case "diff":
			out = r.diff(ch, blk)
		case "transcript":
			out = r.transcript(blk)
		case "figure":
			figures++
			out = r.figure(ch, figures, blk)
		case "exercises":
			out = r.exercises()
		}
		ph := "<p>" + placeholder(i) + "</p>"
		if strings.Count(html, ph) != 1 {
			errs.add(blk.Pos, "a directive must be a paragraph of its own, with blank lines around it")
			continue
		}
		html = strings.Replace(html, ph, out, 1)
	}
	return template.HTML(html), errs
}

// codeBlock renders lines of a source as a <pre>, each line with its real
// number. Line ids start with idPrefix; numbers link to linkBase + id's
// line on the program's page.
func (r *siteRenderer) codeBlock(src *source, rng lineRange, idPrefix, linkBase string) template.HTML {
	var b strings.Builder
	b.WriteString(`<pre class="chroma code" tabindex="0"><code>`)
	for n := rng.First; n <= rng.Last; n++ {
		if src.marker[n-1] {
			continue
		}
		id := fmt.Sprintf("%sL%d", idPrefix, n)
		target := fmt.Sprintf("%s%sL%d", linkBase, path.Base(src.path)+"-", n)
		fmt.Fprintf(&b, `<span class="line" id="%s"><a class="ln" href="%s" aria-hidden="true" tabindex="-1">%d</a><span class="cl">%s</span></span>`,
			id, target, n, src.highlighted(&r.hl, n))
	}
	b.WriteString("</code></pre>")
	return template.HTML(b.String())
}

func (r *siteRenderer) listing(ch *Chapter, i int, blk *Block) string {
	src, _, _ := r.book.sources.get(blk.File)
	rng, what := src.all(), ""
	if blk.Region != "" {
		rng = src.regions[blk.Region]
		// gofmt puts a blank line before a marker that follows a function;
		// it is not part of what the region shows.
		for rng.Last > rng.First && strings.TrimSpace(src.lines[rng.Last-1]) == "" {
			rng.Last--
		}
		what = fmt.Sprintf(`<span class="where">lines %d–%d</span>`, rng.First, rng.Last)
	}
	name := path.Base(blk.File)
	return fmt.Sprintf(`<figure class="listing"><figcaption><a href="%s">%s</a>%s</figcaption>%s</figure>`,
		fileLink(ch, name, name), template.HTMLEscapeString(blk.File), what,
		r.codeBlock(src, rng, fmt.Sprintf("listing%d-", i+1), fileLink(ch, name, "")+"#"))
}

func (r *siteRenderer) diff(ch *Chapter, blk *Block) string {
	oldSrc, _, _ := r.book.sources.get(blk.Old)
	newSrc, _, _ := r.book.sources.get(blk.File)
	hs := diffLines(oldSrc.lines, newSrc.lines, oldSrc.marker, newSrc.marker, 3)
	added, removed := 0, 0
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, `<span class="hunk">@@ -%d +%d @@</span>`, firstOf(h, true), firstOf(h, false))
		for _, l := range h {
			var cls, code, oldN, newN string
			switch l.Op {
			case '+':
				added++
				cls, code = "ins", string(newSrc.highlighted(&r.hl, l.New))
			case '-':
				removed++
				cls, code = "del", string(oldSrc.highlighted(&r.hl, l.Old))
			default:
				cls, code = "ctx", string(newSrc.highlighted(&r.hl, l.New))
			}
			if l.Old > 0 {
				oldN = fmt.Sprint(l.Old)
			}
			if l.New > 0 {
				newN = fmt.Sprintf(`<a href="%s" tabindex="-1">%d</a>`, fileLink(ch, path.Base(blk.File), fmt.Sprintf("%s-L%d", path.Base(blk.File), l.New)), l.New)
			}
			fmt.Fprintf(&b, `<span class="line %s"><span class="ln" aria-hidden="true">%s</span><span class="ln" aria-hidden="true">%s</span><span class="op">%c</span><span class="cl">%s</span></span>`,
				cls, oldN, newN, l.Op, code)
		}
	}
	prev := blk.Base
	caption := fmt.Sprintf(`From <a href="%s">%s</a> to <a href="%s">%s</a>: <span class="added">+%d</span> <span class="removed">−%d</span> lines`,
		fileLink(prev, path.Base(blk.Old), path.Base(blk.Old)), blk.Old, fileLink(ch, path.Base(blk.File), path.Base(blk.File)), blk.File, added, removed)
	if len(hs) == 0 {
		return fmt.Sprintf(`<figure class="listing diff"><figcaption>%s</figcaption><p>No change.</p></figure>`, caption)
	}
	return fmt.Sprintf(`<figure class="listing diff"><figcaption>%s</figcaption><pre class="chroma code" tabindex="0"><code>%s</code></pre></figure>`, caption, b.String())
}

// exercises is the table of every chapter's exercises, each marked graded
// when its chapter has a grader for it (a TestExerciseN in grade/grade_test.go).
func (r *siteRenderer) exercises() string {
	var b strings.Builder
	b.WriteString(`<table class="exercises"><thead><tr><th>Chapter</th><th>Exercise</th><th>Checked by</th></tr></thead><tbody>`)
	for _, ch := range r.book.Chapters {
		// No grader, or one that cannot be read, means checked by hand.
		data, _ := r.book.sources.read(ch.Program + "/grade/grade_test.go")
		graded := exercises.Graded(string(data))
		for _, x := range exercises.List(ch.Body) {
			how := "hand"
			if graded[x.Num] {
				how = fmt.Sprintf("<code>make exercise CH=%02d</code>", ch.Num)
			}
			fmt.Fprintf(&b, `<tr><td><a href="%s#exercises">%d. %s</a></td><td>%d. %s</td><td>%s</td></tr>`,
				chapterLink(ch), ch.Num, template.HTMLEscapeString(ch.Title), x.Num, template.HTMLEscapeString(x.Title), how)
		}
	}
	b.WriteString(`</tbody></table>`)
	return b.String()
}

// firstOf is the first line number a hunk shows in the old or new file.
func firstOf(h hunk, old bool) int {
	for _, l := range h {
		if old && l.Old > 0 {
			return l.Old
		}
		if !old && l.New > 0 {
			return l.New
		}
	}
	return 0
}

// transcript shows each pane as a terminal. Each pane asks for the width
// of its longest line (--cols, in characters, within limits) and the
// stylesheet fits as many panes side by side as the window has room for,
// wrapping longer lines with a hanging indent rather than cutting them.
func (r *siteRenderer) transcript(blk *Block) string {
	panes := blk.Panes
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="transcript panes-%d"><div class="panes">`, len(panes))
	for _, p := range panes {
		cols := 0
		for _, line := range p.Lines {
			cols = max(cols, utf8.RuneCountInString(line))
		}
		fmt.Fprintf(&b, `<div class="pane" style="--cols: %d"><div class="pane-title">%s</div><pre class="terminal" tabindex="0"><code>`,
			min(max(cols, minPaneCols), maxPaneCols), template.HTMLEscapeString(p.Name))
		for _, line := range p.Lines {
			esc := template.HTMLEscapeString(line)
			b.WriteString(`<span class="tl">`)
			switch {
			case strings.HasPrefix(line, "$ "):
				fmt.Fprintf(&b, `<span class="prompt">$ </span><span class="command">%s</span>`, esc[2:])
			case line == "^C":
				b.WriteString(`<span class="ctrl">^C</span>`)
			default:
				b.WriteString(esc)
			}
			b.WriteString("\n</span>")
		}
		b.WriteString("</code></pre></div>")
	}
	fmt.Fprintf(&b, `</div><p class="recorded">Recorded by the tests in %s; ports are shown as a reader would see them.</p></div>`,
		template.HTMLEscapeString(path.Dir(path.Dir(blk.File))))
	return b.String()
}

// The width a transcript's pane asks for, in characters: its longest line,
// but no narrower than minPaneCols (short outputs share a row) and no wider
// than maxPaneCols (one long line does not push every other pane down).
const (
	minPaneCols = 24
	maxPaneCols = 88
)

func (r *siteRenderer) figure(ch *Chapter, n int, blk *Block) string {
	return fmt.Sprintf(`<figure class="diagram">%s<figcaption>Figure %d.%d. %s</figcaption></figure>`,
		blk.SVG, ch.Num, n, template.HTMLEscapeString(blk.Caption))
}

// markdownCode renders fenced code in the prose (C signatures, shell
// commands) with the same highlighter as the listings, and gives every
// heading a link to itself.
type markdownCode struct{ r *siteRenderer }

func (m markdownCode) RegisterFuncs(reg renderer.NodeRendererFuncRegisterer) {
	reg.Register(ast.KindFencedCodeBlock, m.fenced)
	reg.Register(ast.KindHeading, m.heading)
}

func (m markdownCode) fenced(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	if !entering {
		return ast.WalkContinue, nil
	}
	n := node.(*ast.FencedCodeBlock)
	var text bytes.Buffer
	for i := 0; i < n.Lines().Len(); i++ {
		seg := n.Lines().At(i)
		text.Write(seg.Value(source))
	}
	lang := string(n.Language(source))
	lexer := lexerNamed(lang)
	fmt.Fprintf(w, `<pre class="chroma code lang-%s" tabindex="0"><code>`, template.HTMLEscapeString(lang))
	for _, line := range m.r.hl.lines(lexer, text.String()) {
		fmt.Fprintf(w, `<span class="line"><span class="cl">%s</span></span>`, line)
	}
	w.WriteString("</code></pre>\n")
	return ast.WalkSkipChildren, nil
}

func (m markdownCode) heading(w util.BufWriter, source []byte, node ast.Node, entering bool) (ast.WalkStatus, error) {
	n := node.(*ast.Heading)
	id, ok := n.AttributeString("id")
	if !ok {
		id = []byte{}
	}
	idStr := string(id.([]byte))
	if entering {
		fmt.Fprintf(w, `<h%d id="%s">`, n.Level, template.HTMLEscapeString(idStr))
		return ast.WalkContinue, nil
	}
	fmt.Fprintf(w, ` <a class="anchor" href="#%s" aria-label="Link to this section">#</a></h%d>`+"\n", template.HTMLEscapeString(idStr), n.Level)
	return ast.WalkContinue, nil
}
