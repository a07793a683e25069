package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const bookTitle = "From socket() to Server"

var (
	chapterNameRE = regexp.MustCompile(`^(\d\d)-[a-z0-9]+(-[a-z0-9]+)*\.md$`)
	pageNameRE    = regexp.MustCompile(`^[a-z]+(-[a-z]+)*\.md$`)
)

// Load reads the book in root (chapters/ and code/) and checks every fact
// the site will show. It returns all the problems it finds, not the first.
func Load(root string) (*Book, error) {
	srcs, err := newSources(root)
	if err != nil {
		return nil, err
	}
	b := &Book{Title: bookTitle, sources: srcs}
	var errs Errors
	// chapters/ itself may be a link: one message, not one per chapter.
	dir, err := srcs.resolve("chapters")
	var outside *Error
	if errors.As(err, &outside) {
		return nil, Errors{outside}
	}
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byNum := map[int]string{}
	for _, e := range entries { // ReadDir sorts by name: book order
		name := e.Name()
		file := "chapters/" + name
		if e.IsDir() {
			if name != "figures" {
				errs.add(Pos{File: file}, "unexpected directory: chapters/ holds NN-slug.md files and figures/")
			}
			continue
		}
		if file == partsFile {
			continue // read once the chapters are known
		}
		m := chapterNameRE.FindStringSubmatch(name)
		if m == nil && pageNameRE.MatchString(name) {
			// A page that is not a chapter, such as instructors.md.
			data, ok := b.read(file, Pos{File: file}, "cannot be read", &errs)
			if !ok {
				continue
			}
			pg := &Chapter{Slug: strings.TrimSuffix(name, ".md"), File: file}
			b.loadChapter(pg, data, &errs)
			b.Pages = append(b.Pages, pg)
			continue
		}
		if m == nil {
			errs.add(Pos{File: file}, "a chapter's file name must be NN-slug.md (two digits, then lower-case words joined by -); a page that is not a chapter is slug.md")
			continue
		}
		num, _ := strconv.Atoi(m[1])
		if num == 0 {
			// 0 is how a page that is not a chapter is told apart.
			errs.add(Pos{File: file}, "chapter numbers start at 01")
			continue
		}
		if other, dup := byNum[num]; dup {
			errs.add(Pos{File: file}, "chapter number %s is also used by %s", m[1], other)
			continue
		}
		byNum[num] = file
		data, ok := b.read(file, Pos{File: file}, "cannot be read", &errs)
		if !ok {
			continue
		}
		ch := &Chapter{Num: num, Slug: strings.TrimSuffix(name, ".md"), File: file}
		b.loadChapter(ch, data, &errs)
		b.Chapters = append(b.Chapters, ch)
	}
	if len(b.Chapters) == 0 && len(errs) == 0 {
		errs.add(Pos{File: "chapters"}, "no chapters")
	}
	for i, ch := range b.Chapters {
		if i > 0 {
			ch.Prev = b.Chapters[i-1]
			b.Chapters[i-1].Next = ch
		}
	}
	b.loadParts(&errs)
	// Directives are resolved once every chapter is known: a diff needs the
	// previous chapter's program.
	for _, ch := range append(append([]*Chapter{}, b.Chapters...), b.Pages...) {
		for _, blk := range ch.Blocks {
			b.resolve(ch, blk, &errs)
		}
	}
	return b, errs.err()
}

// read reads a chapter, a transcript or a figure. A file the site must not
// show is reported at the file; any other failure, at pos, as missing.
func (b *Book) read(file string, pos Pos, missing string, errs *Errors) (string, bool) {
	data, err := b.sources.read(file)
	var e *Error
	switch {
	case errors.As(err, &e):
		errs.once(e)
		return "", false
	case err != nil:
		errs.add(pos, "%s", missing)
		return "", false
	}
	return string(data), true
}

// indentedDirectiveRE matches a directive after indentation, list markers
// or quote markers: Markdown would show it as text.
var indentedDirectiveRE = regexp.MustCompile(`^(?:[ \t]|>|[-*+][ \t]|\d{1,9}[.)][ \t])+:::`)

