//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestStudentCopy follows the exercises' instructions as a student would:
// copy the program to the repository's root, run the copy, grade it. The
// copy gets a name of its own, so that a student's 02-mine is never touched;
// the commands are otherwise the chapter's. The copy as made, with no
// exercise done, must build and run like the original and be graded: every
// graded exercise fails, with a report. A report that ran is not an error:
// make exercise exits 0 after it (go run ./tools/grade alone exits 1).
func TestStudentCopy(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	name := "02-copytest" + strconv.Itoa(os.Getpid()) // matched by .gitignore's /[0-9][0-9]-*
	t.Cleanup(func() { os.RemoveAll(filepath.Join(root, name)) })
	script := strings.ReplaceAll(booktest.Experiment(t, "copy"), "02-mine", name)

	m := booktest.NewMachine(t)
	out := m.Run(script)
	for _, want := range []string{"socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3", "close(3) = 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("the copy, run as the chapter says, did not print %q:\n%s", want, out)
		}
	}
	// The grading command the chapter gives, for that copy.
	out, code := m.RunCode("make exercise CH=02 PROGRAM=" + name)
	if code != 0 || !strings.Contains(out, "0 of 4 graded exercises pass.") || strings.Contains(out, "make: ***") {
		t.Errorf("make exercise CH=02 PROGRAM=%s on an unchanged copy: exit status %d, want a report that no graded exercise passes, status 0 and no make error line:\n%s", name, code, out)
	}
}
