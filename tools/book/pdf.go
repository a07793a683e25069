package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"
)

// The PDF edition is the single-page edition printed by headless Chromium
// (DevTools' Page.printToPDF), the browser the tests already use. Its
// print stylesheet (style.css, @media print) makes the cover, the contents,
// a page break before each part and chapter, and listings that wrap
// between lines rather than run off the page; the printer adds the page
// headers and footers and the outline (the PDF's bookmarks), and keeps the
// links within the book as links within the PDF.
//
// Chromium writes dates and ids of its own into a PDF, so the same book
// does not print to the same bytes twice: the PDF is printed by its own
// command, and names the edition it was printed from (editionDigest) on
// its cover and in its title, which a test compares with the sources.

// The paper, margins (inches) and running heads of the PDF.
const (
	pdfPaperWidth, pdfPaperHeight = 8.27, 11.69 // A4
	pdfMarginY, pdfMarginX        = 0.75, 0.7
	// The header and footer are drawn in the margins, in a document of
	// their own: no stylesheet, sizes in the template.
	pdfHeader = `<div style="width: 100%; margin: 0 0.7in; font: 8pt sans-serif; color: #555; display: flex; justify-content: space-between;"><span>From socket() to Server</span><span>github.com/socket-to-server/book</span></div>`
	pdfFooter = `<div style="width: 100%; margin: 0 0.7in; font: 8pt sans-serif; color: #555; text-align: center;"><span class="pageNumber"></span> / <span class="totalPages"></span></div>`
)

// printSettings is how the PDF is printed, as part of the edition's digest:
// a change to it is a new edition.
var printSettings = fmt.Sprint(pdfPaperWidth, pdfPaperHeight, pdfMarginY, pdfMarginX, pdfHeader, pdfFooter)

// printLimit bounds the whole print: starting Chromium, laying out the
// book (several seconds on a busy machine) and writing the PDF.
const printLimit = 5 * time.Minute

// printPDF prints the book's PDF into the site directory site, then builds
// the site there, so that its pages link the new PDF with its size.
func printPDF(root, site string) error {
	start := time.Now()
	files, err := Render(root)
	if err != nil {
		return buildFailed(err)
	}
	digest := editionDigest(files)
	// The same edition printed again would differ only in Chromium's dates
	// and ids: keep the one there, so that make site changes nothing when
	// nothing changed.
	if old, err := os.ReadFile(filepath.Join(site, pdfFile)); err == nil && pdfEdition(old) == digest {
		if err := Build(root, site); err != nil {
			return buildFailed(err)
		}
		fmt.Printf("%s is edition %s already: not printed again\n", filepath.Join(site, pdfFile), digest)
		return nil
	}
	tmp, err := os.MkdirTemp("", "book-pdf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{"book.html", "assets/style.css", "assets/code.css", "assets/favicon.svg"} {
		data := files[name]
		if name == "book.html" {
			if data, err = printable(data, digest); err != nil {
				return err
			}
		}
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	pdf, err := chromiumPrint(filepath.Join(tmp, "book.html"), filepath.Join(tmp, "profile"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(site, 0o755); err != nil {
		return err
	}
	// Written beside, then renamed: a reader of site/ never sees half a PDF.
	part := filepath.Join(site, pdfFile+".tmp")
	if err := os.WriteFile(part, pdf, 0o644); err != nil {
		return err
	}
	if err := os.Rename(part, filepath.Join(site, pdfFile)); err != nil {
		os.Remove(part)
		return err
	}
	printed := time.Since(start)
	if err := Build(root, site); err != nil {
		return buildFailed(err)
	}
	fmt.Printf("printed %s (%s, edition %s) in %.1f s, and built %s\n",
		filepath.Join(site, pdfFile), humanSize(int64(len(pdf))), digest, printed.Seconds(), site)
	return nil
}

// printable is book.html as the printer reads it: the edition named on the
// cover and in the title (the PDF's Title), and each link to a program's
// page made a link to its file in the repository, as the site's code/
// pages are no part of the PDF, and line numbers made plain numbers.
func printable(page []byte, digest string) ([]byte, error) {
	var b bytes.Buffer
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		raw := z.Raw()
		if tt != html.StartTagToken {
			b.Write(raw)
			continue
		}
		tok := z.Token()
		changed := false
		// A listing's line numbers (the links out of the tab order) lead
		// to the same line on the program's page: on paper, twelve
		// thousand links to the repository that no one follows.
		lineNumber := slices.Contains(tok.Attr, html.Attribute{Key: "tabindex", Val: "-1"})
		for i, a := range tok.Attr {
			if a.Key == "href" && tok.Data == "a" {
				if link, ok := offsite(a.Val); ok {
					tok.Attr[i].Val, changed = link, true
				}
			}
		}
		if lineNumber && tok.Data == "a" {
			tok.Attr = slices.DeleteFunc(tok.Attr, func(a html.Attribute) bool { return a.Key == "href" })
			changed = true
		}
		if changed {
			b.WriteString(tok.String())
		} else {
			b.Write(raw)
		}
	}
	out := b.Bytes()
	for _, r := range []struct{ old, new string }{
		{`<span class="edition"></span>`, `<span class="edition">` + digest + `</span>`},
		{"<title>" + bookTitle + ": the whole book · " + bookTitle + "</title>", "<title>" + bookTitle + " (edition " + digest + ")</title>"},
	} {
		if !bytes.Contains(out, []byte(r.old)) {
			return nil, fmt.Errorf("book.html has no %s: tools/book/theme/book.html and pdf.go disagree", r.old)
		}
		out = bytes.Replace(out, []byte(r.old), []byte(r.new), 1)
	}
	return out, nil
}

// chromiumPrint prints the page in file to a PDF in headless Chromium,
// with scripts off (the printed page needs none), and returns the PDF.
func chromiumPrint(file, profile string) ([]byte, error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), printLimit)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromiumOptions(path, profile)...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	if err := chromedp.Do(tab); err != nil {
		return nil, fmt.Errorf("start Chromium (%s): %w", path, err)
	}
	if _, err := chromedp.Call(tab, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		return nil, fmt.Errorf("turn off scripts in Chromium: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(file)}
	if err := chromedp.Do(tab, chromedp.Navigate(u.String())); err != nil {
		return nil, fmt.Errorf("open %s in Chromium: %w", file, err)
	}
	pdf, err := chromedp.Run(tab, chromedp.PrintToPDF(
		chromedp.PDFPaper(chromedp.PaperSize{Width: pdfPaperWidth, Height: pdfPaperHeight}),
		chromedp.PDFMargins(pdfMarginY, pdfMarginX, pdfMarginY, pdfMarginX),
		chromedp.PDFPrintBackground(),
		chromedp.PDFHeaderTemplate(pdfHeader),
		chromedp.PDFFooterTemplate(pdfFooter),
		chromedp.PDFOutlineAndTagged(),
		chromedp.PDFStream(),
	))
	if err != nil {
		return nil, fmt.Errorf("print %s to PDF in Chromium: %w", file, err)
	}
	return pdf, nil
}

// chromiumPath finds Debian's (or Google's) Chromium.
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium (chromium, chromium-browser or google-chrome) on PATH: it prints the PDF; apt-get install chromium")
}

// chromiumOptions are how the PDF printer and the browser tests start
// Chromium: headless, with a profile of its own in profile, and nothing
// that reaches the network (updates, sync, QUIC).
func chromiumOptions(path, profile string) []chromedp.ExecAllocatorOption {
	return append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
}