// loadChapter parses the front matter and the directives of one chapter.
func (b *Book) loadChapter(ch *Chapter, text string, errs *Errors) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	bodyStart := parseFrontMatter(ch, lines, errs)
	if bodyStart < 0 {
		return
	}
	if ch.Program != "" {
		b.loadProgram(ch, errs)
	}
	var body strings.Builder
	fence, fenceLine := "", 0
	experiments := map[string]int{} // name: line
	for i := bodyStart; i < len(lines); i++ {
		line := lines[i]
		pos := Pos{ch.File, i + 1}
		if fence == "" {
			// At any indentation: a fence in a list item is indented further.
			checkExperiment(pos, infoString(line), experiments, errs)
		}
		if f := fenceOf(line); f != "" {
			switch {
			case fence == "":
				fence, fenceLine = f, i+1
			case f[0] == fence[0] && len(f) >= len(fence) && strings.Trim(strings.TrimSpace(line), f[:1]) == "":
				fence = "" // a closing fence has nothing after it
			}
		}
		switch {
		case fence != "":
		case strings.HasPrefix(line, ":::"):
			if blk := parseDirective(pos, line, errs); blk != nil {
				// A paragraph of its own, replaced after rendering; its
				// three lines are all the directive's line.
				fmt.Fprintf(&body, "\n%s\n\n", placeholder(len(ch.Blocks)))
				ch.bodyLines = append(ch.bodyLines, i+1, i+1, i+1)
				ch.Blocks = append(ch.Blocks, blk)
				continue
			}
		case indentedDirectiveRE.MatchString(line):
			errs.add(pos, "a directive starts at the beginning of its line: indented, or in a list item or a quote, it would be shown as text")
		}
		body.WriteString(line + "\n")
		ch.bodyLines = append(ch.bodyLines, i+1)
	}
	if fence != "" {
		// Markdown would show the rest of the chapter as code.
		errs.add(Pos{ch.File, fenceLine}, "code block opened with %s is not closed", fence)
	}
	ch.Body = body.String()
}

// experimentRE is the info string of a command a test runs as written
// (booktest.Experiment): "sh experiment=NAME". The page shows it as sh.
var experimentRE = regexp.MustCompile(`^sh\s+experiment=([A-Za-z0-9_-]+)$`)

// infoString is the info string of a line that opens a fence, or "".
func infoString(line string) string {
	t := strings.TrimLeft(line, " ")
	for _, c := range []string{"`", "~"} {
		if n := len(t) - len(strings.TrimLeft(t, c)); n >= 3 {
			return strings.TrimSpace(t[n:])
		}
	}
	return ""
}

// checkExperiment checks the info string of a fence: one that names an
// experiment must be exactly "sh experiment=NAME", with a name no other
// block of the chapter has.
func checkExperiment(pos Pos, info string, seen map[string]int, errs *Errors) {
	if !strings.Contains(info, "experiment=") {
		return
	}
	m := experimentRE.FindStringSubmatch(info)
	if m == nil {
		errs.add(pos, "a command the tests run is marked ```sh experiment=NAME (NAME: letters, digits, - and _), got ```%s", info)
		return
	}
	if first, dup := seen[m[1]]; dup {
		errs.add(pos, "experiment=%s is also the name of the block on line %d: each experiment of a chapter has its own name", m[1], first)
		return
	}
	seen[m[1]] = pos.Line
}

