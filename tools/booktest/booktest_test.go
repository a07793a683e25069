package booktest

import "testing"

func TestRenumberPorts(t *testing.T) {
	s := &Session{servers: []string{"39211"}}
	s.Renumber(`(?:127\.0\.0\.1|\[::1\]):(\d+)`, 40001)
	got := s.rules[0]("listening on 127.0.0.1:39211\n" +
		"accepted 127.0.0.1:51000\n" +
		"accepted [::1]:51002 then 127.0.0.1:51000 again\n" +
		"port 51000 alone is not an address\n")
	want := "listening on 127.0.0.1:8080\n" +
		"accepted 127.0.0.1:40001\n" +
		"accepted [::1]:40002 then 127.0.0.1:40001 again\n" +
		"port 51000 alone is not an address\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A server started with an automatic -addr 127.0.0.1:0 may print that
// address; the reader ran it without -addr and sees the default port.
func TestRenumberAutoAddr(t *testing.T) {
	s := &Session{servers: []string{"39211"}, autoAddr: true}
	s.Renumber(`127\.0\.0\.1:(\d+)`, 40001)
	got := s.rules[0]("bind 127.0.0.1:0\nlistening on 127.0.0.1:39211\nfrom 127.0.0.1:51000\n")
	if want := "bind 127.0.0.1:8080\nlistening on 127.0.0.1:8080\nfrom 127.0.0.1:40001\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	s.autoAddr = false
	if got := s.rules[0]("bind 127.0.0.1:0\n"); got != "bind 127.0.0.1:0\n" {
		t.Errorf("an explicit port 0 was renumbered: %q", got)
	}
}

func TestReplace(t *testing.T) {
	s := &Session{}
	s.Replace(`pid \d+`, "pid 4242")
	if got := s.rules[0]("my pid 1234567\n"); got != "my pid 4242\n" {
		t.Errorf("got %q", got)
	}
}

func TestShellJoin(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"./code/01-x", "-client"}, "./code/01-x -client"},
		{[]string{"-msg", "hello, world"}, "-msg 'hello, world'"},
		{[]string{"-msg", "it's"}, `-msg 'it'\''s'`},
		{[]string{"-msg", ""}, "-msg ''"},
	} {
		if got := shellJoin(tt.args); got != tt.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestFirstDifference(t *testing.T) {
	for _, tt := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\n", "a\nc\n", "line 2:\n  stored: \"b\"\n  now:    \"c\""},
		{"a\n", "a\nb\n", "line 2:\n  stored: \"\"\n  now:    \"b\""},
	} {
		if d := FirstDifference(tt.want, tt.got); d != tt.diff {
			t.Errorf("FirstDifference(%q, %q) = %q, want %q", tt.want, tt.got, d, tt.diff)
		}
	}
}

func TestHasFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"-addr", "x"}, true},
		{[]string{"--addr=x"}, true},
		{[]string{"-address"}, false},
		{[]string{"-msg", "addr"}, false},
		{nil, false},
	} {
		if got := hasFlag(tt.args, "addr"); got != tt.want {
			t.Errorf("hasFlag(%q) = %v", tt.args, got)
		}
	}
}
