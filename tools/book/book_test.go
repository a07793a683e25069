package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fixture is a small, valid book: two chapters with programs, a figure and
// a transcript. Tests copy it, break one thing, and look at what happens.
func fixture() map[string]string {
	return map[string]string{
		"chapters/01-first.md": `---
title: First
summary: The first step.
program: code/01-first
---
Some prose.

::: listing main.go region=hello

::: transcript run

::: figure 01-pic.svg caption="A picture"

And its test:

::: listing main_test.go
`,
		"chapters/02-second.md": `---
title: Second
summary: The second step.
program: code/02-second
---
What changed (see [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html)):

::: diff

` + "```go\n::: listing not-a-directive.go\n```\n",
		// Part I is written; Part II is not, yet.
		"chapters/parts.md": `# The parts of the book

Read by tools/book.

## Part I: The first steps

chapters: 01-02

summary: Where the book begins.

## Part II: Later steps

chapters: 03-04

summary: What comes next.
`,
		"chapters/figures/01-pic.svg": `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" role="img"><title>A dot</title><circle cx="5" cy="5" r="2"/></svg>`,
		"code/01-first/main.go": `package main

import "fmt"

func main() {
	// region hello
	fmt.Println("hello")
	// endregion hello
}
`,
		"code/01-first/main_test.go":     "package main\n\n// A test would be here.\n",
		"code/01-first/testdata/run.txt": "=== server\n$ go run ./code/01-first\nhello\n",
		"code/02-second/main.go": `package main

import "fmt"

func main() {
	// region hello
	fmt.Println("hello, again")
	// endregion hello
}
`,
		"code/02-second/main_test.go": "package main\n",
	}
}