// fenceOf returns the fence a line opens or closes (``` or ~~~, possibly
// longer), or "".
func fenceOf(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return ""
	}
	for _, c := range []string{"`", "~"} {
		n := len(t) - len(strings.TrimLeft(t, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

func placeholder(i int) string { return fmt.Sprintf("BOOKDIRECTIVE%04d", i) }

// parseFrontMatter reads the block between the first two "---" lines and
// returns the index of the first line after it, or -1 if there is none.
func parseFrontMatter(ch *Chapter, lines []string, errs *Errors) int {
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "---" {
		if ch.isPage() {
			errs.add(Pos{ch.File, 1}, "missing front matter: a page starts with a line \"---\", then title: and summary:, then \"---\"")
		} else {
			errs.add(Pos{ch.File, 1}, "missing front matter: a chapter starts with a line \"---\", then title:, summary: and program:, then \"---\"")
		}
		return -1
	}
	end := slices.IndexFunc(lines[1:], func(l string) bool { return strings.TrimSpace(l) == "---" })
	if end < 0 {
		// One message, not one for each line of the chapter.
		errs.add(Pos{ch.File, 1}, "front matter is not closed: no \"---\" line after it")
		return -1
	}
	end++ // an index into lines
	seen := map[string]int{}
	malformed := false
	for i := 1; i < end; i++ {
		line := strings.TrimSpace(lines[i])
		pos := Pos{ch.File, i + 1}
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || value == "" || !frontKeyRE.MatchString(key):
			// After a line that is not "key: value" the closing "---" is
			// probably missing and this is the chapter's text: say so once.
			if !malformed {
				errs.add(pos, "front matter line must be \"key: value\", got %q", line)
			}
			malformed = true
			continue
		case seen[key] > 0:
			errs.add(pos, "front matter key %q is repeated (first on line %d)", key, seen[key])
			continue
		}
		seen[key] = i + 1
		switch key {
		case "title":
			ch.Title = value
		case "summary":
			ch.Summary = value
		case "program":
			if ch.isPage() {
				errs.add(pos, "a page that is not a chapter has no program")
				continue
			}
			if want := "code/" + ch.Slug; value != want {
				errs.add(pos, "program must be %s, the chapter's own program directory; got %q", want, value)
				continue
			}
			ch.Program = value
		default:
			errs.add(pos, "unknown front matter key %q (known: title, summary, program)", key)
		}
	}
	for _, key := range []string{"title", "summary", "program"} {
		if seen[key] == 0 && !(key == "program" && ch.isPage()) {
			errs.add(Pos{ch.File, 1}, "front matter has no %s:", key)
		}
	}
	return end + 1
}

// frontKeyRE is what a front matter key looks like; "What changed (see
// https" is a line of prose.
var frontKeyRE = regexp.MustCompile(`^[a-z]+$`)

// loadProgram lists the program's Go files and checks it has a main.go and
// a test. The files are those go build reads: not _x.go, .x.go or what is
// in testdata/ or another directory. Each is read now, so that a file the
// site must not show is reported once, at the file, and left out.
func (b *Book) loadProgram(ch *Chapter, errs *Errors) {
	pos := Pos{ch.File, 0}
	dir, err := b.sources.resolve(ch.Program)
	if err == nil {
		var entries []os.DirEntry
		if entries, err = os.ReadDir(dir); err == nil {
			b.listProgram(ch, entries, errs)
			return
		}
	}
	var outside *Error
	if errors.As(err, &outside) {
		errs.once(outside)
	} else {
		errs.add(pos, "program directory %s does not exist", ch.Program)
	}
	ch.Program = ""
}

// listProgram sets ch.Files and ch.Tests from the program directory's
// entries.
func (b *Book) listProgram(ch *Chapter, entries []os.DirEntry, errs *Errors) {
	pos := Pos{ch.File, 0}
	var code, tests []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
			continue
		}
		if strings.HasSuffix(name, "_test.go") {
			tests = append(tests, name)
		} else {
			code = append(code, name)
		}
	}
	// main.go first: it is the program; then the rest, then the tests.
	sort.SliceStable(code, func(i, j int) bool { return code[i] == "main.go" && code[j] != "main.go" })
	if len(code) == 0 || code[0] != "main.go" {
		errs.add(pos, "%s has no main.go", ch.Program)
	}
	if len(tests) == 0 {
		errs.add(pos, "%s has no _test.go file: every program the book shows is tested", ch.Program)
	}
	// A file the site must not show is reported, at the file, and left
	// out; it still counts as the main.go or the test the program has.
	unreadable := func(name string) bool {
		_, ok := b.source(Pos{File: ch.Program + "/" + name}, ch.Program+"/"+name, errs, false)
		return !ok
	}
	ch.Files = slices.DeleteFunc(append(code, tests...), unreadable)
	ch.Tests = slices.DeleteFunc(slices.Clone(ch.Files), func(name string) bool { return !strings.HasSuffix(name, "_test.go") })
}

