package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"fmt"
	"html/template"
	"net/url"
	"time"
)

// The EPUB 3 edition: one XHTML document per chapter, part and page, the
// navigation document (and an NCX for EPUB 2 readers), and a stylesheet of
// its own; figures are inline SVG, as on the site, so that they take the
// reader's colours. No script, no search: a reader has its own.
//
// The build writes it, so it must come out the same, byte for byte, from
// the same sources: entries in a fixed order, each with the same time, and
// nothing from the clock.

// epubModified is the EPUB's dcterms:modified and the time of each entry
// of its zip. EPUB requires the one; determinism forbids the clock. It is
// the date the edition's layout was last changed: change it with the
// layout, so that a reader's library tells the two apart.
var epubModified = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

// epubTemplates are the EPUB's documents (theme/epub.xml).
var epubTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"partLabel": partLabel,
	"repoDir":   func(ch *Chapter) string { return repository + "/tree/main/" + ch.Program },
	"repoFile":  func(ch *Chapter, f string) string { return repository + "/blob/main/" + ch.Program + "/" + f },
}).ParseFS(theme, "theme/epub.xml"))

// epubDoc is one XHTML document of the EPUB.
type epubDoc struct {
	ID   string // its id in the package document
	File string // its name, next to package.opf
	SVG  bool   // it has inline SVG (the manifest must say so)
	data []byte
}

// navPoint is an entry of the contents, in the navigation document and
// the NCX.
type navPoint struct {
	Label    string
	File     string
	Order    int // the NCX's playOrder: 1, 2, ... in reading order
	Children []*navPoint
}

// epubPackage is what the package document and the navigation show.
type epubPackage struct {
	ID, Title, Creator, Description, Source, Modified string
	Docs                                              []*epubDoc // in reading order, the title page first
	Nav                                               []*navPoint
	Start                                             string // the first chapter's file
}