// renderFixture renders the fixture book and returns its files.
func renderFixture(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := Render(writeBook(t, fixture()))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writeBook(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestFixtureBuilds(t *testing.T) {
	root := writeBook(t, fixture())
	if err := Build(root, filepath.Join(root, "site")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"index.html", "01-first.html", "02-second.html", "code/01-first.html", "code/02-second.html", "assets/style.css", "assets/code.css", "assets/favicon.svg"} {
		if _, err := os.Stat(filepath.Join(root, "site", name)); err != nil {
			t.Errorf("site lacks %s: %v", name, err)
		}
	}
}

// Each case breaks the fixture in one way and names every error the build
// must print, positioned like a compiler's.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name   string
		change map[string]string // file -> new text ("" removes the file)
		want   []string
	}{
		{
			name:   "missing region",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "region=hello", "region=nope", 1)},
			want:   []string{`chapters/01-first.md:8: region "nope" not found in code/01-first/main.go`},
		},
		{
			name:   "missing file",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "listing main.go", "listing mian.go", 1)},
			want:   []string{`chapters/01-first.md:8: code/01-first/mian.go not found`},
		},
		{
			name:   "file outside the program",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "listing main.go", "listing ../02-second/main.go", 1)},
			want:   []string{`chapters/01-first.md:8: "../02-second/main.go" is outside code/01-first: a chapter shows its own program's files`},
		},
		{
			name:   "missing transcript",
			change: map[string]string{"code/01-first/testdata/run.txt": ""},
			want:   []string{`chapters/01-first.md:10: transcript code/01-first/testdata/run.txt not found (its test writes it: go test ./code/01-first -update)`},
		},
		{
			name:   "malformed transcript",
			change: map[string]string{"code/01-first/testdata/run.txt": "hello\n"},
			want:   []string{`code/01-first/testdata/run.txt:1: text before the first "=== PANE" line (its test writes it: go test ./code/01-first -update)`},
		},
		{
			name:   "missing figure",
			change: map[string]string{"chapters/figures/01-pic.svg": ""},
			want:   []string{`chapters/01-first.md:12: figure chapters/figures/01-pic.svg not found`},
		},
		{
			name:   "figure without a title",
			change: map[string]string{"chapters/figures/01-pic.svg": `<svg xmlns="http://www.w3.org/2000/svg"><circle r="2"/></svg>`},
			want:   []string{`chapters/figures/01-pic.svg: no <title> in <svg>: a figure needs a text alternative`},
		},
		{
			name:   "figure that is not XML",
			change: map[string]string{"chapters/figures/01-pic.svg": "<svg>\n<title>x</title>\n<g></svg>"},
			want:   []string{`chapters/figures/01-pic.svg:3: not well-formed XML: <g> of line 3 is closed by </svg>`},
		},
		{
			name:   "region without its end",
			change: map[string]string{"code/01-first/main.go": strings.Replace(fixture()["code/01-first/main.go"], "\t// endregion hello\n", "", 1)},
			want: []string{
				`chapters/01-first.md:8: region "hello" not found in code/01-first/main.go`,
				`code/01-first/main.go:6: region "hello" has no "// endregion hello"`,
			},
		},
		{
			name:   "end without a region",
			change: map[string]string{"code/01-first/main.go": fixture()["code/01-first/main.go"] + "// endregion other\n"},
			want:   []string{`code/01-first/main.go:10: endregion "other" has no region "other" before it`},
		},
		{
			name:   "region defined twice",
			change: map[string]string{"code/01-first/main.go": fixture()["code/01-first/main.go"] + "// region hello\n// endregion hello\n"},
			want:   []string{`code/01-first/main.go:10: region "hello" is defined twice (first at line 6)`},
		},
		{
			name:   "unknown directive",
			change: map[string]string{"chapters/02-second.md": strings.Replace(fixture()["chapters/02-second.md"], "::: diff", "::: dif", 1)},
			want:   []string{`chapters/02-second.md:8: unknown directive "dif" (known: diff, exercises, figure, listing, transcript)`},
		},
		{
			name:   "unknown option",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "region=hello", "regoin=hello", 1)},
			want:   []string{`chapters/01-first.md:8: unknown option "regoin" for listing (known: region)`},
		},
		{
			name:   "wrong number of arguments",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "::: transcript run", "::: transcript", 1)},
			want:   []string{`chapters/01-first.md:10: transcript takes 1 argument(s), got 0: ""`},
		},
		{
			name:   "unclosed quote",
			change: map[string]string{"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], `caption="A picture"`, `caption="A picture`, 1)},
			want:   []string{`chapters/01-first.md:12: unclosed quote in directive`},
		},
		{
			name:   "diff in the first chapter",
			change: map[string]string{"chapters/01-first.md": fixture()["chapters/01-first.md"] + "\n::: diff\n"},
			want:   []string{`chapters/01-first.md:18: diff needs a previous chapter's program, and chapters/01-first.md is the first`},
		},
		{
			name:   "no front matter",
			change: map[string]string{"chapters/02-second.md": "# Second\n"},
			want:   []string{`chapters/02-second.md:1: missing front matter: a chapter starts with a line "---", then title:, summary: and program:, then "---"`},
		},
		{
			name:   "front matter not closed",
			change: map[string]string{"chapters/02-second.md": "---\ntitle: Second\n"},
			want:   []string{`chapters/02-second.md:1: front matter is not closed: no "---" line after it`},
		},
		{
			name: "bad front matter",
			change: map[string]string{"chapters/02-second.md": strings.Replace(fixture()["chapters/02-second.md"],
				"summary: The second step.", "summary The second step.\ntitle: Again\nauthor: me", 1)},
			want: []string{
				`chapters/02-second.md:1: front matter has no summary:`,
				`chapters/02-second.md:3: front matter line must be "key: value", got "summary The second step."`,
				`chapters/02-second.md:4: front matter key "title" is repeated (first on line 2)`,
				`chapters/02-second.md:5: unknown front matter key "author" (known: title, summary, program)`,
			},
		},
		{
			name:   "program of another chapter",
			change: map[string]string{"chapters/02-second.md": strings.Replace(fixture()["chapters/02-second.md"], "program: code/02-second", "program: code/01-first", 1)},
			want:   []string{`chapters/02-second.md:4: program must be code/02-second, the chapter's own program directory; got "code/01-first"`},
		},
		{
			name:   "program without tests",
			change: map[string]string{"code/02-second/main_test.go": ""},
			want:   []string{`chapters/02-second.md: code/02-second has no _test.go file: every program the book shows is tested`},
		},
		{
			name:   "duplicate chapter number",
			change: map[string]string{"chapters/02-again.md": "---\ntitle: x\nsummary: y\nprogram: code/02-again\n---\n"},
			want: []string{
				`chapters/02-again.md: program directory code/02-again does not exist`,
				`chapters/02-second.md: chapter number 02 is also used by chapters/02-again.md`,
			},
		},
		{
			name:   "link to a missing anchor",
			change: map[string]string{"chapters/02-second.md": fixture()["chapters/02-second.md"] + "\nSee [the first](01-first.html#nowhere).\n"},
			want:   []string{`chapters/02-second.md: link on 02-second.html to 01-first.html#nowhere: no id "nowhere" on 01-first.html`},
		},
		{
			name:   "link to a missing page",
			change: map[string]string{"chapters/02-second.md": fixture()["chapters/02-second.md"] + "\nSee [the third](03-third.html).\n"},
			want:   []string{`chapters/02-second.md: link on 02-second.html to 03-third.html: no such page`},
		},
		{
			name:   "image from outside",
			change: map[string]string{"chapters/02-second.md": fixture()["chapters/02-second.md"] + "\n![a cat](https://example.com/cat.png)\n"},
			want:   []string{`chapters/02-second.md: img src on 02-second.html loads https://example.com/cat.png from outside the site`},
		},
		{
			name:   "id used twice",
			change: map[string]string{"chapters/figures/01-pic.svg": `<svg xmlns="http://www.w3.org/2000/svg"><title>t</title><g id="dot"/><g id="dot"/></svg>`},
			want:   []string{`chapters/01-first.md: id "dot" is used twice on 01-first.html`},
		},
		{
			name:   "a page with a listing",
			change: map[string]string{"chapters/about.md": "---\ntitle: About\nsummary: x\n---\n\n::: listing main.go\n"},
			want:   []string{`chapters/about.md:6: listing shows a chapter's program; chapters/about.md is not a chapter`},
		},
		{
			name:   "a page with a program",
			change: map[string]string{"chapters/about.md": "---\ntitle: About\nsummary: x\nprogram: code/about\n---\n"},
			want:   []string{`chapters/about.md:4: a page that is not a chapter has no program`},
		},
		{
			name: "experiment named twice",
			change: map[string]string{"chapters/02-second.md": fixture()["chapters/02-second.md"] +
				"\n```sh experiment=run\ngo run ./code/02-second\n```\n\n1. A list:\n   - nested:\n\n     ```sh experiment=run\n     ss -tln\n     ```\n"},
			want: []string{`chapters/02-second.md:21: experiment=run is also the name of the block on line 14: each experiment of a chapter has its own name`},
		},
		{
			name: "experiment marked wrong",
			change: map[string]string{"chapters/02-second.md": fixture()["chapters/02-second.md"] +
				"\n```bash experiment=run\nx\n```\n\n```sh experiment=\"two words\"\ny\n```\n"},
			want: []string{
				"chapters/02-second.md:14: a command the tests run is marked ```sh experiment=NAME (NAME: letters, digits, - and _), got ```bash experiment=run",
				"chapters/02-second.md:18: a command the tests run is marked ```sh experiment=NAME (NAME: letters, digits, - and _), got ```sh experiment=\"two words\"",
			},
		},
		{
			name:   "bad file name",
			change: map[string]string{"chapters/3-third.md": "x"},
			want:   []string{`chapters/3-third.md: a chapter's file name must be NN-slug.md (two digits, then lower-case words joined by -); a page that is not a chapter is slug.md`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.change, tt.want) })
	}
}