// directive options each kind accepts, and how many words it takes.
var directives = map[string]struct {
	args    int
	options []string
}{
	"listing":    {1, []string{"region"}},
	"diff":       {0, []string{"file", "from"}},
	"transcript": {1, nil},
	"figure":     {1, []string{"caption"}},
	"exercises":  {0, nil},
}

// parseDirective reads "::: kind word key=value key="quoted value"".
func parseDirective(pos Pos, line string, errs *Errors) *Block {
	words, err := splitWords(strings.TrimPrefix(line, ":::"))
	if err != nil {
		errs.add(pos, "%v", err)
		return nil
	}
	if !strings.HasPrefix(line, "::: ") || len(words) == 0 {
		errs.add(pos, "a directive is \"::: KIND ARGUMENTS\" (KIND is listing, diff, transcript, figure or exercises)")
		return nil
	}
	kind := words[0]
	spec, ok := directives[kind]
	if !ok {
		errs.add(pos, "unknown directive %q (known: diff, exercises, figure, listing, transcript)", kind)
		return nil
	}
	blk := &Block{Pos: pos, Kind: kind}
	var args []string
	bad := false
	given := map[string]bool{}
	for _, w := range words[1:] {
		key, value, isOpt := strings.Cut(w, "=")
		if !isOpt {
			args = append(args, w)
			continue
		}
		if !slices.Contains(spec.options, key) {
			errs.add(pos, "unknown option %q for %s (known: %s)", key, kind, strings.Join(spec.options, ", "))
			bad = true
			continue
		}
		if given[key] {
			errs.add(pos, "option %s= is given twice", key)
			bad = true
			continue
		}
		given[key] = true
		if value == "" {
			errs.add(pos, "option %s= needs a value", key)
			bad = true
		}
		switch key {
		case "region":
			blk.Region = value
		case "file":
			blk.File = value
		case "caption":
			blk.Caption = value
		case "from":
			blk.From = value
		}
	}
	if len(args) != spec.args {
		errs.add(pos, "%s takes %d argument(s), got %d: %q", kind, spec.args, len(args), strings.Join(args, " "))
		return nil
	}
	if bad {
		return nil
	}
	if spec.args == 1 {
		blk.File = args[0]
	}
	if kind == "figure" && blk.Caption == "" {
		errs.add(pos, "figure needs caption=\"...\"")
		return nil
	}
	return blk
}

