package programs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

const root = "../.."

// The limits of tools/AUTHORING.md's "Program shape".
const (
	mainLimit = 250 // lines of main.go
	fileLimit = 300 // lines of any other file of a program
	directive = "//go:debug containermaxprocs=0"
)

// program is one directory the shape applies to: a chapter's program or
// its solution.
type program struct {
	dir     string // "code/05-accept" or "code/05-accept/solution", from the root
	chapter int
}

func programs(t *testing.T) []program {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "code", "[0-9][0-9]-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no chapter programs in code/ (%v)", err)
	}
	var list []program
	for _, d := range dirs {
		n, _ := strconv.Atoi(filepath.Base(d)[:2])
		rel := "code/" + filepath.Base(d)
		list = append(list, program{rel, n})
		if _, err := os.Stat(filepath.Join(d, "solution")); err == nil {
			list = append(list, program{rel + "/solution", n})
		}
	}
	return list
}

func lines(data []byte) int { return bytes.Count(data, []byte("\n")) }

// TestShape: main.go is at most 250 lines and carries the //go:debug line
// before its package clause; no file of a program is over 300 lines.
func TestShape(t *testing.T) {
	for _, p := range programs(t) {
		t.Run(p.dir, func(t *testing.T) {
			entries, err := os.ReadDir(filepath.Join(root, p.dir))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				name := e.Name()
				if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
					continue
				}
				data, err := os.ReadFile(filepath.Join(root, p.dir, name))
				if err != nil {
					t.Fatal(err)
				}
				limit := fileLimit
				if name == "main.go" {
					limit = mainLimit
				}
				if n := lines(data); n > limit {
					t.Errorf("%s/%s has %d lines; at most %d (move what is not the chapter's step to a sibling file)", p.dir, name, n, limit)
				}
			}
			data, err := os.ReadFile(filepath.Join(root, p.dir, "main.go"))
			if err != nil {
				t.Fatalf("%s has no main.go", p.dir)
			}
			if !hasDirective(string(data)) {
				t.Errorf("%s/main.go lacks the line %q before its package clause", p.dir, directive)
			}
		})
	}
}

// hasDirective reports whether the directive is a line of its own before
// the package clause, where the go command reads //go:debug lines.
func hasDirective(src string) bool {
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == directive {
			return true
		}
		if strings.HasPrefix(line, "package ") {
			return false
		}
	}
	return false
}

// TestNarrateIsShared: from chapter 2 on, every program and solution has
// the same narrate.go, byte for byte.
func TestNarrateIsShared(t *testing.T) {
	var first string
	var want []byte
	for _, p := range programs(t) {
		if p.chapter < 2 {
			continue
		}
		file := p.dir + "/narrate.go"
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Errorf("%s has no narrate.go: from chapter 2 on every program has the shared narrator", p.dir)
			continue
		}
		if want == nil {
			first, want = file, data
			continue
		}
		if d := booktest.FirstDifference(string(want), string(data)); d != "" {
			t.Errorf("%s differs from %s (narrate.go is the same in every program; change it in all at once), at %s", file, first, d)
		}
	}
}

var firstSocketRE = regexp.MustCompile(`(?m)^socket\(.*\) = (-?\d+)`)

// TestFirstDescriptor: a reader's plain `go run ./code/02-socket`, with no
// GODEBUG in the environment, gets descriptor 3 for its first socket, as
// the book shows: the //go:debug line, not the tests, makes it so.
func TestFirstDescriptor(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(root, "code", "02-*"))
	if len(dirs) != 1 {
		t.Fatalf("no single code/02-* program: %q", dirs)
	}
	prog := "./code/" + filepath.Base(dirs[0])
	// A descriptor this test inherited without close-on-exec would reach
	// the program too; a reader's shell passes only 0, 1 and 2.
	for name := range booktest.OpenFDs(t) {
		if fd, err := strconv.Atoi(name); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	cmd := exec.Command("go", "run", prog)
	cmd.Dir = root
	cmd.Env = booktest.ProgramEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run %s: %v\n%s", prog, err, out)
	}
	m := firstSocketRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("go run %s narrated no socket call:\n%s", prog, out)
	}
	if string(m[1]) != "3" {
		t.Errorf("go run %s without GODEBUG: first socket is %s, the book says 3 (does main.go have %q?):\n%s",
			prog, m[1], directive, firstLines(out, 3))
	}
}

func firstLines(b []byte, n int) string {
	ls := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(ls[:min(n, len(ls))], "\n")
}