// wantErrors changes the fixture (a file's new text, or "" to remove the
// file), renders it, and checks that the build prints exactly want.
func wantErrors(t *testing.T, change map[string]string, want []string) {
	t.Helper()
	files := fixture()
	for name, text := range change {
		if text == "" {
			delete(files, name)
		} else {
			files[name] = text
		}
	}
	_, err := Render(writeBook(t, files))
	if err == nil {
		t.Fatalf("no error; want:\n%s", strings.Join(want, "\n"))
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Errorf("errors:\n%s\nwant:\n%s", got, want)
	}
}

// A page that is not a chapter (instructors.md) is rendered, linked from
// the index, and can show the table of every chapter's exercises.
func TestPage(t *testing.T) {
	files := fixture()
	files["chapters/01-first.md"] += "\n## Exercises\n\n1. **Say hello.** Print hello.\n2. **Say it twice.** Twice.\n"
	files["code/01-first/grade/grade_test.go"] = "//go:build grade\n\npackage main\n\nfunc TestExercise2Twice(t *testing.T) {}\n"
	files["chapters/instructors.md"] = "---\ntitle: For instructors\nsummary: How to teach with it.\n---\n\n::: exercises\n"
	site, err := Render(writeBook(t, files))
	if err != nil {
		t.Fatal(err)
	}
	page := string(site["instructors.html"])
	for _, want := range []string{
		`<td><a href="01-first.html#exercises">1. First</a></td><td>1. Say hello</td><td>hand</td>`,
		`<td><a href="01-first.html#exercises">1. First</a></td><td>2. Say it twice</td><td><code>make exercise CH=01</code></td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("instructors.html lacks %s", want)
		}
	}
	if !strings.Contains(string(site["index.html"]), `<a href="instructors.html">For instructors</a>`) {
		t.Error("the index does not link to the page")
	}
	// Every page's sidebar links to it, after the chapters.
	sidebar := regexp.MustCompile(`(?s)<nav class="toc".*?</nav>`)
	for name, data := range site {
		if !strings.HasSuffix(name, ".html") {
			continue
		}
		root := strings.Repeat("../", strings.Count(name, "/"))
		want := `<ol class="pages">` + "\n" + `<li><a href="` + root + `instructors.html">For instructors</a></li>`
		if name == "instructors.html" {
			want = `<ol class="pages">` + "\n" + `<li class="current"><a href="instructors.html" aria-current="page">For instructors</a></li>`
		}
		if nav := sidebar.FindString(string(data)); !strings.Contains(nav, want) {
			t.Errorf("the sidebar of %s lacks %s:\n%s", name, want, nav)
		}
	}
}

// Each case breaks chapters/parts.md (or the chapters it groups) in one way
// and names every error the build must print.
func TestPartErrors(t *testing.T) {
	parts := fixture()["chapters/parts.md"]
	edit := func(old, new string) map[string]string {
		if !strings.Contains(parts, old) {
			t.Fatalf("the fixture's parts.md has no %q", old)
		}
		return map[string]string{"chapters/parts.md": strings.Replace(parts, old, new, 1)}
	}
	tests := []struct {
		name   string
		change map[string]string // file -> new text ("" removes the file)
		want   []string
	}{
		{
			name:   "no parts file",
			change: map[string]string{"chapters/parts.md": ""},
			want:   []string{`chapters/parts.md: not found: it declares the book's parts ("## Part I: Title", then chapters: and summary:), and every chapter is in one`},
		},
		{
			name:   "no parts",
			change: map[string]string{"chapters/parts.md": "# The parts of the book\n\nNone yet.\n"},
			want:   []string{`chapters/parts.md: no parts: each part is a heading "## Part I: Title", then its chapters: and summary: lines`},
		},
		{
			name:   "a part with no chapter",
			change: edit("chapters: 03-04\n", ""),
			want:   []string{`chapters/parts.md:11: Part II names no chapters: give its chapters as chapters: FIRST-LAST (such as chapters: 10-12)`},
		},
		{
			name:   "a part with no summary",
			change: edit("summary: What comes next.\n", ""),
			want:   []string{`chapters/parts.md:11: Part II has no summary: give one line on what it covers, as summary: ...`},
		},
		{
			name: "a chapter in no part",
			change: map[string]string{
				"chapters/05-fifth.md":       "---\ntitle: Fifth\nsummary: The fifth step.\nprogram: code/05-fifth\n---\nProse.\n",
				"code/05-fifth/main.go":      "package main\n\nfunc main() {}\n",
				"code/05-fifth/main_test.go": "package main\n",
			},
			want: []string{`chapters/parts.md:13: chapter 05 (chapters/05-fifth.md) is in no part: the last part, Part II, ends at 04`},
		},
		{
			name:   "parts numbered out of order",
			change: edit("## Part II:", "## Part III:"),
			want:   []string{`chapters/parts.md:11: Part III is out of order: the parts are numbered I, II, III, ... in book order, and this is Part II`},
		},
		{
			name:   "parts out of book order",
			change: edit("chapters: 01-02", "chapters: 03-04"),
			want: []string{
				`chapters/parts.md:7: Part I starts at chapter 03: the first part starts at 01`,
				`chapters/parts.md:13: Part II starts at chapter 03, but Part I ends at 04: it must start at 05 (every chapter is in one part, the parts in book order)`,
			},
		},
		{
			name:   "a gap between parts",
			change: edit("chapters: 03-04", "chapters: 04-05"),
			want:   []string{`chapters/parts.md:13: Part II starts at chapter 04, but Part I ends at 02: it must start at 03 (every chapter is in one part, the parts in book order)`},
		},
		{
			name:   "a chapter that cannot exist",
			change: edit("chapters: 01-02", "chapters: 00-02"),
			want:   []string{`chapters/parts.md:7: there is no chapter 00: chapters are numbered from 01`},
		},
		{
			name:   "chapters backwards",
			change: edit("chapters: 01-02", "chapters: 02-01"),
			want:   []string{`chapters/parts.md:7: chapters: 02-01 runs backwards: FIRST-LAST, the first chapter first`},
		},
		{
			name:   "chapters not numbers",
			change: edit("chapters: 01-02", "chapters: 1-2"),
			want:   []string{`chapters/parts.md:7: chapters: is FIRST-LAST in two-digit chapter numbers (chapters: 01-09), or one chapter (chapters: 20); got "1-2"`},
		},
		{
			name:   "unknown key",
			change: edit("summary: Where", "title: First\nsummary: Where"),
			want:   []string{`chapters/parts.md:9: unknown key "title" in a part (known: chapters, summary); the part's title is in its heading`},
		},
		{
			name:   "repeated key",
			change: edit("summary: Where the book begins.", "chapters: 01-02\nsummary: Where the book begins."),
			want:   []string{`chapters/parts.md:9: key "chapters" is repeated (first on line 7)`},
		},
		{
			name:   "bad heading",
			change: edit("## Part II: Later steps", "## Part 2: Later steps"),
			want:   []string{`chapters/parts.md:11: a part's heading is "## Part I: Title" (a Roman numeral, a colon, the title), got "## Part 2: Later steps"`},
		},
		{
			name:   "prose in a part",
			change: edit("summary: Where the book begins.\n", "summary: Where the book begins.\nIt is long.\n"),
			want:   []string{`chapters/parts.md:10: after its heading a part has only "chapters: FIRST-LAST" and "summary: ..." lines, got "It is long."`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErrors(t, tt.change, tt.want) })
	}
}

