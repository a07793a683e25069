package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// idleConns opens n keep-alive connections to addr, has each fetch path
// once, and returns them open and idle: what a server holds for a browser
// between two clicks. The caller closes them.
func idleConns(addr, path string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // connections being opened at once
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conns[i], errs[i] = fetchOnce(addr, path)
		}()
	}
	wg.Wait()
	var open []net.Conn
	var first error
	failed := 0
	for i, c := range conns {
		if c != nil {
			open = append(open, c)
		}
		if errs[i] != nil {
			failed++
			if first == nil {
				first = errs[i]
			}
		}
	}
	if failed > 0 {
		for _, c := range open {
			c.Close()
		}
		return nil, fmt.Errorf("%d of %d idle connections failed; the first: %w", failed, n, first)
	}
	return open, nil
}

// fetchOnce connects, sends one GET and reads the whole response, leaving
// the connection open.
func fetchOnce(addr, path string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
