package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../.."

// chaptersWithGraders lists the chapters whose programs have graders.
func chaptersWithGraders(t *testing.T) []*chapter {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "code", "[0-9][0-9]-*"))
	if err != nil {
		t.Fatal(err)
	}
	var chs []*chapter
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "grade", "grade_test.go")); err != nil {
			continue
		}
		ch, err := findChapter(root, filepath.Base(d)[:2])
		if err != nil {
			t.Fatal(err)
		}
		if ch.hasGrader {
			chs = append(chs, ch)
		}
	}
	return chs
}

// Every grader is proven twice: it passes against the reference solution
// and fails against the chapter's program as the book ships it. A grader
// that cannot fail is a defect.
func TestGradersProveThemselves(t *testing.T) {
	chs := chaptersWithGraders(t)
	if len(chs) == 0 {
		t.Fatal("no chapter has graders")
	}
	for _, ch := range chs {
		t.Run(ch.slug+"/solution", func(t *testing.T) {
			t.Parallel()
			solution := filepath.Join(ch.dir(), "solution")
			if _, err := os.Stat(solution); err != nil {
				t.Fatalf("code/%s has graders but no reference solution in solution/", ch.slug)
			}
			good, err := grade(ch, solution)
			if err != nil {
				t.Fatal(err)
			}
			if good.Broken != "" {
				t.Fatalf("the reference solution %s", good.Broken)
			}
			graded := 0
			for _, x := range good.Results {
				if !x.Graded {
					continue
				}
				graded++
				if x.Title == "" {
					t.Errorf("TestExercise%d grades an exercise the chapter does not number", x.Num)
				}
				if !x.Pass {
					t.Errorf("exercise %d fails on the reference solution: %s", x.Num, strings.Join(x.Why, " / "))
				}
			}
			if graded == 0 {
				t.Fatal("no exercise is graded")
			}
		})
		t.Run(ch.slug+"/as-shipped", func(t *testing.T) {
			t.Parallel()
			bare, err := grade(ch, "")
			if err != nil {
				t.Fatal(err)
			}
			if bare.Broken != "" {
				t.Fatalf("the chapter's own program %s", bare.Broken)
			}
			for _, x := range bare.Results {
				if x.Graded && x.Pass {
					t.Errorf("exercise %d passes on the unmodified chapter program: its grader cannot fail", x.Num)
				}
				if x.Graded && len(x.Why) == 0 {
					t.Errorf("exercise %d fails with no message for the student", x.Num)
				}
			}
		})
	}
}

// A submission that does not compile, crashes, exits at once or hangs is
// reported as such, and grading ends.
func TestBadSubmissions(t *testing.T) {
	chs := chaptersWithGraders(t)
	if len(chs) == 0 {
		t.Fatal("no chapter has graders")
	}
	ch := chs[0]
	for _, tt := range []struct {
		name, code, want string
	}{
		{"does not compile", "package main\n\nfunc main() { undefined() }\n", "does not compile"},
		{"crashes", "package main\n\nfunc main() { panic(\"boom\") }\n", "panic: boom"},
		{"exits at once", "package main\n\nfunc main() {}\n", "exit"},
		{"hangs", "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(time.Hour) }\n", "has not printed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(tt.code), 0o644); err != nil {
				t.Fatal(err)
			}
			// The graders wait 15 s for a program that says nothing; the
			// hang is reported the same way after a shorter wait.
			rep, err := grade(ch, dir, "BOOK_WAIT=2s")
			if err != nil {
				t.Fatal(err)
			}
			if rep.allPass() {
				t.Fatal("a broken submission passed")
			}
			var said []string
			for _, x := range rep.Results {
				if x.Graded {
					said = append(said, x.Why...)
				}
			}
			if all := rep.Broken + strings.Join(said, "\n"); !strings.Contains(all, tt.want) {
				t.Errorf("report does not say %q:\n%s%s", tt.want, rep.Broken, strings.Join(said, "\n"))
			}
		})
	}
}
