//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// The benchmarks: the same echo and the same reads and writes over a Unix
// socket and over TCP on loopback, side by side. Run them with
//
//	go test -run '^$' -bench . ./code/10-unix
//
// and TestMain prints a table of the two with their ratio. They assert
// nothing: how fast is a fact about one machine, not about the program.

// transports are the two ways to connect a client to a server.
var transports = []struct {
	name string
	addr func(b *testing.B) unix.Sockaddr
}{
	{"unix", func(b *testing.B) unix.Sockaddr {
		return &unix.SockaddrUnix{Name: filepath.Join(b.TempDir(), "bench.sock")}
	}},
	{"tcp", func(b *testing.B) unix.Sockaddr {
		return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}} // port 0: the kernel picks
	}},
}

// connected returns both ends of a fresh connection to sa, closed when
// the benchmark ends.
func connected(b *testing.B, sa unix.Sockaddr) (client, server int) {
	b.Helper()
	ln, err := listenOn(quiet, nilWriter{}, sa, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { unlinkSocket(quiet, sa); unix.Close(ln) }()
	bound, err := unix.Getsockname(ln)
	if err != nil {
		b.Fatal(err)
	}
	if client, err = dial(b.Context(), quiet, bound); err != nil {
		b.Fatal(err)
	}
	if server, err = acceptConn(quiet, ln); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(client); unix.Close(server) })
	return client, server
}

type nilWriter struct{}

func (nilWriter) Write(p []byte) (int, error) { return len(p), nil }

// results holds each benchmark's last ns/op, by name, for TestMain.
var results sync.Map

func record(b *testing.B) {
	results.Store(b.Name(), float64(b.Elapsed().Nanoseconds())/float64(b.N))
}

// BenchmarkRoundTrip: one 64-byte line to the server's echo and back.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			c, s := connected(b, tr.addr(b))
			done := make(chan error, 1)
			go func() { done <- echo(quiet, s, 4096) }()
			line := []byte(strings.Repeat("x", 63) + "\n")
			back := make([]byte, len(line))
			for b.Loop() {
				if err := writeAll(quiet, c, line); err != nil {
					b.Fatal(err)
				}
				if err := readFull(quiet, c, back); err != nil {
					b.Fatal(err)
				}
			}
			record(b)
			unix.Shutdown(c, unix.SHUT_WR) // the echo reads 0 and returns
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkThroughput: 64 KiB writes, one way, read 64 KiB at a time.
func BenchmarkThroughput(b *testing.B) {
	const chunk = 64 << 10
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			c, s := connected(b, tr.addr(b))
			done := make(chan error, 1)
			go func() {
				buf := make([]byte, chunk)
				for {
					got, err := readFD(quiet, s, buf)
					if err != nil || got == 0 {
						done <- err
						return
					}
				}
			}()
			data := make([]byte, chunk)
			b.SetBytes(chunk)
			for b.Loop() {
				if err := writeAll(quiet, c, data); err != nil {
					b.Fatal(err)
				}
			}
			record(b)
			unix.Shutdown(c, unix.SHUT_WR)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// TestMain runs the tests and benchmarks, then, if benchmarks ran, prints
// Unix and TCP side by side.
func TestMain(m *testing.M) {
	code := booktest.Run(m)
	get := func(name string) float64 {
		v, _ := results.Load(name)
		f, _ := v.(float64)
		return f
	}
	rt := [2]float64{get("BenchmarkRoundTrip/unix"), get("BenchmarkRoundTrip/tcp")}
	tp := [2]float64{get("BenchmarkThroughput/unix"), get("BenchmarkThroughput/tcp")}
	if rt[0] > 0 && rt[1] > 0 && tp[0] > 0 && tp[1] > 0 {
		mbs := func(ns float64) float64 { return 64 << 10 / ns * 1e9 / 1e6 }
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "\t unix\t tcp\t unix is\t\n")
		fmt.Fprintf(w, "round trip (64 bytes)\t %.1f µs\t %.1f µs\t %.1fx as fast\t\n", rt[0]/1e3, rt[1]/1e3, rt[1]/rt[0])
		fmt.Fprintf(w, "throughput (64 KiB writes)\t %.0f MB/s\t %.0f MB/s\t %.1fx as fast\t\n", mbs(tp[0]), mbs(tp[1]), tp[1]/tp[0])
		w.Flush()
	}
	os.Exit(code)
}