// The index shows every part with what it covers, and says which chapters
// of a part are still to come; the sidebar, the single-page edition and
// the chapters' own pages show the parts that have chapters; the search
// finds a part by its name.
func TestParts(t *testing.T) {
	site := renderFixture(t)
	index := string(site["index.html"])
	for _, re := range []string{
		`(?s)<h2 id="contents">Contents</h2>\s*<div class="part">\s*<h3 id="part-i">Part I: The first steps</h3>\s*<p class="part-summary">Where the book begins.</p>\s*<ol class="contents">\s*<li><a href="01-first.html">.*<li><a href="02-second.html">.*</ol>\s*</div>`,
		// Not one chapter of Part II is written: its heading says so.
		`(?s)<div class="part coming">\s*<h3 id="part-ii">Part II: Later steps</h3>\s*<p class="part-summary">What comes next.</p>\s*<p class="coming">Coming: chapters 3–4.</p>\s*</div>`,
	} {
		if !regexp.MustCompile(re).MatchString(index) {
			t.Errorf("index.html does not match %s:\n%s", re, index)
		}
	}
	sidebar := regexp.MustCompile(`(?s)<nav class="toc".*?</nav>`)
	part1 := regexp.MustCompile(`(?s)<ol class="parts">\s*<li class="part"><span class="part-name">Part I: The first steps</span>\s*<ol>\s*<li[^>]*><a href="(\.\./)?01-first.html"[^>]*><span class="num">1</span> First</a></li>\s*<li[^>]*><a href="(\.\./)?02-second.html"`)
	for name, data := range site {
		if !strings.HasSuffix(name, ".html") {
			continue
		}
		nav := sidebar.FindString(string(data))
		if !part1.MatchString(nav) {
			t.Errorf("the sidebar of %s does not show Part I and its chapters:\n%s", name, nav)
		}
		if strings.Contains(nav, "Part II") {
			t.Errorf("the sidebar of %s shows Part II, which has no chapter:\n%s", name, nav)
		}
	}
	if page := string(site["01-first.html"]); !strings.Contains(page, `<p class="kicker">Part I · Chapter 1</p>`) {
		t.Error("01-first.html does not say it is in Part I")
	}
	book := string(site["book.html"])
	for _, re := range []string{
		`(?s)<ol class="contents">\s*<li class="part"><a href="#part-i">Part I: The first steps</a>\s*<ol>\s*<li><a href="#01-first">.*<li><a href="#02-second">`,
		`(?s)<section class="part" id="part-i">\s*<p class="kicker">Part I</p>\s*<h1>The first steps</h1>\s*<p class="lead">Where the book begins.</p>\s*</section>\s*<section class="chapter" id="01-first">`,
	} {
		if !regexp.MustCompile(re).MatchString(book) {
			t.Errorf("book.html does not match %s", re)
		}
	}
	if strings.Contains(book, "Part II") {
		t.Error("book.html shows Part II, which has no chapter")
	}
	search := string(site["assets/search-index.js"])
	for _, want := range []string{
		`{"p":"index.html","a":"part-i","t":"Part I: The first steps","c":"Contents","x":"Where the book begins.","w":" part i the first steps where book begins "}`,
		`{"p":"index.html","a":"part-ii","t":"Part II: Later steps","c":"Contents","x":"What comes next. Coming: chapters 3–4.","w":" part ii later steps what comes next coming chapters 3 4 "}`,
	} {
		if !strings.Contains(search, want) {
			t.Errorf("the search index lacks %s", want)
		}
	}

	// A part with some chapters written shows them, in the sidebar too,
	// and says which are still to come.
	files := fixture()
	files["chapters/03-third.md"] = "---\ntitle: Third\nsummary: The third step.\nprogram: code/03-third\n---\nProse.\n"
	files["code/03-third/main.go"] = "package main\n\nfunc main() {}\n"
	files["code/03-third/main_test.go"] = "package main\n"
	site, err := Render(writeBook(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?s)<div class="part">\s*<h3 id="part-ii">Part II: Later steps</h3>\s*<p class="part-summary">What comes next.</p>\s*<ol class="contents">\s*<li><a href="03-third.html">.*</ol>\s*<p class="coming">Coming: chapter 4.</p>\s*</div>`).Match(site["index.html"]) {
		t.Errorf("index.html does not show Part II with chapter 3 and chapter 4 to come:\n%s", site["index.html"])
	}
	if nav := sidebar.FindString(string(site["03-third.html"])); !strings.Contains(nav, `<span class="part-name">Part II: Later steps</span>`) {
		t.Errorf("the sidebar does not show Part II once it has a chapter:\n%s", nav)
	}
}

// A broken chapter, or a hostile figure, must leave the site that was
// there untouched, and leave no temporary directory behind.
func TestFailedBuildKeepsSite(t *testing.T) {
	for name, change := range map[string]map[string]string{
		"broken chapter": {"chapters/01-first.md": strings.Replace(fixture()["chapters/01-first.md"], "region=hello", "region=gone", 1)},
		"hostile figure": {"chapters/figures/01-pic.svg": `<svg xmlns="http://www.w3.org/2000/svg"><title>t</title><script>alert(1)</script></svg>`},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeBook(t, fixture())
			site := filepath.Join(root, "site")
			if err := Build(root, site); err != nil {
				t.Fatal(err)
			}
			before, err := readTree(site)
			if err != nil {
				t.Fatal(err)
			}
			for file, text := range change {
				if err := os.WriteFile(filepath.Join(root, file), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Build(root, site); err == nil {
				t.Fatal("the build succeeded")
			}
			after, err := readTree(site)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("site has %d files after a failed build, %d before", len(after), len(before))
			}
			for name, data := range before {
				if string(after[name]) != string(data) {
					t.Errorf("%s changed after a failed build", name)
				}
			}
			entries, _ := os.ReadDir(root)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "site.") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	root := writeBook(t, fixture())
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	if err := Build(root, a); err != nil {
		t.Fatal(err)
	}
	if err := Build(root, b); err != nil {
		t.Fatal(err)
	}
	if d, err := Diff(a, b); err != nil || d != "" {
		t.Fatalf("two builds differ: %s %v", d, err)
	}
}

func TestListing(t *testing.T) {
	files := renderFixture(t)
	page := string(files["01-first.html"])
	for _, want := range []string{
		// The region's one line, with its real line number, linking to the
		// same line on the program's page.
		`<span class="line" id="listing1-L7"><a class="ln" href="code/01-first.html#main.go-L7" aria-hidden="true" tabindex="-1">7</a>`,
		`<a href="code/01-first.html#main.go">code/01-first/main.go</a><span class="where">lines 7–7</span>`,
		`<span class="prompt">$ </span><span class="command">go run ./code/01-first</span>`,
		`<figcaption>Figure 1.1. A picture</figcaption>`,
		`Tested by:</strong> <a href="code/01-first-tests.html#main_test.go">code/01-first/main_test.go</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("chapter page lacks %s", want)
		}
	}
	if strings.Contains(page, "region hello") || strings.Contains(page, "BOOKDIRECTIVE") {
		t.Error("a region marker or a placeholder reached the page")
	}
	if !strings.Contains(string(files["code/01-first-tests.html"]), `<section class="file" id="main_test.go">`) {
		t.Error("the tests page lacks main_test.go")
	}
	// A listing of a test file links to the tests page, where it is.
	if !strings.Contains(page, `<a href="code/01-first-tests.html#main_test.go">code/01-first/main_test.go</a>`) ||
		!strings.Contains(page, `href="code/01-first-tests.html#main_test.go-L3"`) {
		t.Error("a listing of a test file does not link to the tests page")
	}
	program := string(files["code/01-first.html"])
	if !strings.Contains(program, `<span class="line" id="main.go-L5"><a class="ln" href="#main.go-L5"`) {
		t.Error("program page lacks line anchors")
	}
	if strings.Contains(program, "endregion") {
		t.Error("a region marker reached the program page")
	}
	// A directive inside fenced code is shown as code, not run.
	if !regexp.MustCompile(`lang-go" tabindex="0"><code>.*listing.*not.*directive`).Match(files["02-second.html"]) {
		t.Error("fenced directive was not left as code")
	}
}