// epub writes the EPUB from the chapters' and pages' HTML (contents).
func (r *siteRenderer) epub(contents map[*Chapter]template.HTML) ([]byte, Errors) {
	b := r.book
	pkg := &epubPackage{
		ID:          bookUUID(),
		Title:       b.Title,
		Creator:     "The " + b.Title + " authors",
		Description: "How a server really works, one system call at a time: each chapter takes one step, explains what the Linux kernel does, and pairs it with a short Go program.",
		Source:      repository,
		Modified:    epubModified.Format(time.RFC3339),
	}
	var errs Errors
	exec := func(doc *epubDoc, tmpl string, data any) {
		// The XML declaration is written here: html/template would
		// escape its "<?".
		var buf bytes.Buffer
		buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		if err := epubTemplates.ExecuteTemplate(&buf, tmpl, data); err != nil {
			errs.add(Pos{File: "tools/book/theme/epub.xml"}, "%v", err)
		}
		doc.data = buf.Bytes()
		doc.SVG = bytes.Contains(doc.data, []byte("<svg"))
	}
	title := &epubDoc{ID: "title", File: "title.xhtml"}
	exec(title, "title", pkg)
	pkg.Docs = append(pkg.Docs, title)
	order := 0
	point := func(label, file string) *navPoint {
		order++
		return &navPoint{Label: label, File: file, Order: order}
	}
	pkg.Nav = append(pkg.Nav, point(b.Title, title.File))
	chapter := func(ch *Chapter, label string) *navPoint {
		content, ok := contents[ch]
		if !ok {
			return nil // its errors are reported with the site's
		}
		x, err := xhtml(content, r.epubLink)
		if err != nil {
			errs.add(Pos{File: ch.File}, "%v", err)
			return nil
		}
		doc := &epubDoc{ID: "c-" + ch.Slug, File: ch.Slug + ".xhtml"}
		exec(doc, "chapter", page{Book: b, Chapter: ch, Content: x})
		pkg.Docs = append(pkg.Docs, doc)
		return point(label, doc.File)
	}
	// The pages (before you start, for instructors) are the front matter.
	for _, pg := range b.Pages {
		if p := chapter(pg, pg.Title); p != nil {
			pkg.Nav = append(pkg.Nav, p)
		}
	}
	for _, part := range b.Parts {
		if len(part.Chapters) == 0 {
			continue // as in the single-page edition: nothing to show yet
		}
		doc := &epubDoc{ID: part.ID(), File: part.ID() + ".xhtml"}
		exec(doc, "part", part)
		pkg.Docs = append(pkg.Docs, doc)
		p := point(partLabel(part), doc.File)
		pkg.Nav = append(pkg.Nav, p)
		for _, ch := range part.Chapters {
			if c := chapter(ch, fmt.Sprintf("%d. %s", ch.Num, ch.Title)); c != nil {
				p.Children = append(p.Children, c)
				if pkg.Start == "" {
					pkg.Start = c.File
				}
			}
		}
	}
	if pkg.Start == "" {
		pkg.Start = title.File
	}
	nav, ncx, opf, container := &epubDoc{}, &epubDoc{}, &epubDoc{}, &epubDoc{}
	exec(nav, "nav", pkg)
	exec(ncx, "ncx", pkg)
	exec(opf, "package", pkg)
	exec(container, "container", nil)
	if len(errs) > 0 {
		return nil, errs
	}

	var out bytes.Buffer
	z := zip.NewWriter(&out)
	add := func(name string, data []byte, method uint16) {
		fh := &zip.FileHeader{Name: name, Method: method, Modified: epubModified}
		if name == "mimetype" {
			// OCF: the first entry, stored, with no extra field, which
			// Modified would add (an extended timestamp); its time goes in
			// the MS-DOS fields only.
			fh.Modified = time.Time{}
			t := epubModified
			//lint:ignore SA1019 the MS-DOS fields are the only time an entry without an extra field has
			fh.ModifiedDate = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
			//lint:ignore SA1019 as above
			fh.ModifiedTime = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
		}
		w, err := z.CreateHeader(fh)
		if err == nil {
			_, err = w.Write(data)
		}
		if err != nil {
			errs.add(Pos{File: "tools/book/epub.go"}, "write %s into the EPUB: %v", name, err)
		}
	}
	add("mimetype", []byte("application/epub+zip"), zip.Store)
	add("META-INF/container.xml", container.data, zip.Deflate)
	add("EPUB/package.opf", opf.data, zip.Deflate)
	add("EPUB/nav.xhtml", nav.data, zip.Deflate)
	add("EPUB/toc.ncx", ncx.data, zip.Deflate)
	add("EPUB/style.css", epubCSS(), zip.Deflate)
	for _, doc := range pkg.Docs {
		add("EPUB/"+doc.File, doc.data, zip.Deflate)
	}
	if err := z.Close(); err != nil {
		errs.add(Pos{File: "tools/book/epub.go"}, "close the EPUB: %v", err)
	}
	return out.Bytes(), errs
}

// epubLink is where a link of a chapter goes in the EPUB: within the book
// for a chapter or a page (their .xhtml), to the repository for a
// program's page, unchanged to another site.
func (r *siteRenderer) epubLink(href string) (string, bool) {
	u, err := url.Parse(href)
	if err != nil {
		return "", false
	}
	if u.Scheme != "" || u.Host != "" || (u.Path == "" && u.Fragment != "") {
		return href, true
	}
	if link, ok := offsite(href); ok {
		return link, true
	}
	if u.Path == "index.html" {
		return "nav.xhtml", true
	}
	for _, ch := range append(append([]*Chapter{}, r.book.Chapters...), r.book.Pages...) {
		if u.Path == chapterLink(ch) {
			u.Path = ch.Slug + ".xhtml"
			return u.String(), true
		}
	}
	return "", false
}

// bookUUID is the book's identifier in the EPUB, the same for every
// edition (a reader's library files a new one as the same book): a UUID
// made from the repository's address, as version 5 UUIDs are made.
func bookUUID() string {
	h := sha256.Sum256([]byte(repository))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// epubCSS is the EPUB's stylesheet: its own layout (theme/epub.css) and
// the listings' colours, light, and dark when the reader asks for dark.
func epubCSS() []byte {
	return append(mustRead("theme/epub.css"), tokenCSS(false)...)
}
