package exercises

import (
	"reflect"
	"testing"
)

func TestList(t *testing.T) {
	md := "# x\n\n1. **Not yet.**\n\n## Exercises\n\n1. **Many clients.** Do it.\n2. **Two at once** now.\n   3. not a title\n\n## Summary\n\n4. **Not an exercise.**\n"
	want := []Exercise{{1, "Many clients"}, {2, "Two at once"}}
	if got := List(md); !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestGraded(t *testing.T) {
	src := "package main\n\nfunc TestExercise1ManyClients(t *testing.T) {}\nfunc TestExercise3Silent(t *testing.T) {}\nfunc helperTestExercise4() {}\n"
	if got, want := Graded(src), map[int]bool{1: true, 3: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("Graded = %v, want %v", got, want)
	}
}