// A command the tests run (booktest.Experiment) is shown as any sh block:
// highlighted, its experiment= name nowhere on the page. The same name in
// two chapters is fine.
func TestExperimentBlock(t *testing.T) {
	files := fixture()
	block := "\n```sh experiment=run\ngo run ./code/01-first &\n```\n"
	files["chapters/01-first.md"] += block
	files["chapters/02-second.md"] += block
	site, err := Render(writeBook(t, files))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"01-first.html", "02-second.html", "book.html"} {
		page := string(site[name])
		if !strings.Contains(page, `<pre class="chroma code lang-sh" tabindex="0"><code><span class="line"><span class="cl">go run ./code/01-first `) {
			t.Errorf("%s does not show the experiment as an sh block", name)
		}
		if strings.Contains(page, "experiment=") {
			t.Errorf("%s shows experiment=", name)
		}
	}
	if strings.Contains(string(site["assets/search-index.js"]), "experiment=") {
		t.Error("the search index has experiment=")
	}
}

func TestDiffListing(t *testing.T) {
	files := renderFixture(t)
	page := string(files["02-second.html"])
	for _, re := range []string{
		`<span class="added">\+1</span> <span class="removed">−1</span>`,
		`class="line del">.*hello&#34;`,
		`class="line ins">.*hello, again`,
	} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("diff lacks %s", re)
		}
	}
}

