//go:build grade && linux

// The graders of chapter 18's exercises. Each runs the harness (the
// chapter's own, or the copy BOOK_PROGRAM names) with a short window on two
// designs, and reads its request/response table: the columns by their
// names in the header, where names are separated by two spaces or more,
// and each row's values by spaces. They check what holds on any machine:
// an order between percentiles, a count of connections against a count of
// requests; never a time.
//
//	go run ./tools/grade 18
//	go run ./tools/grade -program DIR 18
//
// Exercise 3 is checked by hand: it has no grader.
package grade

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// table is the request/response table of a run: its column names, and
// its rows keyed by design and clients ("epoll 10", "epoll c10").
type table struct {
	cols []string
	rows map[string][]string
	out  string
}

var columnGap = regexp.MustCompile(`\s{2,}`)

func readTable(t *testing.T, out string) table {
	t.Helper()
	tb := table{rows: map[string][]string{}, out: out}
	lines := strings.Split(out, "\n")
	i := slices.IndexFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "design ") && strings.Contains(l, "clients")
	})
	if i < 0 {
		t.Fatalf("no request/response table (a header line starting with \"design\" and naming \"clients\") in the output:\n%s", out)
	}
	tb.cols = columnGap.Split(strings.TrimSpace(lines[i]), -1)
	for _, l := range lines[i+1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			break
		}
		if strings.Contains(l, "WRONG") {
			t.Fatalf("a server answered a line with another (%q); the output:\n%s", l, out)
		}
		tb.rows[f[0]+" "+f[1]] = f
	}
	return tb
}

// value is the number in row key's column col.
func (tb table) value(t *testing.T, key, col string) float64 {
	t.Helper()
	row, ok := tb.rows[key]
	if !ok {
		t.Fatalf("no row for %q in the table; the output:\n%s", key, tb.out)
	}
	i := slices.Index(tb.cols, col)
	if i < 0 {
		t.Fatalf("no column %q in the header %q (names are separated by two spaces or more); the output:\n%s", col, tb.cols, tb.out)
	}
	if i >= len(row) {
		t.Fatalf("row %q has no value in column %q; the output:\n%s", key, col, tb.out)
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(row[i], "%"), 64)
	if err != nil {
		t.Fatalf("row %q, column %q: %q is not a number; the output:\n%s", key, col, row[i], tb.out)
	}
	return v
}

// TestExercise1P999: a column "p99.9 µs" after "p99 µs", on every row,
// never below p99 (nor p50): the latency below which 99.9% of the
// window's requests finished.
func TestExercise1P999(t *testing.T) {
	s := booktest.NewGrader(t)
	p := s.Run("bench", "-quick", "-q", "-designs", "epoll,threads")
	tb := readTable(t, p.Output())
	if i, j := slices.Index(tb.cols, "p99 µs"), slices.Index(tb.cols, "p99.9 µs"); j != i+1 || i < 0 {
		t.Fatalf("the header %q has no column \"p99.9 µs\" right after \"p99 µs\"", tb.cols)
	}
	for _, key := range []string{"epoll 1", "epoll 10", "threads 1", "threads 10"} {
		p50, p99, p999 := tb.value(t, key, "p50 µs"), tb.value(t, key, "p99 µs"), tb.value(t, key, "p99.9 µs")
		if p999 < p99 || p999 < p50 {
			t.Errorf("%s: p50 %v µs, p99 %v µs, p99.9 %v µs: p99.9 must be at least p99, which is at least p50 (sort the latencies, and take the one at 99.9%% of them)", key, p50, p99, p999)
		}
	}
}

// TestExercise2ConnPerRequest: -loads 10,c10 measures 10 persistent
// clients and 10 clients that open a connection per request. The column
// "conns" counts connections opened in the window: none for persistent
// clients, and about one per request (give or take one per client, for
// requests in flight at the window's edges) for c10.
func TestExercise2ConnPerRequest(t *testing.T) {
	s := booktest.NewGrader(t)
	p := s.Run("bench", "-q", "-time", "300ms", "-designs", "epoll,pool", "-loads", "10,c10")
	tb := readTable(t, p.Output())
	for _, d := range []string{"epoll", "pool"} {
		if conns := tb.value(t, d+" 10", "conns"); conns != 0 {
			t.Errorf("%s, 10 persistent clients: conns %v, want 0: they connected before the window", d, conns)
		}
		req, conns := tb.value(t, d+" c10", "requests"), tb.value(t, d+" c10", "conns")
		if req < 30 {
			t.Errorf("%s, c10: %v requests in 300 ms, want at least 30; the output:\n%s", d, req, p.Output())
		}
		if conns < req-10 || conns > req+10 {
			t.Errorf("%s, c10: %v connections opened for %v requests, want one per request (within 10, one per client at each edge of the window)", d, conns, req)
		}
		if served := tb.value(t, d+" c10", "served"); served != 10 {
			t.Errorf("%s, c10: %v clients served, want all 10", d, served)
		}
	}
}
