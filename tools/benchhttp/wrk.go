package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// load is what one run of wrk measured.
type load struct {
	requests int64
	seconds  float64
	rps      float64
	p50, p99 time.Duration
	mbps     float64 // response bytes per second, in MB (10^6)
	errors   []string
}

// runWrk drives url with conns keep-alive connections for d, from one wrk
// thread. cpu >= 0 pins wrk to that CPU (taskset), away from the server's.
func runWrk(ctx context.Context, url string, conns int, d time.Duration, cpu int) (load, error) {
	args := []string{"wrk", "-t1", "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%.0fs", d.Seconds()),
		"--timeout", "10s", "--latency", url}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return load{}, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	l, err := parseWrk(string(out))
	if err != nil {
		return load{}, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return l, nil
}

// parseWrk reads wrk's report: the percentiles of --latency, the
// "N requests in Ts, X read" line, and the lines it prints only when
// something went wrong (socket errors, responses other than 2xx or 3xx).
func parseWrk(out string) (load, error) {
	var l load
	var read float64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			l.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			l.p99 = wrkDuration(f[1])
		case len(f) >= 6 && f[1] == "requests" && f[2] == "in":
			l.requests, _ = strconv.ParseInt(f[0], 10, 64)
			l.seconds = wrkDuration(strings.TrimSuffix(f[3], ",")).Seconds()
			read = wrkBytes(f[4])
		case len(f) == 2 && f[0] == "Requests/sec:":
			l.rps, _ = strconv.ParseFloat(f[1], 64)
		case strings.HasPrefix(sc.Text(), "  Socket errors:"), strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx"):
			l.errors = append(l.errors, strings.TrimSpace(sc.Text()))
		}
	}
	if l.requests == 0 || l.seconds == 0 || l.p50 == 0 {
		return l, fmt.Errorf("no requests, duration or latency in wrk's report")
	}
	l.mbps = read / l.seconds / 1e6
	return l, nil
}

// wrkDuration reads wrk's "812.00us", "1.45ms", "2.00s", "1.02m".
func wrkDuration(s string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0
			}
			return time.Duration(math.Round(v * float64(u.unit)))
		}
	}
	return 0
}

// wrkBytes reads wrk's "1.41MB", "512.00KB", "3.20GB", "900B" (powers of 1024).
func wrkBytes(s string) float64 {
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = num, u.mult
			break
		}
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v * mult
}