// A chapter that builds on an earlier chapter than the one before it says
// so with from=, and its diff compares with that chapter's program.
func TestDiffFrom(t *testing.T) {
	files := fixture()
	files["chapters/03-third.md"] = "---\ntitle: Third\nsummary: The third step.\nprogram: code/03-third\n---\nFrom the first:\n\n::: diff from=01-first\n"
	files["code/03-third/main.go"] = strings.Replace(files["code/01-first/main.go"], `"hello"`, `"hello, third"`, 1)
	files["code/03-third/main_test.go"] = "package main\n"
	got, err := Render(writeBook(t, files))
	if err != nil {
		t.Fatal(err)
	}
	page := string(got["03-third.html"])
	for _, re := range []string{
		`From <a href="code/01-first.html#main.go">code/01-first/main.go</a>`,
		`class="line del">.*hello&#34;`,
		`class="line ins">.*hello, third`,
	} {
		if !regexp.MustCompile(re).MatchString(page) {
			t.Errorf("03-third.html: the diff from 01-first lacks %s", re)
		}
	}

	files["chapters/03-third.md"] = strings.Replace(files["chapters/03-third.md"], "from=01-first", "from=04-later", 1)
	_, err = Render(writeBook(t, files))
	want := `chapters/03-third.md:8: diff from=04-later: no earlier chapter is named so`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a diff from a chapter that is not earlier: got %v, want an error containing %q", err, want)
	}
}

