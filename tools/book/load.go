package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
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
	b := &Book{Title: bookTitle, sources: newSources(root)}
	var errs Errors
	entries, err := os.ReadDir(filepath.Join(root, "chapters"))
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
		m := chapterNameRE.FindStringSubmatch(name)
		if m == nil && pageNameRE.MatchString(name) {
			// A page that is not a chapter, such as instructors.md.
			data, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				return nil, err
			}
			pg := &Chapter{Slug: strings.TrimSuffix(name, ".md"), File: file}
			b.loadChapter(pg, string(data), &errs)
			b.Pages = append(b.Pages, pg)
			continue
		}
		if m == nil {
			errs.add(Pos{File: file}, "a chapter's file name must be NN-slug.md (two digits, then lower-case words joined by -); a page that is not a chapter is slug.md")
			continue
		}
		num, _ := strconv.Atoi(m[1])
		if other, dup := byNum[num]; dup {
			errs.add(Pos{File: file}, "chapter number %s is also used by %s", m[1], other)
			continue
		}
		byNum[num] = file
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return nil, err
		}
		ch := &Chapter{Num: num, Slug: strings.TrimSuffix(name, ".md"), File: file}
		b.loadChapter(ch, string(data), &errs)
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
	// Directives are resolved once every chapter is known: a diff needs the
	// previous chapter's program.
	for _, ch := range append(append([]*Chapter{}, b.Chapters...), b.Pages...) {
		for _, blk := range ch.Blocks {
			b.resolve(ch, blk, &errs)
		}
	}
	return b, errs.err()
}

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
	fence := ""
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
				fence = f
			case f[0] == fence[0] && len(f) >= len(fence) && strings.Trim(strings.TrimSpace(line), f[:1]) == "":
				fence = "" // a closing fence has nothing after it
			}
		}
		if fence == "" && strings.HasPrefix(line, ":::") {
			if blk := parseDirective(pos, line, errs); blk != nil {
				// A paragraph of its own, replaced after rendering.
				fmt.Fprintf(&body, "\n%s\n\n", placeholder(len(ch.Blocks)))
				ch.Blocks = append(ch.Blocks, blk)
				continue
			}
		}
		body.WriteString(line + "\n")
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
		errs.add(Pos{ch.File, 1}, "missing front matter: a chapter starts with a line \"---\", then title:, summary: and program:, then \"---\"")
		return -1
	}
	seen := map[string]int{}
	for i := 1; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		pos := Pos{ch.File, i + 1}
		if line == "---" {
			for _, key := range []string{"title", "summary", "program"} {
				if seen[key] == 0 && !(key == "program" && ch.isPage()) {
					errs.add(Pos{ch.File, 1}, "front matter has no %s:", key)
				}
			}
			return i + 1
		}
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || value == "":
			errs.add(pos, "front matter line must be \"key: value\", got %q", line)
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
	errs.add(Pos{ch.File, 1}, "front matter is not closed: no \"---\" line after it")
	return -1
}

// loadProgram lists the program's Go files and checks it has a main.go and
// a test.
func (b *Book) loadProgram(ch *Chapter, errs *Errors) {
	pos := Pos{ch.File, 0}
	entries, err := os.ReadDir(filepath.Join(b.sources.root, ch.Program))
	if err != nil {
		errs.add(pos, "program directory %s does not exist", ch.Program)
		ch.Program = ""
		return
	}
	var code, tests []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() || !strings.HasSuffix(name, ".go"):
		case strings.HasSuffix(name, "_test.go"):
			tests = append(tests, name)
		default:
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
	ch.Files = append(code, tests...)
	ch.Tests = tests
}

// directive options each kind accepts, and how many words it takes.
var directives = map[string]struct {
	args    int
	options []string
}{
	"listing":    {1, []string{"region"}},
	"diff":       {0, []string{"file"}},
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
	for _, w := range words[1:] {
		key, value, isOpt := strings.Cut(w, "=")
		if !isOpt {
			args = append(args, w)
			continue
		}
		if !contains(spec.options, key) {
			errs.add(pos, "unknown option %q for %s (known: %s)", key, kind, strings.Join(append([]string{}, spec.options...), ", "))
			bad = true
			continue
		}
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
		blk.File = file
		src, ok := b.source(blk.Pos, file, errs)
		if ok && blk.Region != "" {
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
		if ch.Prev == nil || ch.Prev.Program == "" {
			errs.add(blk.Pos, "diff needs a previous chapter's program, and %s is the first", ch.File)
			return
		}
		blk.File, blk.Old = file, ch.Prev.Program+"/"+path.Clean(name)
		b.source(blk.Pos, blk.File, errs)
		b.source(blk.Pos, blk.Old, errs)
	case "transcript":
		if strings.ContainsAny(blk.File, "/\\") {
			errs.add(blk.Pos, "transcript takes a name, not a path: %q", blk.File)
			return
		}
		blk.File = ch.Program + "/testdata/" + blk.File + ".txt"
		data, err := os.ReadFile(filepath.Join(b.sources.root, blk.File))
		if err != nil {
			errs.add(blk.Pos, "transcript %s not found (its test writes it: go test ./%s -update)", blk.File, ch.Program)
			return
		}
		if _, err := parseTranscript(string(data)); err != nil {
			errs.add(blk.Pos, "%s: %v", blk.File, err)
		}
	case "figure":
		if strings.ContainsAny(blk.File, "/\\") || !strings.HasSuffix(blk.File, ".svg") {
			errs.add(blk.Pos, "figure takes the name of an .svg file in chapters/figures/, got %q", blk.File)
			return
		}
		blk.File = "chapters/figures/" + blk.File
		data, err := os.ReadFile(filepath.Join(b.sources.root, blk.File))
		if err != nil {
			errs.add(blk.Pos, "figure %s not found", blk.File)
			return
		}
		if err := checkSVG(string(data)); err != nil {
			errs.add(Pos{File: blk.File}, "%v", err)
		}
	}
}

// source reads a program file for a directive, reporting a missing file at
// the directive and bad markers at the marker.
func (b *Book) source(pos Pos, file string, errs *Errors) (*source, bool) {
	src, markerErrs, err := b.sources.get(file)
	if err != nil {
		errs.add(pos, "%s not found", file)
		return nil, false
	}
	for _, e := range markerErrs {
		if !containsErr(*errs, e) {
			*errs = append(*errs, e)
		}
	}
	return src, true
}

func containsErr(es Errors, e *Error) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}
