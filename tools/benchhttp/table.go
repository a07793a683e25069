package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printTable prints one line per file, connections and server, with the
// server's CPU time per request as a ratio to nginx's on the same load.
func printTable(w io.Writer, cfg config, rows []row, memory map[string]float64) {
	nginx := map[string]time.Duration{}
	for _, r := range rows {
		if r.server == "nginx" {
			nginx[fmt.Sprint(r.file, r.conns)] = r.cpu
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tconns\tserver\treq/s\tp50\tp99\tCPU/req\tvs nginx\tMB/s\terrors\t")
	for _, file := range cfg.files {
		for _, n := range cfg.conns {
			for _, r := range rows {
				if r.file != file || r.conns != n {
					continue
				}
				ratio := "-"
				if base := nginx[fmt.Sprint(file, n)]; base > 0 {
					ratio = fmt.Sprintf("%.2f×", float64(r.cpu)/float64(base))
				}
				errs := strings.Join(r.errors, "; ")
				if errs == "" {
					errs = "none"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%s\t\n",
					file, n, r.server, r.rps, short(r.p50), short(r.p99), short(r.cpu), ratio, r.mbps, errs)
			}
		}
	}
	tw.Flush()
	if cfg.idle > 0 {
		fmt.Fprintf(w, "\nmemory per idle keep-alive connection, %d open (the servers' resident memory; the kernel's socket buffers are not in it):\n", cfg.idle)
		for _, s := range cfg.servers {
			fmt.Fprintf(w, "  %-9s %7.2f KB\n", s, memory[s]/1000)
		}
	}
}

// short prints a duration with three significant digits.
func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3gs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3gms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.3gµs", float64(d)/1e3)
	}
}