// The site makes no request outside itself: no script, style, image or
// font from another host.
func TestNoExternalRequests(t *testing.T) {
	files := renderFixture(t)
	external := regexp.MustCompile(`(?i)(src=|<link[^>]*href=|url\(|@import)\s*["']?(https?:)?//`)
	for name, data := range files {
		if m := external.Find(data); m != nil {
			t.Errorf("%s requests an outside resource: %s", name, m)
		}
	}
}

// The committed site/ is what the committed sources build (built once for
// this test and the browser tests: realSite).
func TestSiteIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	fresh, _ := realSite(t)
	d, err := Diff(filepath.Join(root, "site"), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if d != "" {
		t.Fatalf("site/ is stale: %s\nrun: make site", d)
	}
}

// BenchmarkBuild renders the whole book, as make site does.
func BenchmarkBuild(b *testing.B) {
	root := filepath.Join("..", "..")
	for b.Loop() {
		if _, err := Render(root); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild20 renders a book of 20 chapters made by repeating the real
// ones, the size the 1-second target is set for.
func BenchmarkBuild20(b *testing.B) {
	root := filepath.Join("..", "..")
	real, err := Load(root)
	if err != nil {
		b.Fatal(err)
	}
	files := map[string]string{}
	copyDir := func(from, to string) {
		entries, err := os.ReadDir(filepath.Join(root, from))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(root, from, e.Name()))
			if err != nil {
				b.Fatal(err)
			}
			files[to+"/"+e.Name()] = string(data)
		}
	}
	copyDir("chapters/figures", "chapters/figures")
	parts, err := os.ReadFile(filepath.Join(root, "chapters", "parts.md"))
	if err != nil {
		b.Fatal(err)
	}
	files["chapters/parts.md"] = string(parts) // the book's plan has 20 chapters
	for i := 0; i < 20; i++ {
		ch := real.Chapters[i%len(real.Chapters)]
		slug := fmt.Sprintf("%02d%s", i+1, ch.Slug[2:])
		data, err := os.ReadFile(filepath.Join(root, ch.File))
		if err != nil {
			b.Fatal(err)
		}
		text := strings.Replace(string(data), "program: "+ch.Program, "program: code/"+slug, 1)
		if i >= len(real.Chapters) {
			// A figure shown twice would repeat its ids in book.html.
			text = regexp.MustCompile(`(?m)^::: figure .*$`).ReplaceAllString(text, "")
		}
		files["chapters/"+slug+".md"] = text
		copyDir(ch.Program, "code/"+slug)
		copyDir(ch.Program+"/testdata", "code/"+slug+"/testdata")
	}
	book := writeBook(b, files)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Render(book); err != nil {
			b.Fatal(err)
		}
	}
}

