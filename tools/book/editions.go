package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The book comes in three editions besides its pages: the single-page
// edition (book.html), an EPUB that the build writes with the rest of the
// site, and a PDF that headless Chromium prints from the single-page
// edition (the pdf command, pdf.go). The files' names, in site/:
const (
	epubFile = "socket-to-server.epub"
	pdfFile  = "socket-to-server.pdf"
)

// repository is where the book's sources are read outside the site: the
// module's path is the repository's. The EPUB and the PDF link a program's
// files there, the site's code/ pages being no part of either.
const repository = "https://github.com/socket-to-server/book"

// edition is a download the pages link to, with its size.
type edition struct {
	Name string // "EPUB"
	File string // "socket-to-server.epub"
	Size string // "1.2 MB"
	For  string // what it is for, as the index says it
}

// editions are the downloads the site offers: the EPUB, always (the build
// writes it), and the PDF when there is one, of pdfSize bytes.
func editions(epubSize, pdfSize int64) []edition {
	e := []edition{{"EPUB", epubFile, humanSize(epubSize), "for an e-reader, in its light or dark theme"}}
	if pdfSize > 0 {
		e = append(e, edition{"PDF", pdfFile, humanSize(pdfSize), "to print or to keep, with a cover, contents and page numbers"})
	}
	return e
}

// humanSize is a file's size as the links show it: "2.1 MB", "840 KB".
func humanSize(n int64) string {
	if n >= 1_000_000 {
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d KB", max(1, (n+500)/1000))
}

// pdfSize is the size of the PDF in the site directory out, or 0 when it
// has none: the PDF is printed by its own command (Chromium is not needed to
// build the site), and the build links it, with its size, when it is there.
func pdfSize(out string) int64 {
	info, err := os.Stat(filepath.Join(out, pdfFile))
	if err != nil || !info.Mode().IsRegular() {
		return 0
	}
	return info.Size()
}

// offsite is the link a site-relative href gives in the EPUB and the PDF,
// which hold the chapters but not the programs' pages: a program's page,
// or a line of it, becomes the file (and line) in the repository. It
// returns false for any other page of the site.
func offsite(href string) (string, bool) {
	page, frag, _ := strings.Cut(href, "#")
	rest, ok := strings.CutPrefix(page, "code/")
	if !ok || strings.Contains(rest, "/") || !strings.HasSuffix(rest, ".html") {
		return "", false
	}
	slug := strings.TrimSuffix(strings.TrimSuffix(rest, ".html"), "-tests")
	file, line, _ := strings.Cut(frag, "-L")
	if file == "" {
		return repository + "/tree/main/code/" + slug, true
	}
	link := repository + "/blob/main/code/" + slug + "/" + file
	if line != "" {
		link += "#L" + line
	}
	return link, true
}

// editionDigest names the edition of the book the PDF was printed from:
// the start of a SHA-256 of what the printer reads, book.html and the
// stylesheets, and of how it prints (printSettings). book.html's header is
// left out: it links the PDF with its size, which the PDF cannot know
// before it is printed, and print hides it anyway.
func editionDigest(files map[string][]byte) string {
	h := sha256.New()
	for _, name := range []string{"book.html", "assets/style.css", "assets/code.css"} {
		data := files[name]
		if name == "book.html" {
			data = withoutSiteHeader(data)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	h.Write([]byte(printSettings))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// editionRE finds the edition in the PDF's Title, which Chromium writes
// uncompressed: "From socket() to Server (edition 3f2a9c1e4b7d)".
var editionRE = regexp.MustCompile(`/Title \(From socket\\\(\\\) to Server \\\(edition ([0-9a-f]{12})\\\)\)`)

// pdfEdition is the edition a PDF names in its Title, or "".
func pdfEdition(pdf []byte) string {
	if m := editionRE.FindSubmatch(pdf); m != nil {
		return string(m[1])
	}
	return ""
}

// withoutSiteHeader is a page without its <header class="top">.
func withoutSiteHeader(page []byte) []byte {
	before, rest, ok := bytes.Cut(page, []byte(`<header class="top">`))
	if !ok {
		return page
	}
	_, after, ok := bytes.Cut(rest, []byte("</header>"))
	if !ok {
		return page
	}
	return append(before[:len(before):len(before)], after...)
}

// copyPDF copies the PDF of the site directory from into the site
// directory to, when from has one: a fresh build compared with site/ must
// link the same PDF.
func copyPDF(from, to string) error {
	data, err := os.ReadFile(filepath.Join(from, pdfFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(to, pdfFile), data, 0o644)
}
