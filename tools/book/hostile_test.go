package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The generator under hostile or careless input (issue 9): no file from
// outside the book, no script and no raw HTML reaches the site, and each
// mistake gets one message, at the place to fix it.

// secret is what the files outside the book hold; no page may show it.
const secret = "SECRET-OUTSIDE-THE-BOOK"

// outside writes a file outside the book's directory and returns its real
// path (the temporary directory may itself be reached through a link).
func outside(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// link makes name (in the book at root) a symbolic link to target.
func link(t *testing.T, root, name, target string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(name))
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// renderErrors renders the book at root and returns its errors, failing
// the test when the build succeeds or when a page shows the secret.
func renderErrors(t *testing.T, root string) string {
	t.Helper()
	files, err := Render(root)
	for name, data := range files {
		if strings.Contains(string(data), secret) {
			t.Errorf("%s shows a file from outside the book", name)
		}
	}
	if err == nil {
		t.Fatal("the build succeeded")
	}
	return err.Error()
}

// Item 8: every file the generator reads is refused, at the place that
// names it, when its real path is outside the book.
func TestLinksOutOfTheBook(t *testing.T) {
	svg := fixture()["chapters/figures/01-pic.svg"]
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) (want string)
	}{
		{"a program file", func(t *testing.T, root string) string {
			out := outside(t, "notes.go", "package main\n// "+secret+"\n")
			link(t, root, "code/01-first/notes.go", out)
			return "code/01-first/notes.go: a link to " + out + ", outside the book: the site shows only the book's own files"
		}},
		{"a file a listing shows", func(t *testing.T, root string) string {
			out := outside(t, "passwd", "root:x:0:0:"+secret+"\n")
			link(t, root, "code/01-first/leak.go", out)
			chapter := strings.Replace(fixture()["chapters/01-first.md"], "listing main.go region=hello", "listing leak.go", 1)
			if err := os.WriteFile(filepath.Join(root, "chapters/01-first.md"), []byte(chapter), 0o644); err != nil {
				t.Fatal(err)
			}
			return "code/01-first/leak.go: a link to " + out + ", outside the book: the site shows only the book's own files"
		}},
		{"a transcript", func(t *testing.T, root string) string {
			out := outside(t, "run.txt", "=== server\n"+secret+"\n")
			link(t, root, "code/01-first/testdata/run.txt", out)
			return "code/01-first/testdata/run.txt: a link to " + out + ", outside the book: the site shows only the book's own files"
		}},
		{"a figure", func(t *testing.T, root string) string {
			out := outside(t, "pic.svg", strings.Replace(svg, "A dot", secret, 1))
			link(t, root, "chapters/figures/01-pic.svg", out)
			return "chapters/figures/01-pic.svg: a link to " + out + ", outside the book: the site shows only the book's own files"
		}},
		{"a chapter", func(t *testing.T, root string) string {
			out := outside(t, "03.md", "---\ntitle: "+secret+"\nsummary: x\nprogram: code/01-first\n---\n")
			link(t, root, "chapters/03-third.md", out)
			return "chapters/03-third.md: a link to " + out + ", outside the book: the site shows only the book's own files"
		}},
		{"a program directory", func(t *testing.T, root string) string {
			dir := filepath.Dir(outside(t, "main.go", "package main\n// "+secret+"\n"))
			if err := os.WriteFile(filepath.Join(dir, "main_test.go"), []byte("package main\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(root, "code/02-second")); err != nil {
				t.Fatal(err)
			}
			link(t, root, "code/02-second", dir)
			return "code/02-second: a link to " + dir + ", outside the book: the site shows only the book's own files"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeBook(t, fixture())
			want := tt.setup(t, root)
			if got := renderErrors(t, root); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A link that stays inside the book is fine: it is the book's own file.
func TestLinkInsideTheBook(t *testing.T) {
	root := writeBook(t, fixture())
	link(t, root, "code/02-second/hello.go", "../01-first/main.go")
	files, err := Render(root)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["code/02-second.html"]), `id="hello.go"`) {
		t.Error("the program's page does not show hello.go")
	}
}

// A FIFO in a program's directory would block the build forever: only
// regular files are read.
func TestFIFOIsRefused(t *testing.T) {
	root := writeBook(t, fixture())
	fifo := filepath.Join(root, "code/01-first/pipe.go")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Render(root)
		done <- err
	}()
	select {
	case err := <-done:
		want := "code/01-first/pipe.go: not a regular file: the site shows only the book's own files"
		if err == nil || err.Error() != want {
			t.Errorf("errors:\n%v\nwant:\n%s", err, want)
		}
	case <-time.After(10 * time.Second):
		// Open the FIFO's other end, so that the build's read ends.
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-done
		t.Error("the build blocked reading a FIFO")
	}
}

// Files the Go tool ignores (_x.go, .x.go, testdata/) are not part of the
// program: its page does not show them, and a listing cannot name them.
func TestIgnoredFilesAreNotShown(t *testing.T) {
	files := fixture()
	files["code/01-first/_notes.go"] = "package main\n// " + secret + " underscore\n"
	files["code/01-first/.notes.go"] = "package main\n// " + secret + " dot\n"
	files["code/01-first/testdata/data.go"] = "package main\n// " + secret + " testdata\n"
	site, err := Render(writeBook(t, files))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range site {
		if strings.Contains(string(data), secret) {
			t.Errorf("%s shows a file the Go tool ignores", name)
		}
	}
	for _, name := range []string{"_notes.go", ".notes.go", "testdata/data.go"} {
		t.Run(name, func(t *testing.T) {
			files := fixture()
			files["code/01-first/"+name] = "package main\n"
			files["chapters/01-first.md"] = strings.Replace(files["chapters/01-first.md"], "listing main.go region=hello", "listing "+name, 1)
			got := renderErrors(t, writeBook(t, files))
			want := "chapters/01-first.md:8: " + name + " is not one of the files the program's page shows (main.go, main_test.go): " +
				"a listing shows a .go file of the program's directory that go build reads (not _x.go, .x.go or testdata/)"
			if got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Item 9: a figure is pasted into the page, so it may hold only drawing:
// the SVG elements and attributes AUTHORING.md lists, links only to its
// own #ids.
func TestFigureAllowList(t *testing.T) {
	const head = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" role="img"><title>A dot</title>` + "\n"
	const file = "chapters/figures/01-pic.svg"
	tests := []struct{ name, svg, want string }{
		{"script", head + `<script>alert(1)</script></svg>`,
			file + `:2: <script> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"event handler", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><title>A dot</title></svg>`,
			file + `:1: attribute onload= of <svg> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"javascript link", head + `<use href="javascript:alert(1)"/></svg>`,
			file + `:2: href="javascript:alert(1)" of <use>: a figure links only to its own ids, href="#id"`},
		{"xlink:href", head + `<use xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="#a"/></svg>`,
			file + `:2: attribute xmlns:xlink= of <use> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)` + "\n" +
				file + `:2: attribute xlink:href= of <use> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"anchor", head + `<a href="https://example.com/"><rect width="1" height="1"/></a></svg>`,
			file + `:2: <a> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"foreignObject", head + `<foreignObject><div>hi</div></foreignObject></svg>`,
			file + `:2: <foreignObject> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"javascript in any attribute", head + `<rect class="java&#x09;script:x" width="1" height="1"/></svg>`,
			file + `:2: class="java\tscript:x" of <rect>: javascript: is not allowed in a figure`},
		{"external url", head + `<rect fill="url(https://example.com/f.svg#p)" width="1" height="1"/></svg>`,
			file + `:2: fill="url(https://example.com/f.svg#p)" of <rect>: url(...) in a figure names one of its own ids, url(#id)`},
		{"style element", head + `<style>rect { fill: url(https://example.com/x) }</style></svg>`,
			file + `:2: <style> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"style attribute", head + `<rect style="fill: url(https://example.com/x)" width="1" height="1"/></svg>`,
			file + `:2: attribute style= of <rect> is not allowed in a figure (tools/AUTHORING.md lists what a figure may contain)`},
		{"a second root", head + "</svg>\n<script>alert(1)</script>",
			file + `:3: <script> after the <svg> element: a figure is one <svg> element`},
		{"a comment that ends early in HTML", head + `<!--><script>alert(1)</script>--></svg>`,
			file + `:2: a comment in a figure may not contain < or >: HTML would end it early`},
		{"a processing instruction", head + `<?x ><script>alert(1)</script>?></svg>`,
			file + `:2: <?x ...?> is not allowed in a figure`},
		{"CDATA", head + `<text><![CDATA[</text><script>alert(1)</script>]]></text></svg>`,
			file + `:2: CDATA is not allowed in a figure: write &lt; and &amp;`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fixture()
			files[file] = tt.svg
			got := renderErrors(t, writeBook(t, files))
			if got != tt.want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// The book's own figures pass the allow-list as they are.
func TestBookFiguresAllowed(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("..", "..", "chapters", "figures", "*.svg"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no figures: %v", err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, errs := checkSVG(filepath.Base(name), string(data)); errs != nil {
			t.Errorf("%v", errs)
		}
	}
}

// Items 10, 11 and 12: what goldmark drops or empties, bytes that are not
// UTF-8, and mistakes that got a misleading or repeated message.
func TestMistakesOneMessage(t *testing.T) {
	first, second := fixture()["chapters/01-first.md"], fixture()["chapters/02-second.md"]
	tests := []struct {
		name   string
		change map[string]string
		want   []string
	}{
		// Item 10.
		{"raw HTML block", map[string]string{"chapters/02-second.md": second + "\n<div onclick=\"alert(1)\">hi</div>\n"},
			[]string{`chapters/02-second.md:14: raw HTML is not allowed in a chapter (goldmark would drop it): write Markdown`}},
		{"raw HTML inline", map[string]string{"chapters/02-second.md": second + "\nSome\nwords <b>bold</b> here.\n"},
			[]string{`chapters/02-second.md:15: raw HTML is not allowed in a chapter (goldmark would drop it): write Markdown`}},
		{"javascript link", map[string]string{"chapters/02-second.md": second + "\nA [link](javascript:alert(1)).\n"},
			[]string{`chapters/02-second.md:14: link to "javascript:alert(1)": a link goes to http:, https:, mailto: or a page of the site`}},
		{"javascript reference link", map[string]string{"chapters/02-second.md": second + "\nA [link][x].\n\n[x]: javascript:alert(1)\n"},
			[]string{`chapters/02-second.md:14: link to "javascript:alert(1)": a link goes to http:, https:, mailto: or a page of the site`}},
		{"javascript autolink", map[string]string{"chapters/02-second.md": second + "\nSee <javascript:alert(1)>.\n"},
			[]string{`chapters/02-second.md:14: link to "javascript:alert(1)": a link goes to http:, https:, mailto: or a page of the site`}},
		// Item 11.
		{"chapter not UTF-8", map[string]string{"chapters/02-second.md": second + "\ncaf\xe9\n"},
			[]string{`chapters/02-second.md:14: not UTF-8 (byte 0xe9): pages are UTF-8`}},
		{"program not UTF-8", map[string]string{"code/01-first/main.go": "package main\n\n// caf\xe9\n" + fixture()["code/01-first/main.go"][len("package main\n"):]},
			[]string{`code/01-first/main.go:3: not UTF-8 (byte 0xe9): pages are UTF-8`}},
		{"transcript not UTF-8", map[string]string{"code/01-first/testdata/run.txt": "=== server\ncaf\xe9\n"},
			[]string{`code/01-first/testdata/run.txt:2: not UTF-8 (byte 0xe9): pages are UTF-8`}},
		{"figure not UTF-8", map[string]string{"chapters/figures/01-pic.svg": strings.Replace(fixture()["chapters/figures/01-pic.svg"], "A dot", "caf\xe9", 1)},
			[]string{`chapters/figures/01-pic.svg:1: not UTF-8 (byte 0xe9): pages are UTF-8`}},
		// Item 12.
		{"empty chapter", map[string]string{"chapters/01-first.md": "\n"},
			[]string{`chapters/01-first.md:1: missing front matter: a chapter starts with a line "---", then title:, summary: and program:, then "---"`}},
		{"front matter not closed", map[string]string{"chapters/02-second.md": strings.Replace(second, "---\nWhat", "What", 1)},
			[]string{`chapters/02-second.md:1: front matter is not closed: no "---" line after it`}},
		{"front matter closed too late", map[string]string{"chapters/02-second.md": strings.Replace(second, "---\nWhat", "--\nWhat", 1) + "\n---\n"}, []string{
			`chapters/02-second.md:5: front matter line must be "key: value", got "--"`,
		}},
		{"page without front matter", map[string]string{"chapters/instructors.md": "# For instructors\n"},
			[]string{`chapters/instructors.md:1: missing front matter: a page starts with a line "---", then title: and summary:, then "---"`}},
		{"chapter 00", map[string]string{"chapters/00-intro.md": "---\ntitle: x\nsummary: y\nprogram: code/00-intro\n---\n"},
			[]string{`chapters/00-intro.md: chapter numbers start at 01`}},
		{"empty transcript", map[string]string{"code/01-first/testdata/run.txt": "\n"},
			[]string{`code/01-first/testdata/run.txt:1: the transcript is empty (its test writes it: go test ./code/01-first -update)`}},
		{"directive in a list item", map[string]string{"chapters/02-second.md": second + "\n1. A step:\n\n   ::: listing main.go\n"},
			[]string{`chapters/02-second.md:16: a directive starts at the beginning of its line: indented, or in a list item or a quote, it would be shown as text`}},
		{"directive in a quote", map[string]string{"chapters/02-second.md": second + "\n> ::: listing main.go\n"},
			[]string{`chapters/02-second.md:14: a directive starts at the beginning of its line: indented, or in a list item or a quote, it would be shown as text`}},
		{"repeated option", map[string]string{"chapters/01-first.md": strings.Replace(first, "region=hello", "region=hello region=other", 1)},
			[]string{`chapters/01-first.md:8: option region= is given twice`}},
		{"unclosed fence", map[string]string{"chapters/02-second.md": second + "\nText.\n\n```go\nfunc f() {}\n"},
			[]string{"chapters/02-second.md:16: code block opened with ``` is not closed"}},
		{"unclosed fence before a directive", map[string]string{"chapters/01-first.md": strings.Replace(first, "Some prose.", "Some prose.\n~~~~", 1)},
			[]string{"chapters/01-first.md:7: code block opened with ~~~~ is not closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := fixture()
			for name, text := range tt.change {
				files[name] = text
			}
			got := renderErrors(t, writeBook(t, files))
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