// No chapter's page weighs more than 300 KB with the assets it loads
// (stylesheets, scripts, icon), nor a program's page more than 512 KB. The
// search index loads only when the reader searches; it is held to the
// 300 KB limit on its own.
func TestPageWeight(t *testing.T) {
	const limit, programLimit = 300 << 10, 512 << 10
	files, err := Render(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	asset := regexp.MustCompile(`<(?:link|script)[^>]* (?:href|src)="([^"]+)"`)
	for name, data := range files {
		if !strings.HasSuffix(name, ".html") || name == "book.html" {
			continue // the single-page edition is the whole book by design
		}
		total := len(data)
		for _, m := range asset.FindAllSubmatch(data, -1) {
			ref := path.Join(path.Dir(name), string(m[1]))
			a, ok := files[ref]
			if !ok {
				t.Errorf("%s loads %s, which the site does not have", name, ref)
			}
			total += len(a)
		}
		// A program's pages are reference, not reading: its whole source,
		// or every test of it, highlighted, each line a link, where a
		// reader looks up a line a chapter cites or the proof of a claim.
		// They grow with the program (chapter 19's is 1,450 lines, about
		// 135 bytes of markup each before the code), so they may weigh
		// more, not without bound; a chapter's page keeps the tighter one.
		budget := limit
		if strings.HasPrefix(name, "code/") {
			budget = programLimit
		}
		if total > budget {
			t.Errorf("%s weighs %d KB with its assets; the limit is %d KB", name, total>>10, budget>>10)
		}
	}
	if n := len(files["assets/search-index.js"]); n > limit {
		t.Errorf("the search index weighs %d KB; the limit is %d KB", n>>10, limit>>10)
	}
}
