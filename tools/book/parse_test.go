package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSourceRegions(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		regions map[string]lineRange
		errs    []string
	}{
		{"none", "a\nb\n", map[string]lineRange{}, nil},
		{"one", "a\n// region r\nb\nc\n// endregion r\n", map[string]lineRange{"r": {3, 4}}, nil},
		{"indented and nested", "func f() {\n\t// region outer\n\t// region inner\n\tx()\n\t// endregion inner\n\ty()\n\t// endregion outer\n}\n",
			map[string]lineRange{"outer": {3, 6}, "inner": {4, 4}}, nil},
		{"overlapping", "// region a\n1\n// region b\n2\n// endregion a\n3\n// endregion b\n",
			map[string]lineRange{"a": {2, 4}, "b": {4, 6}}, nil},
		{"empty region", "// region e\n// endregion e\n", map[string]lineRange{"e": {2, 1}}, nil},
		{"not a marker", "x := 1 // region r\n// regions are fun\n", map[string]lineRange{}, nil},
		{"no name", "// region\n", map[string]lineRange{}, []string{`f.go:1: region marker needs one name of letters, digits, - or _, got ""`}},
		{"two words", "// region a b\n", map[string]lineRange{}, []string{`f.go:1: region marker needs one name of letters, digits, - or _, got "a b"`}},
		{"unclosed", "// region r\nx\n", map[string]lineRange{}, []string{`f.go:1: region "r" has no "// endregion r"`}},
		{"restarted", "// region r\n// region r\n// endregion r\n", map[string]lineRange{"r": {2, 2}},
			[]string{`f.go:2: region "r" starts again before its end (started at line 1)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, errs := parseSource("f.go", tt.text)
			if !reflect.DeepEqual(s.regions, tt.regions) {
				t.Errorf("regions = %v, want %v", s.regions, tt.regions)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.errs) {
				t.Errorf("errors = %q, want %q", got, tt.errs)
			}
		})
	}
}

func TestParseDirective(t *testing.T) {
	tests := []struct {
		line string
		want *Block
		err  string
	}{
		{"::: listing main.go", &Block{Kind: "listing", File: "main.go"}, ""},
		{"::: listing main.go region=accept", &Block{Kind: "listing", File: "main.go", Region: "accept"}, ""},
		{"::: diff", &Block{Kind: "diff"}, ""},
		{"::: diff file=client.go", &Block{Kind: "diff", File: "client.go"}, ""},
		{"::: diff from=07-read-write", &Block{Kind: "diff", From: "07-read-write"}, ""},
		{"::: transcript run", &Block{Kind: "transcript", File: "run"}, ""},
		{`::: figure a.svg caption="Two words"`, &Block{Kind: "figure", File: "a.svg", Caption: "Two words"}, ""},
		{`::: figure a.svg`, nil, `x.md:3: figure needs caption="..."`},
		{":::listing main.go", nil, `x.md:3: a directive is "::: KIND ARGUMENTS" (KIND is listing, diff, transcript, figure or exercises)`},
		{"::: listing", nil, `x.md:3: listing takes 1 argument(s), got 0: ""`},
		{"::: listing a.go b.go", nil, `x.md:3: listing takes 1 argument(s), got 2: "a.go b.go"`},
		{"::: listing a.go region=", nil, `x.md:3: option region= needs a value`},
		{"::: listing a.go lines=1-4", nil, `x.md:3: unknown option "lines" for listing (known: region)`},
		{"::: transcript run region=x", nil, `x.md:3: unknown option "region" for transcript (known: )`},
		{"::: listing a.go region=a region=b", nil, `x.md:3: option region= is given twice`},
		{`::: figure a.svg caption=x caption="y z"`, nil, `x.md:3: option caption= is given twice`},
		{"::: show main.go", nil, `x.md:3: unknown directive "show" (known: diff, exercises, figure, listing, transcript)`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var errs Errors
			pos := Pos{"x.md", 3}
			got := parseDirective(pos, tt.line, &errs)
			if tt.want != nil {
				tt.want.Pos = pos
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("block = %+v, want %+v", got, tt.want)
			}
			if errs.Error() != tt.err {
				t.Errorf("errors = %q, want %q", errs.Error(), tt.err)
			}
		})
	}
}

func TestFenceOf(t *testing.T) {
	for line, want := range map[string]string{
		"```":      "```",
		"```go":    "```",
		"````text": "````",
		"~~~":      "~~~",
		"   ```":   "```",
		"    ```":  "", // indented code, not a fence
		"``":       "",
		"text":     "",
	} {
		if got := fenceOf(line); got != want {
			t.Errorf("fenceOf(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestParseTranscript(t *testing.T) {
	panes, err := parseTranscript("=== server\n$ go run .\nlistening on 127.0.0.1:8080\n^C\n=== client\n$ go run . -client\n\nhi\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []pane{
		{"server", []string{"$ go run .", "listening on 127.0.0.1:8080", "^C"}},
		{"client", []string{"$ go run . -client", "", "hi"}},
	}
	if !reflect.DeepEqual(panes, want) {
		t.Errorf("panes = %q, want %q", panes, want)
	}
	for bad, want := range map[string]string{
		"":                     "line 1: the transcript is empty",
		"\n\n":                 "line 1: the transcript is empty",
		"output\n=== server\n": `line 1: text before the first "=== PANE" line`,
	} {
		if _, err := parseTranscript(bad); err == nil || err.Error() != want {
			t.Errorf("parseTranscript(%q) = %v, want %s", bad, err, want)
		}
	}
}

// diffText shows a diff the way diff -u would, for comparing in tests.
func diffText(old, new string, context int) string {
	a, b := strings.Split(old, "\n"), strings.Split(new, "\n")
	var out []string
	for _, h := range diffLines(a, b, nil, nil, context) {
		out = append(out, "@@")
		for _, l := range h {
			line := ""
			if l.Op == '-' {
				line = a[l.Old-1]
			} else {
				line = b[l.New-1]
			}
			out = append(out, string(l.Op)+line)
		}
	}
	return strings.Join(out, "\n")
}

func TestDiffLines(t *testing.T) {
	tests := []struct {
		name, old, new string
		context        int
		want           string
	}{
		{"same", "a\nb", "a\nb", 3, ""},
		{"added", "a\nc", "a\nb\nc", 3, "@@\n a\n+b\n c"},
		{"removed", "a\nb\nc", "a\nc", 3, "@@\n a\n-b\n c"},
		{"changed", "a\nb\nc", "a\nB\nc", 0, "@@\n-b\n+B"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8", "1\nX\n3\n4\n5\n6\nY\n8", 1,
			"@@\n 1\n-2\n+X\n 3\n@@\n 6\n-7\n+Y\n 8"},
		{"hunks that touch merge", "1\n2\n3\n4\n5", "X\n2\n3\n4\nY", 2,
			"@@\n-1\n+X\n 2\n 3\n 4\n-5\n+Y"},
		{"from nothing", "", "a", 3, "@@\n-\n+a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diffText(tt.old, tt.new, tt.context); got != tt.want {
				t.Errorf("diff:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// Region markers are not part of the program the reader sees, so they are
// not part of the diff either; line numbers stay the files' real ones.
func TestDiffSkipsMarkers(t *testing.T) {
	a, _ := parseSource("a.go", "x\n// region r\ny\n// endregion r\n")
	b, _ := parseSource("b.go", "x\ny\nz\n")
	hs := diffLines(a.lines, b.lines, a.marker, b.marker, 3)
	want := []hunk{{{' ', 1, 1}, {' ', 3, 2}, {'+', 0, 3}}}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("hunks = %v, want %v", hs, want)
	}
}