// splitWords splits s at spaces, keeping key="quoted value" together.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unclosed quote in directive")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// resolve checks that what a directive names exists, and records the
// paths it will show.
func (b *Book) resolve(ch *Chapter, blk *Block, errs *Errors) {
	switch {
	case blk.Kind == "exercises":
		return // made from the chapters when rendered
	case blk.Kind != "figure" && ch.isPage():
		errs.add(blk.Pos, "%s shows a chapter's program; %s is not a chapter", blk.Kind, ch.File)
		return
	case ch.Program == "" && !ch.isPage():
		return // already reported
	}
	local := func(name string) (string, bool) {
		clean := path.Clean(name)
		if path.IsAbs(clean) || strings.HasPrefix(clean, "..") {
			errs.add(blk.Pos, "%q is outside %s: a chapter shows its own program's files", name, ch.Program)
			return "", false
		}
		return ch.Program + "/" + clean, true
	}
	switch blk.Kind {
	case "listing":
		file, ok := local(blk.File)
		if !ok {
			return
		}
		src, ok := b.source(blk.Pos, file, errs, true)
		if !ok || !shown(blk, ch, strings.TrimPrefix(file, ch.Program+"/"), errs) {
			return
		}
		blk.File = file
		if blk.Region != "" {
			if _, found := src.regions[blk.Region]; !found {
				errs.add(blk.Pos, "region %q not found in %s", blk.Region, file)
			}
		}
	case "diff":
		name := blk.File
		if name == "" {
			name = "main.go"
		}
		file, ok := local(name)
		if !ok {
			return
		}
		base := ch.Prev
		if blk.From != "" {
			// A chapter may start from an earlier one than the chapter
			// just before it (chapter 10 builds on chapter 7's program).
			base = nil
			for p := ch.Prev; p != nil; p = p.Prev {
				if p.Slug == blk.From {
					base = p
				}
			}
			if base == nil {
				errs.add(blk.Pos, "diff from=%s: no earlier chapter is named so (give the slug of a chapter before %s, such as %s)", blk.From, ch.File, slugOr(ch.Prev))
				return
			}
		}
		switch {
		case base == nil:
			errs.add(blk.Pos, "diff needs a previous chapter's program, and %s is the first", ch.File)
			return
		case base.Program == "":
			return // the base chapter's own error is reported
		}
		name = path.Clean(name)
		old := base.Program + "/" + name
		_, newOK := b.source(blk.Pos, file, errs, true)
		_, oldOK := b.source(blk.Pos, old, errs, true)
		if !newOK || !oldOK || !shown(blk, ch, name, errs) || !shown(blk, base, name, errs) {
			return
		}
		blk.File, blk.Old, blk.Base = file, old, base
	case "transcript":
		if strings.ContainsAny(blk.File, "/\\") {
			errs.add(blk.Pos, "transcript takes a name, not a path: %q", blk.File)
			return
		}
		blk.File = ch.Program + "/testdata/" + blk.File + ".txt"
		data, ok := b.read(blk.File, blk.Pos, fmt.Sprintf("transcript %s not found (its test writes it: go test ./%s -update)", blk.File, ch.Program), errs)
		if !ok {
			return
		}
		panes, err := parseTranscript(data)
		var te *transcriptError
		if errors.As(err, &te) {
			errs.add(Pos{blk.File, te.Line}, "%s (its test writes it: go test ./%s -update)", te.Msg, ch.Program)
			return
		}
		blk.Panes = panes
	case "figure":
		if strings.ContainsAny(blk.File, "/\\") || !strings.HasSuffix(blk.File, ".svg") {
			errs.add(blk.Pos, "figure takes the name of an .svg file in chapters/figures/, got %q", blk.File)
			return
		}
		blk.File = "chapters/figures/" + blk.File
		data, ok := b.read(blk.File, blk.Pos, "figure "+blk.File+" not found", errs)
		if !ok {
			return
		}
		svg, svgErrs := checkSVG(blk.File, data)
		*errs = append(*errs, svgErrs...)
		blk.SVG = svg
	}
}

// shown checks that a listing or a diff names a file the program's page
// shows: a file the Go tool ignores is not part of the program.
func shown(blk *Block, ch *Chapter, name string, errs *Errors) bool {
	if slices.Contains(ch.Files, name) {
		return true
	}
	errs.add(blk.Pos, "%s is not one of the files the program's page shows (%s): a %s shows a .go file of the program's directory that go build reads (not _x.go, .x.go or testdata/)",
		name, strings.Join(ch.Files, ", "), blk.Kind)
	return false
}

// source reads a program file, reporting a missing file at pos, a file the
// site must not show at the file, and, for a directive (markers true), bad
// markers at the marker. Each problem of a file is reported once, however
// many directives name it.
func (b *Book) source(pos Pos, file string, errs *Errors, markers bool) (*source, bool) {
	src, markerErrs, err := b.sources.get(file)
	var e *Error
	switch {
	case errors.As(err, &e):
		errs.once(e)
		return nil, false
	case errors.Is(err, fs.ErrNotExist):
		errs.add(pos, "%s not found", file)
		return nil, false
	case err != nil:
		errs.add(pos, "cannot read %s: %v", file, err)
		return nil, false
	}
	if markers {
		for _, e := range markerErrs {
			errs.once(e)
		}
	}
	return src, true
}

// slugOr names a chapter for an error message: its slug, or "an earlier
// chapter's" when there is none.
func slugOr(ch *Chapter) string {
	if ch == nil {
		return "an earlier chapter's"
	}
	return ch.Slug
}
